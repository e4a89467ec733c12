"""azure-ai-ml plumbing for online endpoints: the MLClient (credential, sovereign clouds), names,
and the translation of Azure errors into Retryable/Permanent errors a user can act on."""

from __future__ import annotations

import re
from typing import Any

from shared.adapters.credentials import workspace_credential
from shared.config.clouds import CLOUDS
from shared.config.deployments import KubernetesOnlineDeployment, ManagedOnlineDeployment
from shared.domain.actions import short_hash
from shared.errors import ActionError, PermanentError, RetryableError

OnlineTarget = ManagedOnlineDeployment | KubernetesOnlineDeployment


def deployment_name(target: str, model_name: str, model_version: str) -> str:
    """Deterministic, valid Azure ML deployment name (<=32 chars, letters/digits/hyphens, a letter first)."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-") or "model"
    if not slug[0].isalpha():
        slug = "m" + slug
    version = re.sub(r"[^a-z0-9]+", "", str(model_version).lower()) or "0"
    # the hash keeps names distinct when truncation or the target would otherwise collide
    suffix = short_hash(f"{target}|{model_name}|{model_version}", 6)
    head = f"{slug}-v{version}"[: 32 - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}"


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


def ml_client(cfg: OnlineTarget, credential: Any | None = None) -> Any:
    """An MLClient for the target's workspace; DefaultAzureCredential (managed identity) by default."""
    from azure.ai.ml import MLClient

    if credential is None:
        credential = workspace_credential(cfg)
    return MLClient(
        credential,
        subscription_id=cfg.subscription_id,
        resource_group_name=cfg.resource_group,
        workspace_name=cfg.workspace,
        enable_telemetry=False,
        show_progress=False,
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
    if isinstance(exc, ClientAuthenticationError):
        return PermanentError(
            f"{doing}: not authorized ({_message(exc)}); give the app's identity the "
            "AzureML Data Scientist role (or a custom role) on the workspace"
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return RetryableError(f"{doing}: could not reach Azure ({exc})")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        code = getattr(exc.error, "code", None) or ""
        details = {"status_code": status, "code": code, "message": _message(exc)}
        if status == 429 or status >= 500:
            return RetryableError(f"{doing}: Azure answered {status} {code}: {_message(exc)}", details=details)
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
