"""Registries: where models are copied to (and read from)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.config.base import ConfigModel

COPY_EXPERIMENT = "modelops-reactor-copies"


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
    arm_endpoint: str = Field(
        default="https://management.azure.com",
        description="ARM endpoint; change for sovereign clouds, e.g. https://management.usgovcloudapi.net",
    )
    authority_host: str | None = Field(default=None, description="Entra authority for sovereign clouds")
    experiment: str = Field(default=COPY_EXPERIMENT, description="experiment that holds the copy runs")


class DatabricksRegistry(ConfigModel):
    """A Databricks workspace registry (kind databricks) or Unity Catalog (kind databricks-uc)."""

    kind: Literal["databricks", "databricks-uc"]
    host: str = Field(description="workspace URL, e.g. https://adb-123.4.azuredatabricks.net")
    experiment: str = Field(default="/Shared/modelops-reactor-copies", description="workspace experiment path")


RegistryConfig = Annotated[MlflowRegistry | AzureMLRegistry | DatabricksRegistry, Field(discriminator="kind")]
