"""Moving a model's artifact files for a register copy: parallel and ranged where the stores allow.

Download from an MLflow tracking server's artifact proxy (``mlflow-artifacts:/``, the
HttpArtifactRepository): every file is listed first, then fetched by ``WORKERS`` threads at once;
a file larger than ``RANGE_BYTES`` is fetched as ranged GETs (the server's `send_file` answers
Range with 206) written in place into a preallocated file, the body spliced from the socket into
the file where it can be (shared/adapters/http_splice.py: no byte through Python). Memory stays
bounded: each worker holds at most one 1 MB chunk. A server that ignores Range (200) gets that
file in one stream. ``runs:/RUN/NAME`` (a version registered from a run) is resolved to the run's
artifact location and its logged model's, as MLflow resolves it; any other store, or a source
MLflow cannot list: MLflow's own download.

Between two Azure ML workspaces (`copy_in_storage`): the storage service copies each file from the
source's read SAS URL to the target run's write SAS URL (Put Block From URL), nothing is downloaded.

Upload into a local file artifact store (the target's ``artifact_location`` on this disk): the
downloaded files are hard-linked into the run's artifact directory instead of copied again, when
they are on the same file system (else copied). Any other store: MLflow's own `log_artifacts`.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters import http_splice

WORKERS = 8
RANGE_BYTES = 32 << 20


class _NoRanges(Exception):
    """The server answered a ranged GET with the whole file (200): fetch it in one stream."""


@dataclass(frozen=True)
class _Part:
    repo: Any  # the HttpArtifactRepository the file is listed in
    path: str  # relative to the repository's root
    local: Path
    start: int | None = None  # None: the whole file in one GET
    end: int | None = None  # inclusive


def download(download_uri: str, dst: Path, tracking_uri: str) -> Path:
    """The artifacts under ``download_uri`` in a directory below ``dst``; returns that directory."""
    import mlflow.artifacts

    files = _proxied_files(download_uri, tracking_uri)
    if not files:  # another store, or a single file (a file lists as nothing): MLflow's own download
        return Path(
            mlflow.artifacts.download_artifacts(artifact_uri=download_uri, dst_path=str(dst), tracking_uri=tracking_uri)
        )
    root = dst / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    parts: list[_Part] = []
    for path, (repo, size) in sorted(files.items()):
        local = root / path
        local.parent.mkdir(parents=True, exist_ok=True)
        if size is None or size <= RANGE_BYTES:
            parts.append(_Part(repo, path, local))
            continue
        with local.open("wb") as out:
            out.truncate(size)
        parts.extend(
            _Part(repo, path, local, start, min(size, start + RANGE_BYTES) - 1) for start in range(0, size, RANGE_BYTES)
        )
    whole_again: dict[str, Any] = {}
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="artifact-get") as pool:
        for part, outcome in zip(parts, pool.map(_fetch_quietly, parts), strict=True):
            if isinstance(outcome, _NoRanges):
                whole_again[part.path] = part.repo
            elif isinstance(outcome, BaseException):
                raise outcome
        for path, repo in sorted(whole_again.items()):
            _fetch(_Part(repo, path, root / path))
    return root


def _proxied_files(download_uri: str, tracking_uri: str) -> dict[str, tuple[Any, int | None]]:
    """Every file under ``download_uri`` by its relative path, with the artifact-proxy repository it
    is fetched from and its size; empty when any of it is not behind a tracking server's proxy.

    ``runs:/RUN/NAME`` is what a registry version made from a run's model names; MLflow 3 downloads
    it as the run's artifacts under NAME, overlaid by the artifacts of the run's logged model called
    NAME (RunsArtifactRepository.download_artifacts and _get_logged_model_artifact_repo). The same is
    done here with the public client calls, so the ranged transfer serves that case too.
    """
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository

    def listed(uri: str) -> dict[str, tuple[Any, int | None]] | None:
        repo = get_artifact_repository(uri, tracking_uri=tracking_uri)
        if not isinstance(repo, HttpArtifactRepository):
            return None
        return {path: (repo, size) for path, size in _files(repo, None)}

    if not RunsArtifactRepository.is_runs_uri(download_uri):
        return listed(download_uri) or {}
    run_id, artifact_path = RunsArtifactRepository.parse_runs_uri(download_uri)
    if not artifact_path:
        return {}
    run_files = listed(RunsArtifactRepository.get_underlying_uri(download_uri, tracking_uri))
    if run_files is None:
        return {}
    name, _, rest = artifact_path.partition("/")
    model_uri = _logged_model_location(tracking_uri, run_id, name)
    if model_uri is None:
        return run_files
    model_files = listed(f"{model_uri.rstrip('/')}/{rest}" if rest else model_uri)
    if model_files is None:
        return {}
    return {**run_files, **model_files}  # the model's files replace the run's of the same name


def _logged_model_location(tracking_uri: str, run_id: str, name: str) -> str | None:
    """The artifact location of the logged model ``name`` that run ``run_id`` produced, if any."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    token: str | None = None
    while True:
        page = client.search_logged_models(
            experiment_ids=[experiment_id], filter_string=f"name = '{name}'", page_token=token
        )
        for model in page:
            if model.source_run_id == run_id:
                return str(model.artifact_location)
        token = page.token
        if not token:
            return None


def _files(repo: Any, path: str | None) -> Iterator[tuple[str, int | None]]:
    for info in repo.list_artifacts(path):
        if info.is_dir:
            yield from _files(repo, info.path)
        else:
            yield info.path, info.file_size


def _fetch_quietly(part: _Part) -> BaseException | None:
    try:
        _fetch(part)
    except BaseException as exc:  # handed back to the caller's thread, which raises it
        return exc
    return None


def _fetch(part: _Part) -> None:
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import augmented_raise_for_status, http_request

    headers = {} if part.start is None else {"Range": f"bytes={part.start}-{part.end}"}
    endpoint = posixpath.join("/", part.path)
    response = http_request(
        get_default_host_creds(part.repo.artifact_uri), endpoint, "GET", stream=True, extra_headers=headers
    )
    with response:
        augmented_raise_for_status(response)
        if part.start is None:
            fd = os.open(part.local, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        elif response.status_code != 206:
            raise _NoRanges(part.path)
        else:
            fd = os.open(part.local, os.O_WRONLY)
        try:
            got = http_splice.write_body(response, fd, part.start or 0)
        finally:
            os.close(fd)
    if part.start is not None and got != int(part.end or 0) - part.start + 1:
        expected = int(part.end or 0) - part.start + 1
        raise OSError(f"range {part.start}-{part.end} of {part.path}: got {got} of {expected} bytes")


NO_BLOB_SOURCE = "the source hands out no blob URLs (not an Azure ML workspace on its blob storage)"


def blob_sources(download_uri: str, src_tracking_uri: str) -> dict[str, str] | str:
    """Read SAS URLs of the files under ``download_uri`` by relative path, when the source is an Azure
    ML workspace's blob storage; else why not (``NO_BLOB_SOURCE``, or the error met asking)."""
    from azure.core.exceptions import AzureError
    from mlflow.exceptions import MlflowException

    from shared.adapters import azureml_artifacts

    try:
        sources = azureml_artifacts.read_urls(download_uri, src_tracking_uri)
    except (AzureError, MlflowException, OSError) as exc:
        return f"listing the source's blob URLs failed ({type(exc).__name__}: {exc})"
    return sources or NO_BLOB_SOURCE


def copy_in_storage(
    download_uri: str,
    src_tracking_uri: str,
    dst_tracking_uri: str,
    run_artifact_uri: Callable[[], str],
    artifact_path: str,
) -> tuple[int, int] | str:
    """Copy the files under ``download_uri`` to ``artifact_path`` of the target run inside blob storage
    (shared/adapters/blob_copy.py), when the source hands out read SAS URLs (an Azure ML workspace)
    and the target run takes files through write SAS URLs (an Azure ML workspace). Returns (files,
    bytes) copied, or why it was not done: the caller then streams the files (and meets any error
    again there, with its own classification)."""
    from azure.core.exceptions import AzureError
    from mlflow.exceptions import MlflowException

    from shared.adapters import azureml_artifacts, blob_copy

    sources = blob_sources(download_uri, src_tracking_uri)
    if isinstance(sources, str):
        return sources
    try:
        paths = sorted(sources)
        targets = azureml_artifacts.write_urls(run_artifact_uri(), dst_tracking_uri, artifact_path, paths)
        if targets is None:
            return "the target store takes no blob URLs (not an Azure ML workspace run)"
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="blob-copy-file") as pool:
            sizes = list(pool.map(lambda rel: blob_copy.copy_blob(sources[rel], targets[rel]), paths))
    except blob_copy.CopyRefused as refused:
        return str(refused)
    except (AzureError, MlflowException, OSError) as exc:
        return f"the server-side copy failed ({type(exc).__name__}: {exc})"
    return len(sizes), sum(sizes)


def upload(client: Any, run_id: str, local_dir: Path, artifact_path: str) -> None:
    """``client.log_artifacts(run_id, local_dir, artifact_path)``, hard-linking into a local store."""
    artifact_uri = client.get_run(run_id).info.artifact_uri
    by_client = lambda: client.log_artifacts(run_id, str(local_dir), artifact_path)  # noqa: E731
    _upload(client, artifact_uri, local_dir, artifact_path, by_client)


def upload_to_model(client: Any, model_id: str, local_dir: Path) -> None:
    """``client.log_model_artifacts(model_id, local_dir)`` (an MLflow 3 logged model), hard-linking locally."""
    artifact_uri = client.get_logged_model(model_id).artifact_location
    _upload(client, artifact_uri, local_dir, "", lambda: client.log_model_artifacts(model_id, str(local_dir)))


def _upload(client: Any, artifact_uri: str, local_dir: Path, artifact_path: str, by_client: Callable[[], None]) -> None:
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    if "://" in artifact_uri and not artifact_uri.startswith("file:"):
        by_client()  # a remote store: its repository may need the client's tracking URI (azureml://)
        return
    # `mlflow-artifacts:/...` (a tracking server's proxied store) has no "//": it resolves against the
    # client's tracking URI, never the process-wide one
    repo = get_artifact_repository(artifact_uri, tracking_uri=client.tracking_uri)
    if not isinstance(repo, LocalArtifactRepository):
        by_client()
        return
    target = Path(repo.artifact_dir) / artifact_path
    for source in sorted(p for p in local_dir.rglob("*") if p.is_file()):
        dest = target / source.relative_to(local_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.unlink(missing_ok=True)  # a resumed upload replaces what an interrupted one left
        try:
            os.link(source, dest)
        except OSError:  # another file system, or links refused: copy
            shutil.copyfile(source, dest)
