"""Azure ML online endpoints through azure-ai-ml's MLClient: the calls the online deploy executor
makes, for one workspace (sovereign clouds and private ARM endpoints included), and the translation
of Azure errors into Retryable/Permanent errors a user can act on.

Resources come back as small frozen records, long-running operations as azure-core pollers
(`wait(timeout)`, `done()`, `result()`); azure-ai-ml is imported when a client is made.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from shared.adapters.azure_errors import (
    ONGOING_OPERATION_RETRY_S,
    auth_refusal,
    bounded_retry_policy,
    is_ongoing_operation,
    retry_after_of,
)
from shared.adapters.credentials import workspace_credential
from shared.config.clouds import CLOUDS
from shared.config.deployments import KubernetesOnlineDeployment, ManagedOnlineDeployment
from shared.domain.actions import short_hash
from shared.errors import ActionError, PermanentError, RetryableError
from shared.settings import AzureHttpSettings

OnlineTarget = ManagedOnlineDeployment | KubernetesOnlineDeployment


class Poller(Protocol):
    def wait(self, timeout: float | None = None) -> None: ...
    def done(self) -> bool: ...
    def result(self, timeout: float | None = None) -> Any: ...


IN_PROGRESS = frozenset({"creating", "updating", "deleting", "provisioning"})  # provisioning states still moving


@dataclass(frozen=True)
class Endpoint:
    name: str
    state: str  # provisioning state in lower case: creating, updating, succeeded, failed, ...
    scoring_uri: str | None
    traffic: dict[str, int]  # deployment -> percent, zero entries left out
    mirror: dict[str, int] = field(default_factory=dict)  # deployment -> percent of traffic copied to it
    location: str = ""  # the region (its metrics are read there)


@dataclass(frozen=True)
class Deployment:
    name: str
    state: str
    tags: dict[str, str]


@dataclass(frozen=True)
class DeploymentSpec:
    """An MLflow no-code deployment (no environment, no scoring script); the fields but `kubernetes`
    are the keyword arguments of azure-ai-ml's Managed/KubernetesOnlineDeployment."""

    name: str
    endpoint_name: str
    model: str  # azureml:<name>:<version>
    instance_type: str
    instance_count: int
    tags: dict[str, str] = field(default_factory=dict)
    kubernetes: bool = False


class OnlineEndpointsClient:
    def __init__(self, cfg: OnlineTarget, credential: Any | None = None, http: AzureHttpSettings | None = None) -> None:
        self._ml = ml_client(cfg, credential, http)

    def endpoint(self, name: str) -> Endpoint | None:
        entity = self._get(self._ml.online_endpoints.get, name)
        if entity is None:
            return None
        traffic = {k: int(v) for k, v in (entity.traffic or {}).items() if int(v)}
        mirror = {k: int(v) for k, v in (getattr(entity, "mirror_traffic", None) or {}).items() if int(v)}
        return Endpoint(entity.name, _state(entity), entity.scoring_uri, traffic, mirror, entity.location or "")

    def begin_create_endpoint(
        self, name: str, *, auth_mode: str, tags: dict[str, str], compute: str | None = None
    ) -> Poller:
        """A managed endpoint, or a Kubernetes one on ``compute`` (an attached Kubernetes compute)."""
        from azure.ai.ml.entities import KubernetesOnlineEndpoint, ManagedOnlineEndpoint

        entity = (
            KubernetesOnlineEndpoint(name=name, compute=compute, auth_mode=auth_mode, tags=tags)
            if compute
            else ManagedOnlineEndpoint(name=name, auth_mode=auth_mode, tags=tags)
        )
        return self._ml.online_endpoints.begin_create_or_update(entity)  # type: ignore[no-any-return]

    def key(self, endpoint: str) -> str | None:
        """The endpoint's primary key (auth_mode key) or token (aml_token)."""
        keys = self._ml.online_endpoints.get_keys(endpoint)
        return getattr(keys, "primary_key", None) or getattr(keys, "access_token", None)

    def begin_route_traffic(
        self, endpoint: str, traffic: dict[str, int], mirror: dict[str, int] | None = None
    ) -> Poller:
        """Live traffic (adding up to 100) and mirrored traffic (managed endpoints; empty: none) at once."""
        entity = self._ml.online_endpoints.get(endpoint)
        entity.traffic = traffic  # the SDK drops zero entries: deployments left out get 0
        entity.mirror_traffic = mirror or {}
        return self._ml.online_endpoints.begin_create_or_update(entity)  # type: ignore[no-any-return]

    def deployment(self, endpoint: str, name: str) -> Deployment | None:
        entity = self._get(self._ml.online_deployments.get, name, endpoint)
        return None if entity is None else _deployment(entity)

    def deployments(self, endpoint: str) -> list[Deployment]:
        return [_deployment(entity) for entity in self._ml.online_deployments.list(endpoint)]

    def begin_create_deployment(self, spec: DeploymentSpec) -> Poller:
        from azure.ai.ml.entities import KubernetesOnlineDeployment, ManagedOnlineDeployment

        kind = KubernetesOnlineDeployment if spec.kubernetes else ManagedOnlineDeployment
        entity = kind(**{key: value for key, value in asdict(spec).items() if key != "kubernetes"})
        return self._ml.online_deployments.begin_create_or_update(entity)  # type: ignore[no-any-return]

    def begin_delete_deployment(self, endpoint: str, name: str) -> Poller:
        return self._ml.online_deployments.begin_delete(name=name, endpoint_name=endpoint)  # type: ignore[no-any-return]

    @staticmethod
    def _get(read: Any, *args: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return read(*args)
        except ResourceNotFoundError:
            return None


def _state(entity: Any) -> str:
    """provisioning_state as lower-case text (the SDK returns enums or strings)."""
    value = entity.provisioning_state
    return str(getattr(value, "value", value) or "").lower()


def _deployment(entity: Any) -> Deployment:
    return Deployment(entity.name, _state(entity), dict(entity.tags or {}))


def cloud_kwargs(cfg: OnlineTarget) -> dict[str, Any]:
    """MLClient keywords that point it at the configured cloud (or at any ARM-compatible endpoint)."""
    if cfg.arm_endpoint is None and cfg.aml_endpoint is None and cfg.authority_host is None:
        return {"cloud": cfg.cloud}
    builtin = CLOUDS[cfg.cloud]
    arm = (cfg.arm_endpoint or builtin.arm).rstrip("/") + "/"
    authority = (cfg.authority_host or builtin.authority).rstrip("/") + "/"
    aml = (cfg.aml_endpoint or builtin.aml).rstrip("/") + "/"
    # azure-ai-ml refuses to redefine a cloud name, so the name carries the endpoints it stands for
    name = "modelops-" + short_hash(f"{arm}|{aml}|{authority}", 12)
    return {
        "cloud": name,
        "cloud_metadata": {
            "azure_portal": builtin.portal,
            "resource_manager": arm,
            "active_directory": authority,
            "aml_resource_id": aml,
            "storage_endpoint": builtin.storage_suffix,
            "registry_discovery_endpoint": arm,
        },
    }


def ml_client(cfg: OnlineTarget, credential: Any | None = None, http: AzureHttpSettings | None = None) -> Any:
    """An MLClient for the target's workspace; the app's identity (shared.adapters.credentials) by default.
    Retries and timeouts per request are ``http``'s (MODELOPS_AZURE_*), not azure-core's 10 retries
    and 300 s timeouts."""
    from azure.ai.ml import MLClient

    http = http or AzureHttpSettings()

    return MLClient(
        credential or workspace_credential(cfg),
        subscription_id=cfg.subscription_id,
        resource_group_name=cfg.resource_group,
        workspace_name=cfg.workspace,
        enable_telemetry=False,
        show_progress=False,
        retry_policy=bounded_retry_policy(retry_total=http.retries, retry_backoff_max=http.backoff_max_seconds),
        connection_timeout=http.connection_timeout_seconds,
        read_timeout=http.read_timeout_seconds,
        **cloud_kwargs(cfg),
    )


def explain(exc: Exception, doing: str) -> ActionError:
    """Map an azure-core / azure-ai-ml exception to our error kinds, keeping Azure's code and message."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, ActionError):
        return exc
    grant = "give the app's identity the AzureML Data Scientist role (or a custom role) on the workspace"
    refusal = auth_refusal(exc, "Azure ML", grant=grant)
    if refusal is not None:
        return PermanentError(f"{doing}: {refusal}")
    if isinstance(exc, ClientAuthenticationError):
        return PermanentError(f"{doing}: not authorized ({_message(exc)}); {grant}")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return RetryableError(f"{doing}: could not reach Azure ({exc})")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        code = getattr(exc.error, "code", None) or ""
        details = {"status_code": status, "code": code, "message": _message(exc)}
        if status == 429 or status >= 500:
            text = f"{doing}: Azure answered {status} {code}: {_message(exc)}"
            return RetryableError(text, details=details, retry_after=retry_after_of(exc))
        if is_ongoing_operation(status, _message(exc)):
            text = f"{doing}: Azure is busy with another operation on it ({code}: {_message(exc)}); trying again"
            return RetryableError(text, details=details, retry_after=retry_after_of(exc) or ONGOING_OPERATION_RETRY_S)
        hint = (
            " (request more quota for this VM family or use a smaller instance_type)"
            if "quota" in (code + _message(exc)).lower()
            else ""
        )
        return PermanentError(f"{doing}: Azure refused it: {code or status}: {_message(exc)}{hint}", details=details)
    return PermanentError(f"{doing}: {type(exc).__name__}: {exc}")


def _message(exc: Any) -> str:
    error = getattr(exc, "error", None)
    if error is not None and getattr(error, "message", None):
        return str(error.message)
    return str(getattr(exc, "message", None) or exc).splitlines()[0]
