"""Base for configuration models: strict keys, descriptions that double as the fix hint."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from shared.child_env import SETTING_NAME, is_reactor_secret
from shared.config.clouds import CloudName


def _strict_bool(value: Any) -> Any:
    """true/false only: YAML booleans, or the words a ${VAR} expands to; never "yes", "no", 1 or 0."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ValueError(f"{value!r} is not a boolean; write true or false")


Flag = Annotated[bool, BeforeValidator(_strict_bool)]


def _child_env_names(names: list[str]) -> list[str]:
    """App settings a target hands to the model's process: plain names, none of the reactor's secrets."""
    for name in names:
        if not SETTING_NAME.match(name):
            raise ValueError(f"{name!r} is not an app setting name (letters, digits, underscores)")
        if is_reactor_secret(name):
            raise ValueError(f"{name} is the reactor's own secret and is never handed to a model's process")
    return names


ChildEnv = Annotated[list[str], AfterValidator(_child_env_names)]


def check_glob(pattern: str) -> str:
    """A glob as fnmatch reads it, refused when it is not one (fnmatch would match it literally)."""
    if not pattern.strip():
        raise ValueError("an empty pattern matches nothing; remove it, or write a glob such as churn-* (* for all)")
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "]":
            raise ValueError(f"glob {pattern!r} has a ']' without its '['; write [...] for a set, or remove it")
        if char == "[":
            j = i + 1
            j += pattern[j : j + 1] == "!"
            j += pattern[j : j + 1] == "]"  # a ']' first in a set is one of its characters
            end = pattern.find("]", j)
            if end < 0:
                raise ValueError(f"glob {pattern!r} opens a set '[' that never closes; close it with ']' or remove it")
            i = end
        i += 1
    return pattern


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
