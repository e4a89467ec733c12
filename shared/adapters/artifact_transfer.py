"""Moving a model's artifact files for a register copy: parallel and ranged where the stores allow.

Download from an MLflow tracking server's artifact proxy (``mlflow-artifacts:/``, the
HttpArtifactRepository): every file is listed first, then fetched by ``WORKERS`` threads at once;
a file larger than ``RANGE_BYTES`` is fetched as ranged GETs (the server's `send_file` answers
Range with 206) written in place into a preallocated file. MLflow's own download streams each
file in one GET, which on this machine's one-worker server took ~3x as long for a big file.
Memory stays bounded: each worker holds one 1 MB chunk. A server that ignores Range (200) gets
that file in one stream. Any other store: MLflow's own download.

Upload into a local file artifact store (the target's ``artifact_location`` on this disk): the
downloaded files are hard-linked into the run's artifact directory instead of copied again, when
they are on the same file system (else copied). Any other store: MLflow's own `log_artifacts`.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WORKERS = 8
RANGE_BYTES = 32 << 20
CHUNK_BYTES = 1 << 20


class _NoRanges(Exception):
    """The server answered a ranged GET with the whole file (200): fetch it in one stream."""


@dataclass(frozen=True)
class _Part:
    path: str  # relative to the repository's root
    local: Path
    start: int | None = None  # None: the whole file in one GET
    end: int | None = None  # inclusive


def download(download_uri: str, dst: Path, tracking_uri: str) -> Path:
    """The artifacts under ``download_uri`` in a directory below ``dst``; returns that directory."""
    import mlflow.artifacts
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

    repo = get_artifact_repository(download_uri, tracking_uri=tracking_uri)
    files = list(_files(repo, None)) if isinstance(repo, HttpArtifactRepository) else []
    if not files:  # another store, or a single file (a file lists as nothing): MLflow's own download
        return Path(
            mlflow.artifacts.download_artifacts(artifact_uri=download_uri, dst_path=str(dst), tracking_uri=tracking_uri)
        )
    root = dst / "artifacts"
    root.mkdir(parents=True, exist_ok=True)
    parts: list[_Part] = []
    for path, size in files:
        local = root / path
        local.parent.mkdir(parents=True, exist_ok=True)
        if size is None or size <= RANGE_BYTES:
            parts.append(_Part(path, local))
            continue
        with local.open("wb") as out:
            out.truncate(size)
        parts.extend(
            _Part(path, local, start, min(size, start + RANGE_BYTES) - 1) for start in range(0, size, RANGE_BYTES)
        )
    whole_again: set[str] = set()
    with ThreadPoolExecutor(WORKERS, thread_name_prefix="artifact-get") as pool:
        for part, outcome in zip(parts, pool.map(lambda p: _fetch_quietly(repo, p), parts), strict=True):
            if isinstance(outcome, _NoRanges):
                whole_again.add(part.path)
            elif isinstance(outcome, BaseException):
                raise outcome
        for path in sorted(whole_again):
            _fetch(repo, _Part(path, root / path))
    return root


def _files(repo: Any, path: str | None) -> Iterator[tuple[str, int | None]]:
    for info in repo.list_artifacts(path):
        if info.is_dir:
            yield from _files(repo, info.path)
        else:
            yield info.path, info.file_size


def _fetch_quietly(repo: Any, part: _Part) -> BaseException | None:
    try:
        _fetch(repo, part)
    except BaseException as exc:  # handed back to the caller's thread, which raises it
        return exc
    return None


def _fetch(repo: Any, part: _Part) -> None:
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import augmented_raise_for_status, http_request

    headers = {} if part.start is None else {"Range": f"bytes={part.start}-{part.end}"}
    endpoint = posixpath.join("/", part.path)
    response = http_request(
        get_default_host_creds(repo.artifact_uri), endpoint, "GET", stream=True, extra_headers=headers
    )
    with response:
        augmented_raise_for_status(response)
        if part.start is None:
            with part.local.open("wb") as out:
                for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                    out.write(chunk)
            return
        if response.status_code != 206:
            raise _NoRanges(part.path)
        fd = os.open(part.local, os.O_WRONLY)
        try:
            offset = part.start
            for chunk in response.iter_content(chunk_size=CHUNK_BYTES):
                os.pwrite(fd, chunk, offset)
                offset += len(chunk)
        finally:
            os.close(fd)
        expected = int(part.end or 0) - part.start + 1
        if offset - part.start != expected:
            raise OSError(
                f"range {part.start}-{part.end} of {part.path}: got {offset - part.start} of {expected} bytes"
            )


def upload(client: Any, run_id: str, local_dir: Path, artifact_path: str) -> None:
    """``client.log_artifacts(run_id, local_dir, artifact_path)``, hard-linking into a local store."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    artifact_uri = client.get_run(run_id).info.artifact_uri
    if "://" in artifact_uri and not artifact_uri.startswith("file:"):
        # a remote store: its repository may need the client's tracking URI (azureml://), so the client uploads
        client.log_artifacts(run_id, str(local_dir), artifact_path=artifact_path)
        return
    repo = get_artifact_repository(artifact_uri)
    if not isinstance(repo, LocalArtifactRepository):
        client.log_artifacts(run_id, str(local_dir), artifact_path=artifact_path)
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
