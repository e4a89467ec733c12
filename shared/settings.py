"""App settings (environment), read in one place: here, once per process.

Every app setting the reactor knows is a field; ``environ`` keeps the snapshot the fields were read
from, for what the config file names by setting (``${VAR}`` expansion, ``token_setting:``), the
secrets to redact in logs, and the environment of child processes. Nothing else reads
``os.environ``, and nothing writes it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType

from shared.errors import ConfigError

STORAGE = "AzureWebJobsStorage"
DEFAULT_TABLE = "modelopsledger"
DEFAULT_QUEUE = "modelops-actions"
STATE_BACKENDS = ("sqlite", "azure")
DEFAULT_OPS_ROLE = "ModelOps.Operator"
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

    @property
    def configured(self) -> bool:
        return bool(self.token or self.tenant_id)


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
    webhook_max_skew_seconds: int = 300
    ops_auth: OpsAuthSettings = field(default_factory=OpsAuthSettings)
    in_azure: bool = False  # WEBSITE_INSTANCE_ID / WEBSITE_SITE_NAME: running on App Service (not `func start`)
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
    )


def _in_azure(env: Mapping[str, str]) -> bool:
    """App Service sets these in Azure; `func start` sets FUNCTIONS_WORKER_RUNTIME but neither of them."""
    return bool(env.get("WEBSITE_INSTANCE_ID") or env.get("WEBSITE_SITE_NAME"))


def _bool(env: Mapping[str, str], name: str) -> bool:
    text = (env.get(name) or "false").strip().lower()
    if text not in ("true", "false", "1", "0"):
        raise ConfigError.single("environment", name, f"{text!r} is not a boolean", f"set {name} to true or false")
    return text in ("true", "1")


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name) or ""
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise ConfigError.single(
            "environment", name, f"{text!r} is not a whole number", f"set {name} to an integer, e.g. {default}"
        ) from None
