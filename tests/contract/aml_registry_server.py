"""Contract server for Azure ML registries as azure-ai-ml's `MLClient(registry_name=...)` reaches them.

Written from the SDK's own calls (azure/ai/ml/_utils/_registry_utils.py, operations/_model_operations.py,
_restclient/registry_discovery) and the registry REST examples in Azure/azure-rest-api-specs
(specification/machinelearningservices/.../examples/Registry/ModelContainer and ModelVersion: get.json,
list.json, createOrUpdate.json, createOrGetStartPendingUpload.json):

- Discovery: `GET /registrymanagement/v1.0/registries/{name}/discovery` answers the registry's
  subscription, resource group and `primaryRegionResourceProviderUri`; the SDK then calls
  `{that}mferp/managementfrontend/subscriptions/.../registries/{name}/...` with
  api-version 2021-10-01-dataplanepreview.
- `GET models/{name}` (container: latestVersion, nextVersion), `GET models/{name}/versions` (a page:
  value + nextLink), `GET models/{name}/versions/{v}`; unknown ones answer 404 with an ARM error.
- `PUT tempdatarefs/{name}/versions/{v}`: the temporary upload location, shaped like
  startPendingUpload's answer (`blobReferenceForConsumption.credential.sasUri`): a container SAS on a
  real Azurite; 409 once the version exists (the SDK then skips the upload).
- `PUT models/{name}/versions/{v}`: 201 with the version (createOrUpdate.json answers 200 or 201); a
  version's files are immutable: a PUT of an existing version with the same `modelUri` answers 200 with
  the version as it is, one with another `modelUri` 400 UserError "Asset paths cannot be updated." (the
  message azure-ai-ml matches as ASSET_PATH_ERROR, _artifacts/_constants.py); `modelUri` must name
  blobs that were uploaded (400 if empty).
- `hold_listings(n)`: the next n version listings wait for each other (two copies reading the versions
  at once, as they do when they race for the next number). `order_grants("late")`: a version's second
  upload grant waits until the first copy created it (the slower copy then gets the 409);
  `order_grants("together")`: both copies hold a grant before either creates the version (the slower
  one's PUT is then refused).

Every route requires `Authorization: Bearer <token>`; `requests` records what came in.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import time
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.contract.azurite import ACCOUNT, KEY, Azurite

REG_PATH = (
    "/mferp/managementfrontend/subscriptions/{sub}/resourceGroups/{rg}"
    "/providers/Microsoft.MachineLearningServices/registries/{reg}"
)


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _flavors(files: dict[str, bytes]) -> dict[str, Any]:
    """What the service reads out of an MLflow model's MLmodel: its flavors, with their scalar settings."""
    import yaml

    if "MLmodel" not in files:
        return {}
    flavors = yaml.safe_load(files["MLmodel"]).get("flavors") or {}
    return {
        name: {"data": {k: str(v) for k, v in (spec or {}).items() if isinstance(v, str | int | float)}}
        for name, spec in flavors.items()
    }


class AmlRegistryContract:
    """Registries (name -> subscription, resource group, region) with their models, blobs in Azurite."""

    def __init__(self, *, token: str, tenant_id: str, azurite: Azurite) -> None:
        self.token = token
        self.tenant_id = tenant_id
        self.azurite = azurite
        self.base_url = ""  # set once the HTTPS server knows its port
        self.registries: dict[str, tuple[str, str, str]] = {}
        self.versions: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (registry, model) -> v -> body
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._held = 0
        self._barrier: threading.Barrier | None = None
        self._grants: dict[tuple[str, str], int] = {}
        self._grant_order: dict[str, str] = {}  # version -> "together" | "late" (see order_grants)
        self.app = self._build()

    def add_registry(self, name: str, subscription_id: str, resource_group: str, location: str) -> None:
        self.registries[name] = (subscription_id, resource_group, location)

    def calls(self, method: str, pattern: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and re.search(pattern, r["path"])]

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Any:
            with self._lock:
                self.requests.append(
                    {
                        "method": request.method,
                        "path": request.url.path,
                        "query": dict(request.query_params),
                        "authorization": request.headers.get("authorization"),
                    }
                )
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return _error(401, "InvalidAuthenticationToken", "The access token is missing or invalid.")
            response = await call_next(request)
            response.headers["Connection"] = "close"
            return response

        @app.get("/registrymanagement/v1.0/registries/{name}/discovery")
        def discovery(name: str) -> Any:
            if name not in self.registries:
                return _error(404, "RegistryNotFound", f"Registry {name} was not found.")
            sub, rg, location = self.registries[name]
            return {
                "registryName": name,
                "tenantId": self.tenant_id,
                "primaryRegion": location,
                "regions": [location],
                "subscriptionId": sub,
                "resourceGroup": rg,
                "primaryRegionResourceProviderUri": f"{self.base_url}/",
            }

        @app.get(REG_PATH + "/models/{name}")
        def container(sub: str, rg: str, reg: str, name: str) -> Any:
            versions = self._versions(sub, rg, reg, name)
            if isinstance(versions, JSONResponse):
                return versions
            if not versions:
                return _error(404, "UserError", f"Could not find asset with name {name} in registry {reg}.")
            latest = max(versions, key=int)
            return {
                "id": self._id(sub, rg, reg, f"models/{name}"),
                "name": name,
                "type": "Microsoft.MachineLearningServices/registries/models",
                "properties": {
                    "description": None,
                    "tags": {},
                    "properties": {},
                    "isArchived": False,
                    "latestVersion": latest,
                    "nextVersion": str(int(latest) + 1),
                },
                "systemData": versions[latest]["systemData"],
            }

        @app.get(REG_PATH + "/models/{name}/versions")
        def list_versions(sub: str, rg: str, reg: str, name: str) -> Any:
            self._wait_for_others()
            versions = self._versions(sub, rg, reg, name)
            if isinstance(versions, JSONResponse):
                return versions
            return {"value": list(versions.values()), "nextLink": None}

        @app.get(REG_PATH + "/models/{name}/versions/{version}")
        def get_version(sub: str, rg: str, reg: str, name: str, version: str) -> Any:
            versions = self._versions(sub, rg, reg, name)
            if isinstance(versions, JSONResponse):
                return versions
            if version not in versions:
                return _error(404, "UserError", f"Could not find asset with name {name} and version {version}.")
            return versions[version]

        @app.put(REG_PATH + "/tempdatarefs/{name}/versions/{version}")
        async def temporary_upload(sub: str, rg: str, reg: str, name: str, version: str, request: Request) -> Any:
            versions = self._versions(sub, rg, reg, name)
            if isinstance(versions, JSONResponse):
                return versions
            with self._lock:
                grants = self._grants[(name, version)] = self._grants.get((name, version), 0) + 1
            order, deadline = self._grant_order.get(version), time.monotonic() + 120
            while order == "together" and self._grants[(name, version)] < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # both copies are granted an upload of this version, neither created it
            while order == "late" and grants > 1 and time.monotonic() < deadline:
                versions = self.versions.get((reg, name), {})
                if version in versions:
                    break
                await asyncio.sleep(0.05)  # the second grant of a version is answered once the first created it
            if version in versions:
                return _error(409, "Conflict", f"Asset {name}:{version} already exists in registry {reg}.")
            body = await request.json()
            if body.get("temporaryDataReferenceType") != "TemporaryBlobReference":
                return _error(400, "UserError", "temporaryDataReferenceType must be TemporaryBlobReference")
            container = uuid.uuid4().hex  # a fresh container per upload, as the service hands out
            self._blob_service().create_container(container)
            return {
                "assetId": body.get("assetId"),
                "temporaryDataReferenceId": container,
                "temporaryDataReferenceType": "TemporaryBlobReference",
                "blobReferenceForConsumption": {
                    "blobUri": f"{self.azurite.blob_url}/{container}",
                    "storageAccountArmId": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
                    f"Microsoft.Storage/storageAccounts/{ACCOUNT}",
                    "credential": {"credentialType": "SAS", "sasUri": self._container_sas(container)},
                },
            }

        @app.put(REG_PATH + "/models/{name}/versions/{version}")
        async def create_version(sub: str, rg: str, reg: str, name: str, version: str, request: Request) -> Any:
            versions = self._versions(sub, rg, reg, name)
            if isinstance(versions, JSONResponse):
                return versions
            payload = await request.json()
            self.requests[-1]["body"] = payload
            properties = dict(payload.get("properties") or {})
            uri = str(properties.get("modelUri") or "")
            if version in versions:
                if versions[version]["properties"].get("modelUri") == uri:
                    return JSONResponse(versions[version], status_code=200)
                return _error(400, "UserError", "Asset paths cannot be updated.")
            files = self.blobs(uri, only={"MLmodel"})  # the service reads the flavors; the rest need only exist
            if not files:
                return _error(400, "UserError", f"modelUri {uri!r} names no uploaded blobs.")
            properties["flavors"] = _flavors(files) if properties.get("modelType") == "mlflow_model" else {}
            now = dt.datetime.now(dt.UTC).isoformat()
            created = {
                "id": self._id(sub, rg, reg, f"models/{name}/versions/{version}"),
                "name": version,
                "type": "Microsoft.MachineLearningServices/registries/models/versions",
                "properties": {**properties, "isAnonymous": False, "isArchived": False},
                "systemData": {"createdAt": now, "createdBy": "modelops", "createdByType": "Application"},
            }
            with self._lock:
                self.versions.setdefault((reg, name), {})[version] = created
            return JSONResponse(created, status_code=201)

        return app

    def order_grants(self, order: str, version: str = "1") -> None:
        """How the two upload grants of ``version`` are answered: "together" (both copies hold one before
        either creates the version) or "late" (the second only once the first created it)."""
        self._grant_order = {version: order}

    def hold_listings(self, count: int) -> None:
        """The next ``count`` version listings are answered together, once all of them arrived."""
        with self._lock:
            self._held = count
            self._barrier = threading.Barrier(count, timeout=120)

    def _wait_for_others(self) -> None:
        with self._lock:
            barrier = self._barrier if self._held > 0 else None
            self._held -= 1 if barrier else 0
        if barrier is not None:
            barrier.wait()

    def _versions(self, sub: str, rg: str, reg: str, name: str) -> dict[str, dict[str, Any]] | JSONResponse:
        if self.registries.get(reg, ("", "", ""))[:2] != (sub, rg):
            return _error(404, "ResourceNotFound", f"Registry {reg} was not found in {sub}/{rg}.")
        return self.versions.get((reg, name), {})

    @staticmethod
    def _id(sub: str, rg: str, reg: str, rest: str) -> str:
        """Registry assets are named by asset id, not ARM id (the SDK's REGISTRY_VERSION_PATTERN)."""
        return f"azureml://registries/{reg}/{rest}"

    def _container_sas(self, container: str) -> str:
        from azure.storage.blob import ContainerSasPermissions, generate_container_sas

        sas = generate_container_sas(
            ACCOUNT,
            container,
            account_key=KEY,
            permission=ContainerSasPermissions(read=True, write=True, create=True, list=True),
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
        return f"{self.azurite.blob_url}/{container}?{sas}"

    def blobs(self, uri: str, only: set[str] | None = None) -> dict[str, bytes]:
        """The files under a `modelUri` (an Azurite blob URL), by path below it (``only``: the contents
        of those paths alone, the others as empty bytes)."""
        base = self.azurite.blob_url + "/"
        if not uri.startswith(base):
            return {}
        container, _, prefix = uri[len(base) :].split("?")[0].partition("/")
        client = self._blob_service().get_container_client(container)
        if not client.exists():
            return {}
        prefix = prefix.rstrip("/") + "/" if prefix else ""
        return {
            b.name[len(prefix) :]: client.download_blob(b.name).readall()
            if only is None or b.name[len(prefix) :] in only
            else b""
            for b in client.list_blobs(name_starts_with=prefix)
        }

    def _blob_service(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.azurite.connection_string)
