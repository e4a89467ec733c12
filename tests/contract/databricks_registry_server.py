"""A Databricks workspace model registry, as MLflow's Databricks client talks to it, backed by a real MLflow server.

What is served, and the reference followed for each:

- `/api/2.0/mlflow/*` (registered models, model versions, runs): the Databricks MLflow REST API
  (https://docs.databricks.com/api/workspace/modelregistry), which is MLflow's own REST API, so these calls are
  forwarded unchanged to a real `mlflow server`.
- `GET /api/2.0/mlflow/model-versions/get-download-uri` answers `{"artifact_uri": "dbfs:/..."}`
  (https://docs.databricks.com/api/model-registry/v1/get-model-version-download-uri.md): a workspace registry keeps
  a version's files under `dbfs:/databricks/mlflow-registry/<model version id>/models/<artifact path>`.
- DBFS, read side, as `DbfsRestArtifactRepository` (mlflow/store/artifact/dbfs_artifact_repo.py) calls it:
  `GET /api/2.0/dbfs/get-status` and `GET /api/2.0/dbfs/list` return FileInfo objects
  (`path`, `is_dir`, `file_size`, `modification_time`; https://docs.databricks.com/api/files/v2/list.md,
  https://docs.databricks.com/api/workspace/dbfs/getstatus), a missing path is 404 `RESOURCE_DOES_NOT_EXIST`;
  file bytes come from `GET /dbfs/<path>`, the streaming endpoint MLflow reads registry files through (MLflow
  PR #3360: registry paths are always read over REST, never through the FUSE mount).
- `GET /.well-known/databricks-config`, unauthenticated: the host-metadata probe databricks-sdk makes when it
  builds a config (databricks/sdk/oauth.py `get_host_metadata`, `HostMetadata`; no public REST page documents it).
- Every other call needs `Authorization: Bearer <token>`; a wrong or missing one is 401 with the Databricks error
  object `{"error_code", "message"}` (https://docs.databricks.com/api/account/errors).
"""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse

REGISTRY_ROOT = "/databricks/mlflow-registry"
_MODELS_DIR = "models/model"


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


class DatabricksRegistryContract:
    """The workspace registry in front of ``mlflow_url``; ``artifact_root`` is that server's artifact folder."""

    def __init__(
        self, *, token: str, mlflow_url: str, artifact_root: Path, workspace_id: str = "1234567890123456"
    ) -> None:
        self.token = token
        self.workspace_id = workspace_id
        self.mlflow_url = mlflow_url.rstrip("/")
        self.artifact_root = artifact_root.resolve()
        self.requests: list[dict[str, str]] = []
        self._versions: dict[str, Path] = {}  # model version id -> folder holding its files
        self._lock = threading.Lock()
        self._http = httpx.Client(base_url=self.mlflow_url, timeout=60)
        self.app = self._build()

    def calls(self, method: str, path_pattern: str) -> list[dict[str, str]]:
        """Requests seen so far (method, path, authorization) whose path matches ``path_pattern``."""
        with self._lock:
            return [r for r in self.requests if r["method"] == method and re.search(path_pattern, r["path"])]

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def authenticate(request: Request, call_next: Any) -> Response:
            authorization = request.headers.get("authorization", "")
            with self._lock:
                self.requests.append(
                    {"method": request.method, "path": request.url.path, "authorization": authorization}
                )
            if authorization != f"Bearer {self.token}" and request.url.path != "/.well-known/databricks-config":
                return _error(401, "UNAUTHENTICATED", "Invalid access token.")
            response: Response = await call_next(request)
            return response

        @app.get("/.well-known/databricks-config")
        def host_metadata(request: Request) -> Response:
            base = str(request.base_url).rstrip("/")
            return JSONResponse({"oidc_endpoint": f"{base}/oidc", "workspace_id": self.workspace_id})

        @app.get("/api/2.0/mlflow/model-versions/get-download-uri")
        def get_download_uri(name: str, version: str) -> Response:
            answer = self._http.get(
                "/api/2.0/mlflow/model-versions/get-download-uri", params={"name": name, "version": version}
            )
            if answer.status_code != 200:
                return Response(answer.content, answer.status_code, media_type="application/json")
            folder = self._local_folder(answer.json()["artifact_uri"])
            version_id = hashlib.sha256(f"{name}\0{version}".encode()).hexdigest()[:32]
            with self._lock:
                self._versions[version_id] = folder
            return JSONResponse({"artifact_uri": f"dbfs:{REGISTRY_ROOT}/{version_id}/{_MODELS_DIR}"})

        @app.api_route("/api/2.0/mlflow/{rest:path}", methods=["GET", "POST", "PATCH", "DELETE"])
        async def mlflow_api(rest: str, request: Request) -> Response:
            async with httpx.AsyncClient(base_url=self.mlflow_url, timeout=60) as backing:
                answer = await backing.request(
                    request.method,
                    f"/api/2.0/mlflow/{rest}",
                    params=list(request.query_params.multi_items()),
                    content=await request.body(),
                    headers={"content-type": request.headers.get("content-type", "")},
                )
            return Response(answer.content, answer.status_code, media_type=answer.headers.get("content-type"))

        @app.get("/api/2.0/dbfs/get-status")
        def get_status(path: str) -> Response:
            found = self._dbfs_file(path)
            if found is None:
                return _error(404, "RESOURCE_DOES_NOT_EXIST", f"No file or directory exists on path {path}.")
            return JSONResponse(self._file_info(path, found))

        @app.get("/api/2.0/dbfs/list")
        def list_dir(path: str) -> Response:
            found = self._dbfs_file(path)
            if found is None:
                return _error(404, "RESOURCE_DOES_NOT_EXIST", f"No file or directory exists on path {path}.")
            if found.is_file():  # listing a file answers the file's own FileInfo
                return JSONResponse({"files": [self._file_info(path, found)]})
            base = path.rstrip("/")
            files = [self._file_info(f"{base}/{child.name}", child) for child in sorted(found.iterdir())]
            return JSONResponse({"files": files} if files else {})

        @app.get("/dbfs/{path:path}")
        def read(path: str) -> Response:
            found = self._dbfs_file("/" + path)
            if found is None or not found.is_file():
                return _error(404, "RESOURCE_DOES_NOT_EXIST", f"No file exists on path /{path}.")
            return FileResponse(found, media_type="application/octet-stream")

        return app

    def _local_folder(self, artifact_uri: str) -> Path:
        """Where the backing server keeps a version's files (it answers `mlflow-artifacts:/<path>` URIs)."""
        parts = urlsplit(artifact_uri)
        if parts.scheme != "mlflow-artifacts":
            raise ValueError(f"the backing MLflow server answered {artifact_uri!r}; expected mlflow-artifacts:/...")
        return (self.artifact_root / parts.path.lstrip("/")).resolve()

    def _dbfs_file(self, dbfs_path: str) -> Path | None:
        """The local file or folder behind a `/databricks/mlflow-registry/<id>/models/model/...` path."""
        match = re.fullmatch(rf"{REGISTRY_ROOT}/([0-9a-f]{{32}})/{_MODELS_DIR}(/.*)?", dbfs_path.rstrip("/"))
        if match is None:
            return None
        with self._lock:
            folder = self._versions.get(match.group(1))
        if folder is None:
            return None
        found = (folder / (match.group(2) or "").lstrip("/")).resolve()
        if not found.is_relative_to(folder) or not found.exists():
            return None
        return found

    @staticmethod
    def _file_info(path: str, found: Path) -> dict[str, Any]:
        is_dir = found.is_dir()
        return {
            "path": path.rstrip("/"),
            "is_dir": is_dir,
            "file_size": 0 if is_dir else found.stat().st_size,
            "modification_time": int(found.stat().st_mtime * 1000),
        }

    def close(self) -> None:
        self._http.close()
