"""Azure ML registries through azure-ai-ml's `MLClient(registry_name=...)`: list a model's versions and
create one from a local folder (the SDK asks the registry for a temporary SAS, uploads there, then
PUTs the version). Versions come back as small frozen records; azure-ai-ml loads when a client is made.

`create_from_blobs` does the same without a local folder: the files come from read SAS URLs (an Azure
ML workspace's storage) and the storage service copies them into the temporary SAS container itself
(shared/adapters/blob_copy.py); the version then names that folder by URL, which is what the SDK's
own upload leaves in `Model.path` for a registry (`ArtifactStorageInfo.full_storage_path`), so the SDK
uploads nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters.azure_errors import bounded_retry_policy
from shared.adapters.credentials import azure_credential
from shared.config.clouds import CLOUDS
from shared.config.registries import AzureMLSharedRegistry
from shared.domain.actions import short_hash
from shared.lineage import KEY_TAG
from shared.settings import AzureHttpSettings


@dataclass(frozen=True)
class RegistryModelVersion:
    name: str
    version: str
    tags: dict[str, str]
    path: str | None  # where the registry keeps the files


class VersionTaken(Exception):
    """Another copy registered ``name``/``version`` first."""

    def __init__(self, name: str, version: str, holder: RegistryModelVersion) -> None:
        super().__init__(f"{name}/{version} was registered by another copy first")
        self.holder = holder


def registry_model_uri(registry: str, name: str, version: str) -> str:
    """How a deployment in any workspace names a registry model."""
    return f"azureml://registries/{registry}/models/{name}/versions/{version}"


def discovery_endpoint(cfg: AzureMLSharedRegistry) -> str:
    """The registry discovery endpoint: the configured one, else the registry's regional Azure ML API."""
    return cfg.discovery_endpoint or f"https://{cfg.location}.{CLOUDS[cfg.cloud].aml_api}"


def cloud_kwargs(cfg: AzureMLSharedRegistry) -> dict[str, Any]:
    """MLClient keywords for the registry's cloud, with discovery at the registry's own region."""
    builtin = CLOUDS[cfg.cloud]
    discovery = discovery_endpoint(cfg).rstrip("/") + "/"
    authority = (cfg.authority_host or builtin.authority).rstrip("/") + "/"
    # azure-ai-ml refuses to redefine a cloud name, so the name carries the endpoints it stands for
    return {
        "cloud": "modelops-registry-" + short_hash(f"{cfg.cloud}|{discovery}|{authority}", 12),
        "cloud_metadata": {
            "azure_portal": builtin.portal,
            "resource_manager": builtin.arm + "/",
            "active_directory": authority,
            "aml_resource_id": builtin.aml + "/",
            "storage_endpoint": builtin.storage_suffix,
            "registry_discovery_endpoint": discovery,
        },
    }


class RegistryModelsClient:
    """One Azure ML registry's models; the app's identity (shared.adapters.credentials) by default."""

    def __init__(
        self, cfg: AzureMLSharedRegistry, credential: Any | None = None, http: AzureHttpSettings | None = None
    ) -> None:
        from azure.ai.ml import MLClient

        http = http or AzureHttpSettings()  # MODELOPS_AZURE_*: not azure-core's 10 retries and 300 s timeouts
        self.registry = cfg.registry_name
        self._ml = MLClient(
            credential
            or azure_credential(
                cloud=cfg.cloud, authority=cfg.authority_host, managed_identity_client_id=cfg.managed_identity_client_id
            ),
            registry_name=cfg.registry_name,
            enable_telemetry=False,
            show_progress=False,
            retry_policy=bounded_retry_policy(retry_total=http.retries, retry_backoff_max=http.backoff_max_seconds),
            connection_timeout=http.connection_timeout_seconds,
            read_timeout=http.read_timeout_seconds,
            **cloud_kwargs(cfg),
        )

    def versions(self, name: str) -> list[RegistryModelVersion]:
        """Every version of ``name`` (none when the model does not exist yet)."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return [_version(name, entity) for entity in self._ml.models.list(name=name)]
        except ResourceNotFoundError:
            return []

    def version(self, name: str, version: str) -> RegistryModelVersion | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return _version(name, self._ml.models.get(name=name, version=version))
        except ResourceNotFoundError:
            return None

    def create(
        self, name: str, version: str, folder: Path, *, tags: dict[str, str], description: str | None, mlflow: bool
    ) -> RegistryModelVersion:
        """Upload ``folder`` and register it as ``name``/``version`` (an MLflow model when ``mlflow``).

        The version number is ours to choose (the registry has no create-with-the-next-number), so two
        copies may choose the same one at once. The registry keeps a version's files once it exists: the
        slower copy's upload grant answers 409 "asset already exists" (azure-ai-ml then skips the upload,
        `_registry_utils.get_sas_uri_for_registry_asset`) or its PUT is refused ("Asset paths cannot be
        updated", the SDK's ASSET_PATH_ERROR). Whatever the refusal, a version that exists afterwards and
        is not this copy (``KEY_TAG`` differs) raises ``VersionTaken``; the caller picks the next number.
        """
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        model = Model(
            name=name,
            version=version,
            path=str(folder),
            type=AssetTypes.MLFLOW_MODEL if mlflow else AssetTypes.CUSTOM_MODEL,
            tags=tags,
            description=description,
        )
        return self._create_or_taken(model, name, version, tags)

    def _create_or_taken(self, model: Any, name: str, version: str, tags: dict[str, str]) -> RegistryModelVersion:
        try:
            created = _version(name, self._ml.models.create_or_update(model))
        except Exception:
            there = self.version(name, version)
            if there is None:
                raise
            if there.tags.get(KEY_TAG) != tags.get(KEY_TAG):
                raise VersionTaken(name, version, there) from None
            return there  # this copy's own version: an earlier answer was lost
        if created.tags.get(KEY_TAG) != tags.get(KEY_TAG):
            raise VersionTaken(name, version, created)  # a PUT answered with another copy's version
        return created

    def create_from_blobs(
        self,
        name: str,
        version: str,
        sources: dict[str, str],
        *,
        tags: dict[str, str],
        description: str | None,
        http: AzureHttpSettings | None = None,
    ) -> RegistryModelVersion:
        """Register ``name``/``version`` from the files at ``sources`` (relative path -> read SAS URL),
        copied blob to blob into the registry's temporary upload container. Raises
        `blob_copy.CopyRefused` when the registry hands out no container or the storage refuses."""
        from urllib.parse import quote

        from azure.ai.ml._utils._registry_utils import (
            get_asset_body_for_registry_storage,
            get_sas_uri_for_registry_asset,
        )
        from azure.ai.ml.constants import AssetTypes
        from azure.ai.ml.entities import Model

        from shared.adapters import blob_copy

        models = self._ml.models  # the SDK's own call for the upload location (ModelOperations.create_or_update)
        sas_uri = get_sas_uri_for_registry_asset(
            service_client=models._registry_service_client,
            name=name,
            version=version,
            resource_group=models._resource_group_name,
            registry=self.registry,
            body=get_asset_body_for_registry_storage(self.registry, "models", name, version),
        )
        if not sas_uri:  # 409: the version exists (another copy's: VersionTaken, as for create)
            there = self.version(name, version)
            if there is not None and there.tags.get(KEY_TAG) != tags.get(KEY_TAG):
                raise VersionTaken(name, version, there)
            if there is not None:
                return there
            raise blob_copy.CopyRefused(f"registry {self.registry} handed out no upload container for {name}/{version}")
        container, _, query = sas_uri.partition("?")
        folder = f"{container.rstrip('/')}/LocalUpload/{short_hash(f'{name}/{version}', 16)}/model"
        for relative, url in sorted(sources.items()):
            blob_copy.copy_blob(url, f"{folder}/{quote(relative)}?{query}", http)
        model = Model(
            name=name,
            version=version,
            path=folder,
            type=AssetTypes.MLFLOW_MODEL if "MLmodel" in sources else AssetTypes.CUSTOM_MODEL,
            tags=tags,
            description=description,
        )
        return self._create_or_taken(model, name, version, tags)


def _version(name: str, entity: Any) -> RegistryModelVersion:
    return RegistryModelVersion(
        name=str(entity.name or name),
        version=str(entity.version),
        tags={str(k): str(v) for k, v in (entity.tags or {}).items()},
        path=getattr(entity, "path", None),
    )
