"""Where a configured registry's MLflow API lives (tracking URI, registry URI)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from shared.config.registries import AzureMLRegistry, AzureMLSharedRegistry, DatabricksRegistry, MlflowRegistry
from shared.errors import PermanentError


def registry_uris(
    config: MlflowRegistry | AzureMLRegistry | AzureMLSharedRegistry | DatabricksRegistry,
    env: Mapping[str, str] | None = None,
) -> tuple[str, str | None]:
    """``env``: the app settings a Databricks `token_setting` names (default: the process environment)."""
    if isinstance(config, MlflowRegistry):
        return config.tracking_uri, config.registry_uri
    if isinstance(config, DatabricksRegistry):
        from shared.adapters.databricks_auth import profile_for

        # a profile per registry entry: explicit clients, no global DATABRICKS_HOST/DATABRICKS_TOKEN
        profile = profile_for(config, env)
        scheme = "databricks-uc" if config.kind == "databricks-uc" else "databricks"
        return f"databricks://{profile}", f"{scheme}://{profile}"
    if isinstance(config, AzureMLRegistry):
        from shared.adapters.azureml_workspace import mlflow_tracking_uri

        uri = mlflow_tracking_uri(config)
        return uri, uri
    if isinstance(config, AzureMLSharedRegistry):
        raise PermanentError(
            f"Azure ML registry {config.registry_name!r} is a register target only: it cannot be a source "
            "(name an azureml workspace, mlflow or databricks registry in `sources:` instead)"
        )
    raise PermanentError(f"registry kind {getattr(config, 'kind', '?')!r} has no MLflow API")


def redact(uri: str) -> str:
    """Drop credentials from a URI before it goes into a tag or a log."""
    parts = urlsplit(uri)
    if parts.password or parts.username:
        host = parts.hostname or ""
        if parts.port:
            host += f":{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))
    return uri


def mlflow_version_page(tracking_uri: Any, name: Any, version: Any) -> str | None:
    """The MLflow UI page of a model version, for a registry served over HTTP (`#/models/<name>/versions/<v>`)."""
    parts = urlsplit(tracking_uri) if isinstance(tracking_uri, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc or not name or not version:
        return None
    return f"{tracking_uri.rstrip('/')}/#/models/{quote(str(name), safe='')}/versions/{quote(str(version), safe='')}"
