"""Registries: where models are copied to (and read from)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from shared.config.base import AzureMLWorkspace, ConfigModel

COPY_EXPERIMENT = "modelops-reactor-copies"
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


class AzureMLRegistry(AzureMLWorkspace):
    """An Azure ML workspace's MLflow registry, reached through azureml-core + azureml-mlflow."""

    kind: Literal["azureml"]
    experiment: str = Field(default=COPY_EXPERIMENT, description="experiment that holds the copy runs")


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
