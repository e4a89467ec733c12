"""An Azure ML workspace's MLflow tracking URI, resolved the seed's way and authenticated by azure-identity.

`Workspace.get(..., auth=TokenAuthentication(get_token_for_audience))` -> `ws.get_mlflow_tracking_uri()`.
That call also registers the workspace's service context (with our auth) in azureml-mlflow's per-URI
cache, so an explicit `MlflowClient(tracking_uri=<azureml uri>)` authenticates with our credential and
MLflow's global tracking URI is never touched. The one gap is the plugin's artifact repository, which
looks the context up through the *global* tracking store; `azureml_artifacts` closes it (see there).
"""

from __future__ import annotations

import copy
import logging
import re
import threading
from typing import Any

from shared.adapters.azure_errors import auth_refusal, retry_after_of
from shared.adapters.credentials import workspace_credential
from shared.config.base import AzureMLWorkspace
from shared.config.registries import AzureMLRegistry
from shared.errors import PermanentError, RetryableError

log = logging.getLogger("modelops.azureml")

# Azure ML asset names: letters, digits, '-', '_', '.'; start with a letter or digit; at most 255.
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")

_lock = threading.Lock()
_uris: dict[tuple[str, ...], tuple[str, Any]] = {}  # workspace -> (tracking URI, azureml-mlflow service context)


def mlflow_tracking_uri(cfg: AzureMLRegistry, credential: Any = None) -> str:
    """The workspace's `azureml://` MLflow URI; resolved once per workspace and process."""
    key = (
        cfg.cloud,
        cfg.arm_endpoint or "",
        cfg.subscription_id.lower(),
        cfg.resource_group.lower(),
        cfg.workspace.lower(),
    )
    with _lock:  # held while resolving: concurrent first calls for a workspace make one Workspace.get
        if key not in _uris:
            _uris[key] = _resolve(cfg, credential or workspace_credential(cfg))
        uri, context = _uris[key]
    from shared.adapters.azureml_artifacts import bind

    bind(uri, context, cfg)  # this entry's storage settings serve the artifacts its clients ask for
    return uri


def check_model_name(name: str, registry: str) -> None:
    """Refuse, before any call, a model name Azure ML would refuse; say how to fix it."""
    if MODEL_NAME.match(name):
        return
    suggestion = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-_.")[:255] or "my-model"
    raise PermanentError(
        f"Azure ML registry {registry!r} refuses the model name {name!r}: names are 1-255 letters, digits, "
        f"'-', '_' or '.', starting with a letter or digit. Set `name:` on the register step of the rule, "
        f"e.g. `{{register: {registry}, name: {suggestion}}}`"
    )


def _resolve(cfg: AzureMLRegistry, credential: Any) -> tuple[str, Any]:
    from azureml.core import Workspace

    auth = identity_auth(credential, cfg)
    where = f"workspace {cfg.workspace!r} (resource group {cfg.resource_group!r}, subscription {cfg.subscription_id})"
    try:
        ws = Workspace.get(
            cfg.workspace,
            auth=auth,
            subscription_id=cfg.subscription_id,
            resource_group=cfg.resource_group,
            cloud=cfg.cloud,
        )
        uri = str(ws.get_mlflow_tracking_uri())
    except Exception as exc:  # azureml-core wraps ARM, discovery and identity errors in many types
        raise _classify(exc, where) from exc
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

    log.info("resolved %s to %s", where, uri)
    return uri, _AzureMLServiceContextLoader.get_service_context(uri)


def identity_auth(credential: Any, cfg: AzureMLWorkspace) -> Any:
    """azureml-core authentication by an azure-identity credential, for the workspace's cloud and ARM."""
    from azureml.core.authentication import Audience, TokenAuthentication

    class IdentityTokenAuthentication(TokenAuthentication):  # type: ignore[misc]
        """TokenAuthentication fed by an azure-identity credential, usable by azureml-mlflow too.

        azureml-core asks `get_token(Audience)` for a token string; azureml-mlflow (its REST stores and
        its azure-core artifact client) asks `get_token("<arm>/.default")` for an AccessToken, which the
        base class refuses ("Unsupported audience"). Scope strings go straight to the credential.
        """

        def get_token(self, *scopes: Any, **kwargs: Any) -> Any:
            if scopes and not isinstance(scopes[0], Audience):
                return credential.get_token(*scopes, **kwargs)
            return super().get_token(*scopes)

    def token_for_audience(resource: str) -> str:
        return str(credential.get_token(resource.rstrip("/") + "/.default").token)

    # A named cloud keeps azureml-core from fetching cloud metadata over the network.
    auth = IdentityTokenAuthentication(token_for_audience, cloud=cfg.cloud)
    if cfg.arm_endpoint:
        cloud = copy.deepcopy(auth._cloud_type)  # this auth object's own copy; the cloud table stays as is
        cloud.endpoints.resource_manager = cfg.arm_endpoint + "/"
        auth._cloud_type = cloud
    return auth


def _classify(exc: Exception, where: str) -> Exception:
    from azure.core.exceptions import ClientAuthenticationError
    from azure.identity import CredentialUnavailableError

    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, CredentialUnavailableError):
        return PermanentError(
            f"no Azure credential to reach {where}: in Azure enable the Function app's managed identity; "
            f"locally run `az login` or set AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET ({text})"
        )
    grant = (
        "give the identity the AzureML Data Scientist role on the workspace (or a custom role with "
        "Microsoft.MachineLearningServices/workspaces/read and .../workspaces/models/*, .../workspaces/experiments/*)"
    )
    refusal = auth_refusal(exc, where, grant=grant)
    if refusal is not None:
        return PermanentError(refusal)
    if isinstance(exc, ClientAuthenticationError):
        return PermanentError(f"Entra refused the credential for {where}: {text}")
    if any(s in lowered for s in ("403", "authorizationfailed", "forbidden")):
        return PermanentError(f"access to {where} was refused: {grant} ({text})")
    if any(s in lowered for s in ("404", "not found", "resourcenotfound", "does not exist", "no access")):
        return PermanentError(
            f"{where} was not found: check subscription_id, resource_group and workspace in the "
            f"registries: entry, and that the identity can see the subscription ({text})"
        )
    return RetryableError(f"resolving {where} failed: {text}", retry_after=retry_after_of(exc))
