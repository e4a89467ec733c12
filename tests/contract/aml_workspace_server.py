"""Contract server for an Azure ML workspace as azureml-core and azureml-mlflow reach it.

- ARM (Microsoft.Resources / Microsoft.MachineLearningServices REST references):
  `GET /subscriptions?api-version=` (Subscriptions - List; azureml-core checks the subscription is
  visible to the token) and `GET .../workspaces/{ws}?api-version=` (Workspaces - Get: `properties` with
  workspaceId, discoveryUrl, mlFlowTrackingUri...). Unknown workspaces answer 404 ResourceNotFound.
- Workspace discovery (`properties.discoveryUrl`): the regional service URLs; not authenticated.
- MLflow (`/mlflow/v1.0|v2.0/subscriptions/.../workspaces/{ws}/api/2.0/mlflow/...`): the MLflow REST
  API, forwarded to a real `mlflow server`. What Azure ML adds on top: a run's artifact URI is
  `azureml://experiments/{experiment name}/runs/{run id}/artifacts` (so experiments are created with that
  location), and model names must be 1-255 of letters, digits, '-', '_', '.', starting alphanumeric;
  `runs/log-batch` is held to the service's limits (tests/contract/aml_mlflow_limits.py) and recorded in
  `batches` (run id, counts, refused or not).
- Run artifacts (`/history/v1.0/.../experiments/{name}/runs/{id}/artifacts...`, the run-history
  service the azureml-mlflow artifact client calls; its swagger ships only inside that client):
  `batch/metadata` creates artifacts and answers write SAS URLs, `contentinfo` a read SAS URL, the bare
  route lists. Blobs live in a real Azurite, container `azureml`, as `ExperimentRun/dcid.{run}/{path}`
  like in the workspace's storage account.

Every authenticated route requires `Authorization: Bearer <token>`; `requests` records what came in.
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from typing import Any

import requests
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.contract.aml_mlflow_limits import log_batch_refusal
from tests.contract.azurite import ACCOUNT, KEY, Azurite

WS_PATH = "subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
CONTAINER = "azureml"
LOCATION = "westeurope"


def _arm_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _mlflow_error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status)


class AmlWorkspaceContract:
    """One subscription with workspaces backed by a real MLflow server and a real Azurite."""

    def __init__(self, *, token: str, tenant_id: str, subscription_id: str, mlflow_url: str, azurite: Azurite) -> None:
        self.token = token
        self.tenant_id = tenant_id
        self.subscription_id = subscription_id
        self.mlflow_url = mlflow_url.rstrip("/")
        self.azurite = azurite
        self.base_url = ""  # set once the HTTPS server knows its port
        self.workspaces: dict[tuple[str, str], str] = {}  # (resource group, name) -> workspace id
        self.backends: dict[tuple[str, str], str] = {}  # (resource group, name) -> its own MLflow server
        self.requests: list[dict[str, Any]] = []
        self.batches: list[dict[str, Any]] = []  # every runs/log-batch: run_id, metrics, params, tags, refused
        self._lock = threading.Lock()
        self.app = self._build()

    def add_workspace(self, resource_group: str, name: str, workspace_id: str, *, mlflow_url: str = "") -> None:
        """A workspace; ``mlflow_url``: its own backing MLflow server (default: the shared one)."""
        self.workspaces[(resource_group.lower(), name.lower())] = workspace_id
        if mlflow_url:
            self.backends[(resource_group.lower(), name.lower())] = mlflow_url.rstrip("/")

    def calls(self, method: str, pattern: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == method and re.search(pattern, r["path"])]

    # -- the API --------------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Any:
            with self._lock:
                self.requests.append(
                    {
                        "method": request.method,
                        "path": request.url.path,
                        "authorization": request.headers.get("authorization"),
                    }
                )
            if not request.url.path.startswith("/discovery") and (
                request.headers.get("authorization") != f"Bearer {self.token}"
            ):
                return _arm_error(401, "InvalidAuthenticationToken", "The access token is missing or invalid.")
            response = await call_next(request)
            response.headers["Connection"] = "close"  # no keep-alive: the server stops at once after a test
            return response

        @app.get("/subscriptions")
        def subscriptions() -> Any:
            return {
                "value": [
                    {
                        "id": f"/subscriptions/{self.subscription_id}",
                        "subscriptionId": self.subscription_id,
                        "tenantId": self.tenant_id,
                        "displayName": "modelops contract",
                        "state": "Enabled",
                        "subscriptionPolicies": {
                            "locationPlacementId": "Public_2014-09-01",
                            "quotaId": "Internal_2014-09-01",
                            "spendingLimit": "Off",
                        },
                        "authorizationSource": "RoleBased",
                    }
                ]
            }

        @app.get("/" + WS_PATH)
        def workspace(sub: str, rg: str, ws: str) -> Any:
            return self._workspace(sub, rg, ws)

        @app.get("/discovery")
        def discovery() -> Any:
            api = self.base_url
            return {
                "api": api,
                "catalog": api,
                "experimentation": api,
                "gallery": api,
                "history": api,
                "hyperdrive": api,
                "labeling": api,
                "modelmanagement": api,
                "pipelines": api,
                "studio": "https://ml.azure.com",
            }

        @app.api_route("/mlflow/{version}/" + WS_PATH + "/api/{rest:path}", methods=["GET", "POST", "PATCH", "DELETE"])
        async def mlflow(version: str, sub: str, rg: str, ws: str, rest: str, request: Request) -> Any:
            if (rg.lower(), ws.lower()) not in self.workspaces or sub != self.subscription_id:
                return _mlflow_error(404, "RESOURCE_DOES_NOT_EXIST", f"Workspace {ws} not found.")
            body = await request.body()
            backend = self.backends.get((rg.lower(), ws.lower()), self.mlflow_url)
            return self._forward(backend, request.method, rest, dict(request.query_params), body)

        prefix = "/history/v1.0/" + WS_PATH + "/experiments/{experiment}/runs/{run}/artifacts"

        @app.post(prefix + "/batch/metadata")
        async def create_empty(experiment: str, run: str, request: Request) -> Any:
            paths = [p["path"] for p in (await request.json()).get("paths", [])]
            return {
                "artifacts": {p: self._artifact(run, p) for p in paths},
                "artifactContentInformation": {p: self._content(run, p, write=True) for p in paths},
                "errors": {},
            }

        @app.get(prefix + "/contentinfo")
        def content_info(experiment: str, run: str, path: str) -> Any:
            if path not in self._blob_paths(run):
                return _arm_error(404, "NotFound", f"Artifact {path} not found in run {run}.")
            return self._content(run, path, write=False)

        @app.get(prefix)
        def list_artifacts(experiment: str, run: str) -> Any:
            return {
                "value": [self._artifact(run, p) for p in self._blob_paths(run)],
                "continuationToken": None,
                "nextLink": None,
            }

        return app

    def _workspace(self, sub: str, rg: str, ws: str) -> Any:
        workspace_id = self.workspaces.get((rg.lower(), ws.lower()))
        if sub != self.subscription_id or workspace_id is None:
            return _arm_error(
                404,
                "ResourceNotFound",
                f"The Resource 'Microsoft.MachineLearningServices/workspaces/{ws}' under resource group '{rg}' "
                "was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
            )
        resource = "/" + WS_PATH.format(sub=sub, rg=rg, ws=ws)
        storage = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{ACCOUNT}"
        return {
            "id": resource,
            "name": ws,
            "type": "Microsoft.MachineLearningServices/workspaces",
            "location": LOCATION,
            "identity": {
                "type": "SystemAssigned",
                "principalId": "00000000-0000-0000-0000-0000000000aa",
                "tenantId": self.tenant_id,
            },
            "sku": {"name": "Basic", "tier": "Basic"},
            "kind": "Default",
            "tags": {},
            "properties": {
                "workspaceId": workspace_id,
                "friendlyName": ws,
                "description": "",
                "storageAccount": storage,
                "keyVault": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.KeyVault/vaults/kv",
                "applicationInsights": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/microsoft.insights/"
                "components/ai",
                "discoveryUrl": f"{self.base_url}/discovery",
                "mlFlowTrackingUri": f"azureml://{self.base_url.split('://')[1]}/mlflow/v1.0{resource}",
                "provisioningState": "Succeeded",
                "hbiWorkspace": False,
                "publicNetworkAccess": "Enabled",
                "v1LegacyMode": False,
            },
        }

    def _forward(self, backend: str, method: str, rest: str, query: dict[str, str], body: bytes) -> Response:
        """MLflow REST as Azure ML serves it: the real server's answer, with AML's artifact URIs and name rules."""
        payload: dict[str, Any] = {}
        if body:
            import json

            payload = json.loads(body)
        if rest.endswith("mlflow/experiments/create") and payload.get("name"):
            name = str(payload["name"]).rsplit("/", 1)[-1]
            payload["artifact_location"] = f"azureml://experiments/{name}/runs"
        if rest.endswith(("mlflow/registered-models/create", "mlflow/model-versions/create")):
            name = str(payload.get("name", ""))
            if not MODEL_NAME.match(name):
                return _mlflow_error(
                    400,
                    "INVALID_PARAMETER_VALUE",
                    f"Model name '{name}' is invalid. It can only contain alphanumeric characters, "
                    "dashes, underscores and periods, start with an alphanumeric and be at most 255 long.",
                )
        if rest.endswith("mlflow/runs/log-batch"):
            refused = self._log_batch_refusal(backend, payload)
            if refused is not None:
                return refused
        upstream = requests.request(
            method, f"{backend}/api/{rest}", params=query, json=payload if body else None, timeout=60
        )
        return Response(
            upstream.content,
            status_code=upstream.status_code,
            media_type=upstream.headers.get("content-type", "application/json"),
        )

    def _log_batch_refusal(self, backend: str, payload: dict[str, Any]) -> Response | None:
        run_id = str(payload.get("run_id") or payload.get("run_uuid") or "")
        held = requests.get(f"{backend}/api/2.0/mlflow/runs/get", params={"run_id": run_id}, timeout=60)
        refused = log_batch_refusal(payload, held.json().get("run", {}).get("data", {}) if held.ok else {})
        counts = {k: len(payload.get(k) or []) for k in ("metrics", "params", "tags")}
        with self._lock:
            self.batches.append({"run_id": run_id, **counts, "refused": refused is not None})
        return refused

    # -- artifacts in Azurite -----------------------------------------------------------------------

    def _blob_name(self, run: str, path: str) -> str:
        return f"ExperimentRun/dcid.{run}/{path}"

    def _artifact(self, run: str, path: str) -> dict[str, Any]:
        return {
            "artifactId": f"ExperimentRun/dcid.{run}/{path}",
            "origin": "ExperimentRun",
            "container": f"dcid.{run}",
            "path": path,
            "etag": '"0x1"',
            "createdTime": dt.datetime.now(dt.UTC).isoformat(),
        }

    def _content(self, run: str, path: str, *, write: bool) -> dict[str, Any]:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        blob = self._blob_name(run, path)
        permission = BlobSasPermissions(read=True, create=True, write=True) if write else BlobSasPermissions(read=True)
        sas = generate_blob_sas(
            ACCOUNT,
            CONTAINER,
            blob,
            account_key=KEY,
            permission=permission,
            expiry=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1),
        )
        return {
            "contentUri": f"{self.azurite.blob_url}/{CONTAINER}/{blob}?{sas}",
            "origin": "ExperimentRun",
            "container": f"dcid.{run}",
            "path": path,
        }

    def _blob_paths(self, run: str) -> list[str]:
        prefix = self._blob_name(run, "")
        return [b.name[len(prefix) :] for b in self.container().list_blobs(name_starts_with=prefix)]

    def container(self) -> Any:
        from azure.storage.blob import BlobServiceClient

        client = BlobServiceClient.from_connection_string(self.azurite.connection_string).get_container_client(
            CONTAINER
        )
        if not client.exists():
            client.create_container()
        return client
