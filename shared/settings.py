"""App settings (environment), read in one place: here, once per process.

Every app setting the reactor knows is a field; ``environ`` keeps the snapshot the fields were read
from, for what the config file names by setting (``${VAR}`` expansion, ``token_setting:``), the
secrets to redact in logs, and the environment of child processes. Nothing else reads
``os.environ``, and nothing writes it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from shared.errors import ConfigError
from shared.trusted_proxies import TrustedProxies

N = TypeVar("N", int, float)

STORAGE = "AzureWebJobsStorage"
DEFAULT_TABLE = "modelopsledger"
DEFAULT_QUEUE = "modelops-actions"
STATE_BACKENDS = ("sqlite", "azure")
DEFAULT_OPS_ROLE = "ModelOps.Operator"
DEFAULT_APPROVER_ROLE = "ModelOps.Approve"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"


@dataclass(frozen=True)
class StorageSettings:
    """`AzureWebJobsStorage`: a connection string, or the identity-based ``__`` settings."""

    connection: str | None = None
    account_name: str | None = None
    table_uri: str | None = None
    queue_uri: str | None = None
    client_id: str | None = None
    endpoint_suffix: str = "core.windows.net"


@dataclass(frozen=True)
class OutcomeTopicSettings:
    """The Event Grid custom topic finished actions are published to (MODELOPS_OUTCOME_TOPIC_*)."""

    endpoint: str
    key: str | None = None
    retries: int = 3


@dataclass(frozen=True)
class OpsAuthSettings:
    """The operator credential of the ops routes (MODELOPS_OPS_*); webhooks keep their signatures."""

    token: str | None = None  # MODELOPS_OPS_TOKEN: a static bearer token (local use)
    tenant_id: str | None = None  # MODELOPS_OPS_TENANT_ID: Entra tenant whose tokens are accepted
    audiences: tuple[str, ...] = ()  # MODELOPS_OPS_AUDIENCE: the app's client id and/or App ID URI
    role: str = DEFAULT_OPS_ROLE  # MODELOPS_OPS_ROLE: app role an operator's token must carry
    authority: str = DEFAULT_AUTHORITY  # MODELOPS_OPS_AUTHORITY: Entra authority host (sovereign clouds)
    open_reads: bool = False  # MODELOPS_OPS_OPEN_READS: GET routes without a credential
    in_azure: bool = False  # WEBSITE_INSTANCE_ID is set: no credential configured means no ops access
    approver_token: str | None = None  # MODELOPS_APPROVER_TOKEN: decides approvals (else the ops token does)
    approver_role: str = DEFAULT_APPROVER_ROLE  # MODELOPS_APPROVER_ROLE: app role that decides approvals

    @property
    def configured(self) -> bool:
        return bool(self.token or self.tenant_id)


@dataclass(frozen=True)
class MlflowHttpSettings:
    """MLflow's own limits per HTTP request, under MLflow's names (MLFLOW_HTTP_REQUEST_*). MLflow's
    defaults (7 retries, backoff up to 120 s, 120 s timeout) hold one attempt for about 4 minutes
    against an unreachable server; these give up in seconds and leave the retries to the ledger."""

    max_retries: int = 2  # MLFLOW_HTTP_REQUEST_MAX_RETRIES
    timeout_seconds: int = 20  # MLFLOW_HTTP_REQUEST_TIMEOUT (connect, and each read)
    backoff_factor: int = 1  # MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR: retry k waits factor * 2**(k-1), the first at once
    backoff_jitter: float = 1.0  # MLFLOW_HTTP_REQUEST_BACKOFF_JITTER

    def environ(self) -> dict[str, str]:
        return {
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(self.max_retries),
            "MLFLOW_HTTP_REQUEST_TIMEOUT": str(self.timeout_seconds),
            "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": str(self.backoff_factor),
            "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": str(self.backoff_jitter),
        }

    def worst_case_seconds(self) -> float:
        """Longest one request can take before MLflow gives up (every try timing out)."""
        backoff = sum(self.backoff_factor * 2 ** (k - 1) + self.backoff_jitter for k in range(2, self.max_retries + 1))
        return (self.max_retries + 1) * self.timeout_seconds + backoff


@dataclass(frozen=True)
class AzureHttpSettings:
    """The Azure SDK clients' pipeline (azure-core RetryPolicy and transport) per request."""

    retries: int = 3  # MODELOPS_AZURE_RETRIES: retry_total
    connection_timeout_seconds: int = 10  # MODELOPS_AZURE_CONNECTION_TIMEOUT
    read_timeout_seconds: int = 60  # MODELOPS_AZURE_READ_TIMEOUT
    backoff_max_seconds: int = 10  # retry_backoff_max

    def client_options(self) -> dict[str, int]:
        """Keyword options every azure-core client takes (the retry ones go to its RetryPolicy)."""
        return {
            "retry_total": self.retries,
            "retry_backoff_max": self.backoff_max_seconds,
            "connection_timeout": self.connection_timeout_seconds,
            "read_timeout": self.read_timeout_seconds,
        }


@dataclass(frozen=True)
class Settings:
    config_path: str | None = None
    state_dir: Path = Path(".modelops")
    mlflow_webhook_secret: str | None = None
    databricks_webhook_secret: str | None = None
    state_backend: str = "sqlite"  # sqlite | azure
    storage: StorageSettings = field(default_factory=StorageSettings)
    ledger_table: str = DEFAULT_TABLE
    actions_queue: str = DEFAULT_QUEUE
    outcome_topic: OutcomeTopicSettings | None = None
    app_resource_group: str | None = None  # WEBSITE_RESOURCE_GROUP: the group hosting this app
    log_format: str = "text"
    appinsights_connection: str | None = None
    max_body_bytes: int = 1_048_576
    body_read_seconds: float = 30.0  # MODELOPS_BODY_READ_TIMEOUT_SECONDS: a request body slower than this gets 408
    webhook_max_skew_seconds: int = 300
    ops_auth: OpsAuthSettings = field(default_factory=OpsAuthSettings)
    in_azure: bool = False  # WEBSITE_INSTANCE_ID / WEBSITE_SITE_NAME: running on App Service (not `func start`)
    mlflow_http: MlflowHttpSettings = field(default_factory=MlflowHttpSettings)
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)  # MODELOPS_TRUSTED_PROXIES
    azure_http: AzureHttpSettings = field(default_factory=AzureHttpSettings)
    environ: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        snapshot = MappingProxyType(dict(os.environ if env is None else env))

        def get(name: str) -> str | None:
            return snapshot.get(name) or None

        backend = (get("MODELOPS_STATE_BACKEND") or "sqlite").lower()
        if backend not in STATE_BACKENDS:
            raise ConfigError.single(
                "environment",
                "MODELOPS_STATE_BACKEND",
                f"unknown state backend {backend!r}",
                "use sqlite (embedded default) or azure",
            )
        topic = get("MODELOPS_OUTCOME_TOPIC_ENDPOINT")
        return cls(
            config_path=get("MODELOPS_CONFIG"),
            state_dir=Path(get("MODELOPS_STATE_DIR") or ".modelops"),
            mlflow_webhook_secret=get("MLFLOW_WEBHOOK_SECRET"),
            databricks_webhook_secret=get("DATABRICKS_WEBHOOK_SECRET"),
            state_backend=backend,
            storage=StorageSettings(
                connection=get(STORAGE),
                account_name=get(f"{STORAGE}__accountName"),
                table_uri=get(f"{STORAGE}__tableServiceUri"),
                queue_uri=get(f"{STORAGE}__queueServiceUri"),
                client_id=get(f"{STORAGE}__clientId"),
                endpoint_suffix=get("MODELOPS_STORAGE_ENDPOINT_SUFFIX") or "core.windows.net",
            ),
            ledger_table=get("MODELOPS_LEDGER_TABLE") or DEFAULT_TABLE,
            actions_queue=get("MODELOPS_ACTIONS_QUEUE") or DEFAULT_QUEUE,
            outcome_topic=OutcomeTopicSettings(
                endpoint=topic,
                key=get("MODELOPS_OUTCOME_TOPIC_KEY"),
                retries=_int(snapshot, "MODELOPS_OUTCOME_RETRIES", 3),
            )
            if topic
            else None,
            app_resource_group=get("WEBSITE_RESOURCE_GROUP"),
            log_format=(get("MODELOPS_LOG_FORMAT") or "text").lower(),
            appinsights_connection=get("APPLICATIONINSIGHTS_CONNECTION_STRING"),
            max_body_bytes=_int(snapshot, "MODELOPS_MAX_BODY_BYTES", 1_048_576),
            webhook_max_skew_seconds=_int(snapshot, "MODELOPS_WEBHOOK_MAX_SKEW_SECONDS", 300),
            ops_auth=_ops_auth(snapshot),
            in_azure=_in_azure(snapshot),
            mlflow_http=_mlflow_http(snapshot),
            trusted_proxies=TrustedProxies.from_setting(snapshot.get("MODELOPS_TRUSTED_PROXIES")),
            body_read_seconds=_float(snapshot, "MODELOPS_BODY_READ_TIMEOUT_SECONDS", 30.0),
            azure_http=AzureHttpSettings(
                retries=_int(snapshot, "MODELOPS_AZURE_RETRIES", 3),
                connection_timeout_seconds=_int(snapshot, "MODELOPS_AZURE_CONNECTION_TIMEOUT", 10),
                read_timeout_seconds=_int(snapshot, "MODELOPS_AZURE_READ_TIMEOUT", 60),
            ),
            environ=snapshot,
        )

    def with_overrides(self, *, config_path: str | None = None, state_dir: str | Path | None = None) -> Settings:
        """The CLI's ``--config`` / ``--state-dir``: the same settings, given on the command line."""
        changed = self
        if config_path:
            changed = replace(changed, config_path=config_path)
        if state_dir:
            changed = replace(changed, state_dir=Path(state_dir))
        return changed

    def setting(self, name: str) -> str | None:
        """An app setting the config names (``token_setting: DATABRICKS_TOKEN``), or None if unset."""
        return self.environ.get(name) or None

    def webhook_secret(self, name: str) -> str | None:
        """A webhook secret by its app setting's name (the two shared ones are fields, so tests can set them)."""
        if name == "MLFLOW_WEBHOOK_SECRET":
            return self.mlflow_webhook_secret
        if name == "DATABRICKS_WEBHOOK_SECRET":
            return self.databricks_webhook_secret
        return self.setting(name)

    def config_env(self) -> dict[str, str]:
        """Environment used for ${VAR} expansion in the config file."""
        return {**self.environ, "MODELOPS_STATE_DIR": str(self.state_dir)}


def _ops_auth(env: Mapping[str, str]) -> OpsAuthSettings:
    tenant = env.get("MODELOPS_OPS_TENANT_ID") or None
    audiences = tuple(a.strip() for a in (env.get("MODELOPS_OPS_AUDIENCE") or "").split(",") if a.strip())
    if tenant and not audiences:
        raise ConfigError.single(
            "environment",
            "MODELOPS_OPS_AUDIENCE",
            "MODELOPS_OPS_TENANT_ID is set but no audience is",
            "set MODELOPS_OPS_AUDIENCE to the app registration's client id (and/or its App ID URI, comma-separated)",
        )
    return OpsAuthSettings(
        token=env.get("MODELOPS_OPS_TOKEN") or None,
        tenant_id=tenant,
        audiences=audiences,
        role=env.get("MODELOPS_OPS_ROLE") or DEFAULT_OPS_ROLE,
        authority=(env.get("MODELOPS_OPS_AUTHORITY") or DEFAULT_AUTHORITY).rstrip("/"),
        open_reads=_bool(env, "MODELOPS_OPS_OPEN_READS"),
        in_azure=_in_azure(env),
        approver_token=env.get("MODELOPS_APPROVER_TOKEN") or None,
        approver_role=env.get("MODELOPS_APPROVER_ROLE") or DEFAULT_APPROVER_ROLE,
    )


def _mlflow_http(env: Mapping[str, str]) -> MlflowHttpSettings:
    limits = MlflowHttpSettings(
        max_retries=_int(env, "MLFLOW_HTTP_REQUEST_MAX_RETRIES", MlflowHttpSettings.max_retries),
        timeout_seconds=_int(env, "MLFLOW_HTTP_REQUEST_TIMEOUT", MlflowHttpSettings.timeout_seconds),
        backoff_factor=_int(env, "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", MlflowHttpSettings.backoff_factor),
        backoff_jitter=_float(env, "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", MlflowHttpSettings.backoff_jitter),
    )
    if not 0 <= limits.max_retries <= 10:  # MLflow refuses more than 10 (_MLFLOW_HTTP_REQUEST_MAX_RETRIES_LIMIT)
        raise ConfigError.single(
            "environment", "MLFLOW_HTTP_REQUEST_MAX_RETRIES", f"{limits.max_retries} is not 0..10", "e.g. 2"
        )
    if limits.timeout_seconds <= 0:
        raise ConfigError.single(
            "environment", "MLFLOW_HTTP_REQUEST_TIMEOUT", f"{limits.timeout_seconds} is not positive", "e.g. 20"
        )
    return limits


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return _number(env, name, default, float, ("a number", "a number"))


def _in_azure(env: Mapping[str, str]) -> bool:
    """App Service sets these in Azure; `func start` sets FUNCTIONS_WORKER_RUNTIME but neither of them."""
    return bool(env.get("WEBSITE_INSTANCE_ID") or env.get("WEBSITE_SITE_NAME"))


def _bool(env: Mapping[str, str], name: str) -> bool:
    text = (env.get(name) or "false").strip().lower()
    if text not in ("true", "false", "1", "0"):
        raise ConfigError.single("environment", name, f"{text!r} is not a boolean", f"set {name} to true or false")
    return text in ("true", "1")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return _number(env, name, default, int, ("a whole number", "an integer"))


def _number(env: Mapping[str, str], name: str, default: N, parse: Callable[[str], N], what: tuple[str, str]) -> N:
    """The setting parsed with ``parse``, ``default`` when unset; otherwise refused naming it and the fix."""
    text = env.get(name) or ""
    if not text:
        return default
    try:
        return parse(text)
    except ValueError:
        raise ConfigError.single(
            "environment", name, f"{text!r} is not {what[0]}", f"set {name} to {what[1]}, e.g. {default}"
        ) from None
