"""Where a configured registry's MLflow API lives (tracking URI, registry URI)."""

from __future__ import annotations

from shared.config.registries import AzureMLRegistry, DatabricksRegistry, MlflowRegistry
from shared.errors import PermanentError


def registry_uris(config: MlflowRegistry | AzureMLRegistry | DatabricksRegistry) -> tuple[str, str | None]:
    if isinstance(config, MlflowRegistry):
        return config.tracking_uri, config.registry_uri
    if isinstance(config, DatabricksRegistry):
        # MLflow resolves the "databricks" URIs through databricks-sdk's unified auth
        # (DATABRICKS_HOST plus a token or an Azure identity).
        return "databricks", "databricks-uc" if config.kind == "databricks-uc" else "databricks"
    if isinstance(config, AzureMLRegistry):
        from shared.adapters.azureml_workspace import mlflow_tracking_uri

        uri = mlflow_tracking_uri(config)
        return uri, uri
    raise PermanentError(f"registry kind {getattr(config, 'kind', '?')!r} has no MLflow API")
