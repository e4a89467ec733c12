"""An Azure ML workspace's artifacts through azureml-mlflow, bound to the workspace that asks, and
downloaded from where the workspace's storage really is.

The plugin finds its workspace through `MlflowClient()` (the global tracking URI) and otherwise wants
a `?token=` in the artifact URI; MLflow passes the asking client's tracking URI, so that is used. Its
downloads fetch the read-SAS URL the artifact service hands out only when the host is
`*.blob.<the cloud's storage suffix>` and otherwise skip the file without a word (an empty copy).
Here a URL on the cloud's blob hosts, or under the registry entry's `storage_endpoint` (Azure Stack,
a private endpoint, Azurite), is downloaded with azure-storage-blob; any other host fails the copy,
naming the setting.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from shared.config.clouds import CLOUDS
from shared.config.registries import AzureMLRegistry
from shared.errors import PermanentError


@dataclass(frozen=True)
class _Workspace:
    context: Any  # azureml-mlflow service context (carries our auth)
    storage_suffix: str
    storage_endpoint: str | None
    name: str


_lock = threading.Lock()
_workspaces: dict[str, _Workspace] = {}  # tracking URI without query -> what its artifacts need


def bind(tracking_uri: str, context: Any, cfg: AzureMLRegistry) -> None:
    """Serve `azureml://` artifact URIs asked for by clients of ``tracking_uri`` from this workspace."""
    from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry

    with _lock:
        _workspaces[_key(tracking_uri)] = _Workspace(
            context, CLOUDS[cfg.cloud].storage_suffix, cfg.storage_endpoint, cfg.workspace
        )
    _artifact_repository_registry.register("azureml", _artifact_repository)


def check_download_url(url: str, *, storage_suffix: str, storage_endpoint: str | None, workspace: str) -> None:
    """Refuse a download URL that is neither on the cloud's blob hosts nor under ``storage_endpoint``."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "https" and host.endswith(f".blob.{storage_suffix}"):
        return
    if storage_endpoint and url.startswith(storage_endpoint.rstrip("/") + "/"):
        return
    raise PermanentError(
        f"workspace {workspace!r} handed out an artifact download URL on {parts.scheme}://{parts.netloc}, which "
        f"is not blob storage of its cloud (https://<account>.blob.{storage_suffix}); if the workspace's storage "
        "is reached at another address (Azure Stack, a private endpoint), set `storage_endpoint: <blob endpoint "
        "URL>` on its registries: entry"
    )


def _key(uri: str) -> str:
    return uri.split("?")[0]


def _artifact_repository(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None) -> Any:
    from azureml.mlflow.entry_point_loaders import azureml_artifacts_builder

    workspace = _workspaces.get(_key(tracking_uri)) if tracking_uri else None
    if workspace is None or "/registries/" in artifact_uri:
        return azureml_artifacts_builder(artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
    return _workspace_repository(artifact_uri, workspace, tracking_uri, registry_uri)


def _download(url: str, local_path: str, workspace: _Workspace) -> None:
    from azure.storage.blob import BlobClient
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    try:
        check_download_url(
            url,
            storage_suffix=workspace.storage_suffix,
            storage_endpoint=workspace.storage_endpoint,
            workspace=workspace.name,
        )
    except PermanentError as refused:
        # MLflow gathers per-file failures into one MlflowException; a permanent code keeps it permanent
        raise MlflowException(str(refused), error_code=INVALID_PARAMETER_VALUE) from refused
    target = Path(local_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as file:
        BlobClient.from_blob_url(url).download_blob().readinto(file)


def _workspace_repository(
    artifact_uri: str, workspace: _Workspace, tracking_uri: str | None, registry_uri: str | None
) -> Any:
    from azure.core.exceptions import HttpResponseError
    from azureml.mlflow._client.artifact.local_artifact_client import LocalArtifactClient
    from azureml.mlflow._client.artifact.run_artifact_client import RunArtifactsClient
    from azureml.mlflow._store.artifact.artifact_repo import AzureMLflowArtifactRepository
    from azureml.mlflow._store.artifact.utils import artifact_uri_decomp
    from mlflow.store.artifact.artifact_repo import ArtifactRepository

    context = workspace.context

    def content_url(read: Any, remote_path: str, **where: str) -> str:
        try:
            info = read(
                subscription_id=context.subscription_id,
                resource_group_name=context.resource_group_name,
                workspace_name=context.workspace_name,
                path=remote_path,
                **where,
            )
        except HttpResponseError as exc:
            if exc.status_code == 404:
                raise FileNotFoundError(f"artifact {remote_path} not found in workspace {workspace.name}") from exc
            raise
        return str(info.content_uri)

    class RunArtifacts(RunArtifactsClient):  # type: ignore[misc]
        def read_url(self, remote_path: str) -> str:
            read = self._client.run_artifacts.get_content_information
            return content_url(read, remote_path, experiment_name=self._experiment_name, run_id=self._run_id)

        def download_artifact(self, remote_path: str, local_path: str) -> None:
            _download(self.read_url(remote_path), local_path, workspace)

        def write_urls(self, remote_paths: list[str]) -> dict[str, str]:
            """Write SAS URLs of new artifacts (what log_artifacts uploads to), by remote path."""
            created = self._create_empty_artifacts(paths=remote_paths)
            return {p: str(created.artifact_content_information[p].content_uri) for p in remote_paths}

    class StoredArtifacts(LocalArtifactClient):  # type: ignore[misc]
        def read_url(self, remote_path: str) -> str:
            read = self._client.artifacts.get_content_information
            return content_url(read, remote_path, origin=self._origin, container=self._container)

        def download_artifact(self, remote_path: str, local_path: str) -> None:
            _download(self.read_url(remote_path), local_path, workspace)

    class WorkspaceArtifactRepository(AzureMLflowArtifactRepository):  # type: ignore[misc]
        def __init__(self) -> None:
            ArtifactRepository.__init__(self, artifact_uri, tracking_uri=tracking_uri, registry_uri=registry_uri)
            parts = artifact_uri_decomp(artifact_uri)  # the same decomposition the plugin makes
            if "experiment" in parts and "runid" in parts:
                self.artifacts = RunArtifacts(context, parts["experiment"], parts["runid"], parts.get("artifact_path"))
            else:
                self.artifacts = StoredArtifacts(context, parts["origin"], parts["container"], parts["artifact_path"])

        def modelops_read_urls(self) -> dict[str, str] | None:
            """Read SAS URLs of every file below this URI, by relative path; None if one is not on the
            workspace's blob storage (the streaming download then names the fix)."""
            prefix = f"{self.artifacts.path.rstrip('/')}/" if self.artifacts.path else ""
            urls = {}
            for path in self.artifacts.get_file_paths():
                if path.startswith(prefix) and len(path) > len(prefix):
                    url = self.artifacts.read_url(path)
                    try:
                        check_download_url(
                            url,
                            storage_suffix=workspace.storage_suffix,
                            storage_endpoint=workspace.storage_endpoint,
                            workspace=workspace.name,
                        )
                    except PermanentError:
                        return None
                    urls[path[len(prefix) :]] = url
            return urls

        def modelops_write_urls(self, artifact_path: str, relative_paths: list[str]) -> dict[str, str] | None:
            """Write SAS URLs for new files ``artifact_path/<relative path>`` of this run; None when this
            URI is not a run's (a registry's stored artifacts take no new files)."""
            if not isinstance(self.artifacts, RunArtifacts):
                return None
            base = self._get_full_artifact_path(artifact_path)
            remote = {rel: f"{base}/{rel}" for rel in relative_paths}
            urls = self.artifacts.write_urls(list(remote.values()))
            return {rel: urls[path] for rel, path in remote.items()}

    return WorkspaceArtifactRepository()


def read_urls(artifact_uri: str, tracking_uri: str) -> dict[str, str] | None:
    """Read SAS URLs of the files under an ``azureml://`` artifact URI of a bound workspace, by path
    below it; None for any other store (or a file not on the workspace's blob storage)."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if not artifact_uri.startswith("azureml:"):
        return None
    urls = getattr(get_artifact_repository(artifact_uri, tracking_uri=tracking_uri), "modelops_read_urls", None)
    return urls() if urls is not None else None


def write_urls(run_artifact_uri: str, tracking_uri: str, artifact_path: str, paths: list[str]) -> dict[str, str] | None:
    """Write SAS URLs for ``paths`` under ``artifact_path`` of a bound workspace's run (its artifact URI),
    as `log_artifacts` would upload them; None for any other store."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    if not run_artifact_uri.startswith("azureml:"):
        return None
    repo = get_artifact_repository(run_artifact_uri, tracking_uri=tracking_uri)
    urls = getattr(repo, "modelops_write_urls", None)
    return urls(artifact_path, paths) if urls is not None else None
