"""Unity Catalog's model registry, as MLflow's `UcModelRegistryStore` reads it, with the files in Azurite.

Written from MLflow's own client and protos (mlflow 3.x, `.venv/lib/python3.11/site-packages/mlflow/`):

- the routes and verbs come from `databricks_uc_registry_service.proto` as MLflow extracts them
  (`extract_api_info_for_service(UcModelRegistryService, "/api")`, mlflow/utils/rest_utils.py); GET
  requests carry the request message's fields as query parameters, POST as a JSON body
  (rest_utils.py `call_endpoint`);
- the messages are `mlflow/protos/databricks_uc_registry_messages.proto`
  (https://github.com/mlflow/mlflow/blob/master/mlflow/protos/databricks_uc_registry_messages.proto):
  `RegisteredModel {name, creation_timestamp, last_updated_timestamp, description, aliases[], tags[]}`,
  `ModelVersion {name, version, ..., source, run_id, status, storage_location, aliases[], tags[], model_id,
  model_params[], model_metrics[]}`: a version registered from an MLflow 3 logged model holds that model's id,
  params (`ModelParam {name, value}`) and metrics (`ModelMetric {key, value, timestamp, step, dataset_name,
  dataset_digest, model_id, run_id}`) itself, and its `run_id` may be empty (mlflow/utils/_unity_catalog_utils.py
  `model_version_from_uc_proto` reads them into the version's `model_id`, `params` and `metrics`),
  `TemporaryCredentials {oneof credentials {..., azure_user_delegation_sas {sas_token}}, expiration_time,
  storage_mode}`; enums go over JSON by name (`"READY"`, `"CUSTOMER_HOSTED"`);
- which calls are made, and with what: mlflow/store/_unity_catalog/registry/rest_store.py (search and get
  registered models, get / search model versions, get by alias, get-download-uri) and
  mlflow/store/artifact/unity_catalog_models_artifact_repo.py `_get_scoped_token_legacy` (POST
  generate-temporary-credentials with `{name, version, operation: MODEL_VERSION_OPERATION_READ}`);
  `search_registered_models` answers no aliases or tags there (MLflow drops them:
  mlflow/utils/_unity_catalog_utils.py `registered_model_search_from_uc_proto`), so none are sent;
- model version search takes a single `name='...'` or `run_id='...'` condition (the proto's comment on
  `SearchModelVersionsRequest.filter`; rest_store.py `search_model_versions`);
- errors are the Databricks error object `{"error_code", "message"}` (https://docs.databricks.com/api/account/errors);
  a missing model or version is 404 RESOURCE_DOES_NOT_EXIST; every call but the host-metadata probe
  (`GET /.well-known/databricks-config`, made by databricks-sdk: databricks/sdk/oauth.py `get_host_metadata`)
  needs `Authorization: Bearer <token>`, else 401.

Storage: a version's files sit under `abfss://<container>@<account>.dfs.core.windows.net/<metastore id>/models/
<model id>/versions/<version id>` (the managed-storage layout; the account is Azurite's). The credential is a real
SAS minted with Azurite's account key, read + list on the container, valid `sas_lifetime` seconds. Unity Catalog
hands out a *user delegation* SAS (https://learn.microsoft.com/en-us/rest/api/storageservices/create-user-delegation-sas),
which is signed with a key got through Entra; the client cannot tell the two apart (both are a query string), and
Azurite checks a service SAS's signature and expiry the same way
(https://learn.microsoft.com/en-us/rest/api/storageservices/create-service-sas). A directory-scoped SAS (`sr=d`)
needs a hierarchical namespace, which Azurite lacks, so the SAS here is container-scoped.

Seeding (what Unity Catalog's write path would have done): `add_version` uploads a model folder to Azurite and
records the version; `set_alias` points an alias at a version. Faults: `sas_lifetime < 0` hands out an
expired SAS, `forged_grants = n` the next n with a wrong signature; Azurite itself refuses both (403).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.contract.azurite import ACCOUNT, KEY, Azurite

API = "/api/2.0/mlflow/unity-catalog"
_FILTER = re.compile(r"^\s*(name|run_id)\s*=\s*'([^']*)'\s*$")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class _Version:
    version: str
    storage_location: str
    created: int
    run_id: str = ""
    source: str = ""
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    logged_model: dict[str, Any] = field(default_factory=dict)  # model_id, model_params, model_metrics


@dataclass
class _Model:
    name: str
    model_id: str
    created: int
    updated: int
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    versions: dict[str, _Version] = field(default_factory=dict)


class UnityCatalogContract:
    """The UC registry of one metastore, its files in ``container`` of ``azurite``."""

    def __init__(self, *, token: str, azurite: Azurite, container: str = "uc-metastore") -> None:
        self.token = token
        self.azurite = azurite
        self.container = container
        self.metastore_id = str(uuid.uuid4())
        self.sas_lifetime = 3600.0  # seconds; negative: the SAS handed out has already expired
        self.forged_grants = 0  # this many next grants carry a SAS whose signature storage refuses
        self.requests: list[dict[str, Any]] = []
        self._models: dict[str, _Model] = {}
        self._lock = threading.Lock()
        if not self._blobs().exists():
            self._blobs().create_container()
        self.app = self._build()

    # -- seeding -------------------------------------------------------------------------------

    def add_version(
        self,
        name: str,
        folder: Path,
        *,
        run_id: str = "",
        tags: dict[str, str] | None = None,
        description: str = "",
        logged_model: dict[str, Any] | None = None,
    ) -> str:
        """Register ``folder`` as the next version of ``name`` (a three-level name); returns the version.
        ``logged_model``: the MLflow 3 logged model it was registered from, as the version's JSON carries it."""
        with self._lock:
            now = _now_ms()
            model = self._models.get(name)
            if model is None:
                model = self._models[name] = _Model(name, str(uuid.uuid4()), now, now, description=f"{name} in UC")
            version = str(len(model.versions) + 1)
            path = f"{self.metastore_id}/models/{model.model_id}/versions/{uuid.uuid4()}"
        blobs = self._blobs()
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            with file.open("rb") as data:
                blobs.upload_blob(f"{path}/{file.relative_to(folder).as_posix()}", data, overwrite=True)
        location = f"abfss://{self.container}@{ACCOUNT}.dfs.core.windows.net/{path}"
        with self._lock:
            model.versions[version] = _Version(
                version,
                location,
                now,
                run_id=run_id,
                source=location,
                description=description,
                tags=dict(tags or {}),
                logged_model=dict(logged_model or {}),
            )
            model.updated = max(model.updated, now)
        return version

    def set_alias(self, name: str, alias: str, version: str) -> None:
        with self._lock:
            model = self._models[name]
            model.aliases[alias] = version
            model.updated = _now_ms()

    def forget_models(self) -> None:
        """An empty registry again (the files stay in Azurite)."""
        with self._lock:
            self._models.clear()

    def calls(self, method: str, path_pattern: str) -> list[dict[str, Any]]:
        """Requests seen so far (method, path, query, body, authorization) whose path matches."""
        with self._lock:
            return [r for r in self.requests if r["method"] == method and re.search(path_pattern, r["path"])]

    # -- storage -------------------------------------------------------------------------------

    def _blobs(self) -> Any:
        from azure.storage.blob import ContainerClient

        key = {"account_name": ACCOUNT, "account_key": KEY}
        return ContainerClient(self.azurite.blob_url, self.container, credential=key)

    def _sas(self) -> str:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        now = datetime.now(UTC)
        start = min(now, now + timedelta(seconds=self.sas_lifetime)) - timedelta(minutes=5)
        sas: str = generate_container_sas(
            ACCOUNT,
            self.container,
            account_key=KEY,
            permission=ContainerSasPermissions(read=True, list=True),
            start=start,
            expiry=now + timedelta(seconds=self.sas_lifetime),
        )
        with self._lock:
            forged, self.forged_grants = self.forged_grants > 0, max(0, self.forged_grants - 1)
        return re.sub(r"sig=[^&]+", "sig=Zm9yZ2VkLXNpZ25hdHVyZQ%3D%3D", sas) if forged else sas

    # -- the REST surface ----------------------------------------------------------------------

    def _model_json(self, model: _Model, *, full: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": model.name,
            "creation_timestamp": model.created,
            "last_updated_timestamp": model.updated,
            "description": model.description,
        }
        if full:
            body["aliases"] = [{"alias": a, "version": v} for a, v in sorted(model.aliases.items())]
            body["tags"] = [{"key": k, "value": v} for k, v in sorted(model.tags.items())]
        return body

    def _version_json(self, model: _Model, mv: _Version, *, full: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "name": model.name,
            "version": mv.version,
            "creation_timestamp": mv.created,
            "last_updated_timestamp": mv.created,
            "description": mv.description,
            "source": mv.source,
            "run_id": mv.run_id,
            "status": "READY",
            "storage_location": mv.storage_location,
            **mv.logged_model,
        }
        if full:
            body["aliases"] = [{"alias": a, "version": v} for a, v in sorted(model.aliases.items()) if v == mv.version]
            body["tags"] = [{"key": k, "value": v} for k, v in sorted(mv.tags.items())]
        return body

    def _find(self, name: str, version: str | None = None) -> tuple[_Model, _Version | None] | JSONResponse:
        model = self._models.get(name)
        if model is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Registered model '{name}' does not exist.")
        if version is None:
            return model, None
        mv = model.versions.get(version)
        if mv is None:
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Model version '{name}' version {version} does not exist.")
        return model, mv

    def _build(self) -> FastAPI:  # noqa: C901 - one route per REST call
        app = FastAPI()

        @app.middleware("http")
        async def authenticate(request: Request, call_next: Any) -> Response:
            authorization = request.headers.get("authorization", "")
            body = await request.body()
            with self._lock:
                self.requests.append(
                    {
                        "method": request.method,
                        "path": request.url.path,
                        "query": dict(request.query_params),
                        "body": body.decode(errors="replace"),
                        "authorization": authorization,
                    }
                )
            if authorization != f"Bearer {self.token}" and request.url.path != "/.well-known/databricks-config":
                return _error(401, "UNAUTHENTICATED", "Invalid access token.")
            response: Response = await call_next(request)
            return response

        @app.get("/.well-known/databricks-config")
        def host_metadata(request: Request) -> Response:
            base = str(request.base_url).rstrip("/")
            return JSONResponse({"oidc_endpoint": f"{base}/oidc", "workspace_id": "1234567890123456"})

        @app.get(f"{API}/registered-models/search")
        def search_models(max_results: int = 100, page_token: str = "") -> Response:
            with self._lock:
                models = sorted(self._models.values(), key=lambda m: m.name)
                start = int(page_token or 0)
                page = models[start : start + max_results]
                body: dict[str, Any] = {"registered_models": [self._model_json(m, full=False) for m in page]}
            if start + max_results < len(models):
                body["next_page_token"] = str(start + max_results)
            return JSONResponse(body)

        @app.get("/api/2.0/mlflow/runs/get")
        def get_run(run_id: str = "") -> Response:
            # the workspace's tracking service holds none of the versions' runs here (as for versions made
            # from runs of another workspace): "Get a run" answers 404 RESOURCE_DOES_NOT_EXIST
            return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Run '{run_id}' not found.")

        @app.get(f"{API}/registered-models/get")
        def get_model(name: str) -> Response:
            with self._lock:
                found = self._find(name)
                if isinstance(found, JSONResponse):
                    return found
                return JSONResponse({"registered_model": self._model_json(found[0], full=True)})

        @app.get(f"{API}/model-versions/get")
        def get_version(name: str, version: str) -> Response:
            with self._lock:
                found = self._find(name, version)
                if isinstance(found, JSONResponse):
                    return found
                model, mv = found
                assert mv is not None
                return JSONResponse({"model_version": self._version_json(model, mv, full=True)})

        @app.get(f"{API}/model-versions/get-download-uri")
        def download_uri(name: str, version: str) -> Response:
            with self._lock:
                found = self._find(name, version)
                if isinstance(found, JSONResponse):
                    return found
                assert found[1] is not None
                return JSONResponse({"artifact_uri": found[1].storage_location})

        @app.get(f"{API}/registered-models/alias")
        def by_alias(name: str, alias: str) -> Response:
            with self._lock:
                found = self._find(name)
                if isinstance(found, JSONResponse):
                    return found
                model = found[0]
                version = model.aliases.get(alias)
                if version is None:
                    return _error(404, "RESOURCE_DOES_NOT_EXIST", f"Alias '{alias}' does not exist on '{name}'.")
                return JSONResponse({"model_version": self._version_json(model, model.versions[version], full=True)})

        @app.get(f"{API}/model-versions/search")
        def search_versions(filter: str = "", max_results: int = 10000, page_token: str = "") -> Response:
            match = _FILTER.match(filter)
            if match is None:
                return _error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"Unsupported filter {filter!r}: give a single name='<model>' or run_id='<run>' condition.",
                )
            key, value = match.groups()
            with self._lock:
                found = [
                    (model, mv)
                    for model in self._models.values()
                    if key == "run_id" or model.name == value
                    for mv in model.versions.values()
                    if key == "name" or mv.run_id == value
                ]
                start = int(page_token or 0)
                page = found[start : start + max_results]
                body: dict[str, Any] = {"model_versions": [self._version_json(m, v, full=False) for m, v in page]}
            if start + max_results < len(found):
                body["next_page_token"] = str(start + max_results)
            return JSONResponse(body)

        @app.post(f"{API}/model-versions/generate-temporary-credentials")
        async def credentials(request: Request) -> Response:
            asked = await request.json()
            name, version, operation = asked.get("name"), str(asked.get("version", "")), asked.get("operation")
            if not name or not version or not operation:
                return _error(400, "INVALID_PARAMETER_VALUE", "name, version and operation are required.")
            with self._lock:
                found = self._find(name, version)
                if isinstance(found, JSONResponse):
                    return found
            if operation != "MODEL_VERSION_OPERATION_READ":
                # "model version files can only be written at creation time" (the proto's comment)
                return _error(
                    400, "INVALID_PARAMETER_VALUE", f"Model version {name} v{version} is READY: files are read-only."
                )
            expires = _now_ms() + int(self.sas_lifetime * 1000)
            return JSONResponse(
                {
                    "credentials": {
                        "azure_user_delegation_sas": {"sas_token": self._sas()},
                        "expiration_time": expires,
                        "storage_mode": "CUSTOMER_HOSTED",
                    }
                }
            )

        return app
