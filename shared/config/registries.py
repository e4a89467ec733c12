"""Registries: where models are copied to (and read from)."""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from shared.config.base import AzureMLWorkspace, ConfigModel
from shared.config.clouds import CloudName

COPY_EXPERIMENT = "modelops-reactor-copies"
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REGISTRY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$")
_LOCATION = re.compile(r"^[a-z][a-z0-9]{1,40}$")


def storage_endpoint(value: str | None) -> str | None:
    """A blob endpoint URL: https://, or http:// on loopback only (the Azurite emulator)."""
    if value is None:
        return value
    parts = urlsplit(value)
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost")):
        raise ValueError("must be an https:// URL (http:// only for an emulator on 127.0.0.1 or localhost)")
    return value.rstrip("/")


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
    storage_endpoint: str | None = Field(
        default=None,
        description="blob endpoint of the workspace's storage if not https://<account>.blob.<the cloud's storage "
        "suffix> (Azure Stack, a private endpoint; http:// only on loopback, for the Azurite emulator)",
    )

    @field_validator("storage_endpoint")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        return storage_endpoint(value)


class AzureMLSharedRegistry(ConfigModel):
    """An Azure ML registry (kind azureml-registry): models shared by the workspaces of many regions."""

    kind: Literal["azureml-registry"]
    registry_name: str = Field(description="the Azure ML registry's name, e.g. contoso-ml-registry")
    location: str = Field(description="the registry's primary region, e.g. westeurope (where it is discovered)")
    cloud: CloudName = Field(
        default="AzureCloud", description="Azure cloud of the registry (AzureCloud, AzureUSGovernment, AzureChinaCloud)"
    )
    discovery_endpoint: str | None = Field(
        default=None,
        description="registry discovery endpoint if not https://<location>.<the cloud's Azure ML API host>/ "
        "(a private or test endpoint)",
    )
    authority_host: str | None = Field(
        default=None, description="Entra authority if not the cloud's own, e.g. https://login.microsoftonline.us"
    )
    managed_identity_client_id: str | None = Field(
        default=None, description="client id of a user-assigned managed identity (default: AZURE_CLIENT_ID)"
    )

    @field_validator("registry_name")
    @classmethod
    def _registry_name(cls, value: str) -> str:
        if not _REGISTRY_NAME.match(value):
            raise ValueError("must be 3-33 letters, digits, '-' or '_', starting with a letter or digit")
        return value

    @field_validator("location")
    @classmethod
    def _location(cls, value: str) -> str:
        if not _LOCATION.match(value):
            raise ValueError("must be an Azure region name such as westeurope or eastus2 (lower case, no spaces)")
        return value

    @field_validator("discovery_endpoint", "authority_host")
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
    storage_endpoint: str | None = Field(
        default=None,
        description="databricks-uc: blob endpoint that model files are read at if not https://<account>.blob.<suffix> "
        "of their abfss:// location (a private endpoint; http:// only on loopback, for the Azurite emulator)",
    )

    @field_validator("storage_endpoint")
    @classmethod
    def _storage(cls, value: str | None) -> str | None:
        return storage_endpoint(value)

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
        if self.storage_endpoint and self.kind != "databricks-uc":
            raise ValueError("`storage_endpoint` belongs to kind databricks-uc (Unity Catalog's storage) only")
        return self


RegistryConfig = Annotated[
    MlflowRegistry | AzureMLRegistry | AzureMLSharedRegistry | DatabricksRegistry, Field(discriminator="kind")
]
