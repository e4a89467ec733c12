"""Base for configuration models: strict keys, descriptions that double as the fix hint."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from shared.config.clouds import CloudName


def _strict_bool(value: Any) -> Any:
    """true/false only: YAML booleans, or the words a ${VAR} expands to; never "yes", "no", 1 or 0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{value!r} is not a boolean; write true or false")


Flag = Annotated[bool, BeforeValidator(_strict_bool)]


class ConfigModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class AzureMLWorkspace(ConfigModel):
    """Where an Azure ML workspace is and how it is reached (sovereign clouds included)."""

    subscription_id: str = Field(description="the workspace's subscription id (a GUID)")
    resource_group: str = Field(description="the workspace's resource group")
    workspace: str = Field(description="the Azure ML workspace name")
    cloud: CloudName = Field(
        default="AzureCloud",
        description="Azure cloud of the workspace (AzureCloud, AzureUSGovernment, AzureChinaCloud); "
        "sets the token audiences and the default ARM endpoint",
    )
    arm_endpoint: str | None = Field(
        default=None,
        description="ARM endpoint if not the cloud's own, e.g. https://management.usgovcloudapi.net "
        "(Azure Stack, private ARM)",
    )
    authority_host: str | None = Field(
        default=None, description="Entra authority if not the cloud's own, e.g. https://login.microsoftonline.us"
    )
    managed_identity_client_id: str | None = Field(
        default=None, description="client id of a user-assigned managed identity (default: AZURE_CLIENT_ID)"
    )

    @field_validator("arm_endpoint", "authority_host")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/") if value else value
