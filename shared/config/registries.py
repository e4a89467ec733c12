"""Registries: where models are copied to (and read from)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from shared.config.base import ConfigModel

COPY_EXPERIMENT = "modelops-reactor-copies"
AZURE_CLOUDS = ("AzureCloud", "AzureUSGovernment", "AzureChinaCloud")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class MlflowRegistry(ConfigModel):
    """Any MLflow tracking/registry URI: a server URL, sqlite:///..., databricks, databricks-uc."""

    kind: Literal["mlflow"]
    tracking_uri: str = Field(description="MLflow tracking URI, e.g. http://127.0.0.1:5000 or sqlite:///path.db")
    registry_uri: str | None = Field(default=None, description="MLflow registry URI if not the tracking URI")
    artifact_location: str | None = Field(
        default=None, description="where copied artifacts go for a file/sqlite store (default: next to the db)"
    )
    experiment: str = Field(default=COPY_EXPERIMENT, description="experiment that holds the copy runs")


class AzureMLRegistry(ConfigModel):
    """An Azure ML workspace's MLflow registry, reached through azureml-core + azureml-mlflow."""

    kind: Literal["azureml"]
    subscription_id: str = Field(description="the workspace's subscription id (a GUID)")
    resource_group: str = Field(description="the workspace's resource group")
    workspace: str = Field(description="the Azure ML workspace name")
    cloud: Literal["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"] = Field(
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
    experiment: str = Field(default=COPY_EXPERIMENT, description="experiment that holds the copy runs")

    @field_validator("arm_endpoint", "authority_host")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("https://"):
            raise ValueError("must be an https:// URL")
        return value.rstrip("/") if value else value


class DatabricksRegistry(ConfigModel):
    """A Databricks workspace registry (kind databricks) or Unity Catalog (kind databricks-uc)."""

    kind: Literal["databricks", "databricks-uc"]
    host: str = Field(description="workspace URL, e.g. https://adb-123.4.azuredatabricks.net")
    auth: Literal["azure-identity", "token"] = Field(
        default="azure-identity",
        description="azure-identity (managed identity in Azure, Azure CLI or an Entra service principal "
        "from AZURE_* settings locally) or token (a PAT read from the app setting named by token_setting)",
    )
    token_setting: str | None = Field(
        default=None, description="name of the app setting holding the PAT when auth is token, e.g. DATABRICKS_TOKEN"
    )
    azure_client_id: str | None = Field(
        default=None, description="client id of a user-assigned managed identity (auth: azure-identity)"
    )
    experiment: str = Field(default="/Shared/modelops-reactor-copies", description="workspace experiment path")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value.startswith("https://"):
            raise ValueError("must be the https:// URL of the workspace")
        return value.rstrip("/")

    @field_validator("token_setting")
    @classmethod
    def _setting(cls, value: str | None) -> str | None:
        if value is not None and not _SETTING_NAME.match(value):
            raise ValueError("must be the name of an app setting (letters, digits, _), not the token itself")
        return value

    @model_validator(mode="after")
    def _token_named(self) -> DatabricksRegistry:
        if self.auth == "token" and not self.token_setting:
            raise ValueError("auth: token needs `token_setting: <name of the app setting holding the PAT>`")
        return self


RegistryConfig = Annotated[MlflowRegistry | AzureMLRegistry | DatabricksRegistry, Field(discriminator="kind")]
