"""The environment of a child process that runs a model's code (a scoring server, a Spark job).

Built from an allow-list, never copied whole: the model's own code runs there and can read it, so
the reactor's secrets (ops and approver tokens, webhook secrets, storage connections, Databricks
tokens, the outcome topic key) must not be in it. What passes: the system's basics (PATH, HOME,
locale, temp dirs), TLS trust and proxies, the Java/Spark settings a Spark job reads, MLflow's
settings that are not credentials, and the settings the target's config names under ``env:``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

BASICS = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TMPDIR",
        "TEMP",
        "TMP",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "PYTHONPYCACHEPREFIX",
        "PYTHONDONTWRITEBYTECODE",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
    }
)
TLS_AND_PROXIES = frozenset(
    {
        "REQUESTS_CA_BUNDLE",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "CURL_CA_BUNDLE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    }
)
SPARK = frozenset({"JAVA_HOME", "SPARK_HOME", "SPARK_LOCAL_IP", "SPARK_LOCAL_HOSTNAME", "HADOOP_HOME"})
ALLOWED = BASICS | TLS_AND_PROXIES | SPARK
ALLOWED_PREFIXES = ("LC_", "MLFLOW_")

# an MLflow setting under one of these words is a credential (MLFLOW_TRACKING_TOKEN,
# MLFLOW_TRACKING_PASSWORD, MLFLOW_WEBHOOK_SECRET...): a target passes it only by naming it
_CREDENTIAL_WORD = re.compile(r"(SECRET|TOKEN|PASSWORD|KEY|CREDENTIAL|SIGNATURE|CONNECTION)", re.IGNORECASE)

# what the reactor itself holds: never handed to a model, even when a target names it
REACTOR_SECRETS = frozenset(
    {
        "MODELOPS_OPS_TOKEN",
        "MODELOPS_APPROVER_TOKEN",
        "MLFLOW_WEBHOOK_SECRET",
        "DATABRICKS_WEBHOOK_SECRET",
        "MODELOPS_OUTCOME_TOPIC_KEY",
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
    }
)
SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def is_reactor_secret(name: str) -> bool:
    """A setting only the reactor may hold (the storage connection in all its ``__`` forms too)."""
    return name in REACTOR_SECRETS or name == "AzureWebJobsStorage" or name.startswith("AzureWebJobsStorage__")


def passes(name: str) -> bool:
    """Whether a setting reaches a child without being named by the target."""
    if name in ALLOWED or name.startswith("LC_"):
        return True
    return name.startswith("MLFLOW_") and not _CREDENTIAL_WORD.search(name) and not is_reactor_secret(name)


def child_environment(
    source: Mapping[str, str],
    *,
    named: Iterable[str] = (),
    withheld: Iterable[str] = (),
    overrides: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The allow-listed part of ``source``, the settings ``named`` by the target, then ``overrides``.

    ``withheld``: further settings that must not pass (the named sources' secret settings)."""
    refused = set(withheld)
    env = {name: value for name, value in source.items() if passes(name) and name not in refused}
    for name in named:
        if name in source and not is_reactor_secret(name) and name not in refused:
            env[name] = source[name]
    env.update(overrides or {})
    return env
