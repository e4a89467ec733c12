"""The one place azure-identity credentials are made.

`DefaultAzureCredential` is the managed identity in Azure (a user-assigned one when its client id
is given) and, elsewhere, AZURE_* service-principal settings, workload identity or `az login`; it
never opens a browser. For a sovereign cloud it signs in at that cloud's Entra authority, taken
from the clouds table (shared/config/clouds.py) unless the configuration names another one.
Every caller also takes an injected credential (tests, or a bootstrap that shares one) and comes
here only when it has none. azure-identity is imported on the first call, never at import.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.config.clouds import CLOUDS, cloud_of_arm

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.config.base import AzureMLWorkspace


def authority_host(*, cloud: str | None = None, override: str | None = None) -> str | None:
    """The Entra authority: ``override``, else the named cloud's, else None (azure-identity's default,
    the public cloud or AZURE_AUTHORITY_HOST)."""
    if override:
        return override.rstrip("/")
    return CLOUDS[cloud].authority if cloud else None


def azure_credential(
    *,
    cloud: str | None = None,
    authority: str | None = None,
    managed_identity_client_id: str | None = None,
) -> TokenCredential:
    """A DefaultAzureCredential for ``cloud`` (or the given ``authority``)."""
    from azure.identity import DefaultAzureCredential

    options: dict[str, Any] = {"exclude_interactive_browser_credential": True}
    host = authority_host(cloud=cloud, override=authority)
    if host:
        options["authority"] = host
    if managed_identity_client_id:
        # only when set: azure-identity's own default is the AZURE_CLIENT_ID setting
        options["managed_identity_client_id"] = managed_identity_client_id
    return DefaultAzureCredential(**options)


def workspace_credential(cfg: AzureMLWorkspace) -> TokenCredential:
    """The credential for an Azure ML workspace target (registry, online endpoint, web service)."""
    return azure_credential(
        cloud=cfg.cloud, authority=cfg.authority_host, managed_identity_client_id=cfg.managed_identity_client_id
    )


def arm_credential(arm_endpoint: str) -> TokenCredential:
    """The credential for an ARM endpoint, signing in at the authority of that endpoint's cloud."""
    return azure_credential(cloud=cloud_of_arm(arm_endpoint))
