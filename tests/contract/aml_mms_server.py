"""Contract server for Azure ML's v1 Model Management Service (MMS) as azureml-core 1.61 reaches it
for ACI / AKS web services, plus the ARM, discovery and artifact calls that come first.

Sources (the installed SDK is the spec where the v1 REST reference is silent):
- ARM `GET /subscriptions` and `GET .../workspaces/{ws}` (Workspaces - Get), as
  `azureml/core/workspace.py` reads them; the compute lookup goes to the workspace's `api` service,
  `GET /rp/workspaces/subscriptions/.../workspaces/{ws}/computes/{name}` (`azureml/_compute/
  _constants.py` RP_COMPUTE_RESOURCE_ID_FMT; the body of ARM's Compute - Get, `computeType: AKS`).
- Discovery (`properties.discoveryUrl`, `azureml/_base_sdk_common/service_discovery.py`): the
  `modelmanagement` and `history` service URLs, here all this server.
- Artifacts (`azureml/_restclient/artifacts_client.py`): `POST /artifact/v2.0/.../artifacts/batch/
  metadata/{origin}/{container}` answers write SAS URLs; azureml-core then PUTs the blob to
  `https://<account>.blob.<suffix>` itself (`azureml/_file_utils/upload.py`), which reaches
  :attr:`blob_app` through tests/contract/connect_proxy.py.
- MMS (`azureml/_model_management/_util.py` `_get_mms_url`: `/modelmanagement/v1.0/subscriptions/
  .../workspaces/{ws}`): `GET /models/{name}:{version}`; `POST /services/validate[/name/{n}|/resource]`;
  `POST /services` -> 202 + `Operation-Location`; `GET /operations/{id}` (`state` NotStarted/Running/
  Succeeded/Failed, `operationDetails.subOperationType` BuildEnvironment/DeployService, `error`);
  `GET /services/{name}?expand=true` (404 when absent), `GET /services?tags=k=v`, `GET .../logs`
  (`{"content": ...}`), `POST .../listkeys`, `DELETE /services/{name}` (`azureml/core/webservice/
  webservice.py`, `aci.py`, `aks.py`: the payload keys each class validates).
- A failed deployment's error, as MMS reports a crashing ACI container (issue threads
  microsoft/MLOpsPython#127, microsoft/mlops#39): `{"code": "AciDeploymentFailed", "message":
  "Aci Deployment failed with exception: Your container application crashed...", "details":
  [{"code": "CrashLoopBackOff", ...}]}`; for AKS the same shape (its exact code is not documented
  in a source we could read; `AKSDeploymentFailed` here).

Every route but discovery and the SAS-signed blob PUT needs `Authorization: Bearer <token>`.
"""

from __future__ import annotations

import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.contract.aml_mms_containers import Container, CrashLoop, start_container
from tests.contract.aml_mms_workspace import (
    WS,
    artifact_batch,
    blob_app,
    compute_body,
    error,
    now,
    workspace_body,
)
from tests.contract.https import TestCA

MMS = "/modelmanagement/v1.0/" + WS
AKS_DEFAULTS: dict[str, dict[str, Any]] = {
    "autoScaler": {"autoscaleEnabled": True, "minReplicas": 1, "maxReplicas": 10, "refreshPeriodInSeconds": 1,
                   "targetUtilization": 70},
    "dataCollection": {"eventHubEnabled": False, "storageEnabled": False},
    "livenessProbeRequirements": {"periodSeconds": 10, "initialDelaySeconds": 310, "timeoutSeconds": 2,
                                  "failureThreshold": 3, "successThreshold": 1},
}  # fmt: skip
CRASH = (
    "Your container application crashed. This may be caused by errors in your scoring file's init() "
    "function.\n\t1. Please check the logs for your container instance: {name}. From the AML SDK, you can "
    "run print(service.get_logs()) if you have service object to fetch the logs."
)


@dataclass
class Fault:
    """Answer the next ``times`` requests matching method + path pattern with this status."""

    method: str
    pattern: str
    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1


@dataclass
class Service:
    payload: dict[str, Any]
    state: str = "Transitioning"
    created: str = field(default_factory=now)
    error: dict[str, Any] | None = None
    container: Container | None = None
    logs: str = ""
    keys: tuple[str, str] = field(default_factory=lambda: (uuid.uuid4().hex, uuid.uuid4().hex))
    operation: str = ""


@dataclass
class Operation:
    id: str
    service: str
    steps: list[tuple[str, str]]  # (state, subOperationType) shown before the outcome
    state: str = "NotStarted"
    error: dict[str, Any] | None = None


class MmsContract:
    def __init__(self, *, token: str, tenant_id: str, subscription_id: str, ca: TestCA) -> None:
        self.token, self.tenant_id, self.subscription_id, self.ca = token, tenant_id, subscription_id, ca
        self.base_url = ""  # set once served
        self.workspaces: dict[tuple[str, str], str] = {}
        self.computes: dict[str, str] = {}  # AKS compute name -> cluster FQDN
        self.models: dict[str, str] = {}  # "name:version" -> directory of the model's files
        self.services: dict[str, Service] = {}
        self.operations: dict[str, Operation] = {}
        self.blobs: dict[str, bytes] = {}
        self.build_steps: list[tuple[str, str]] = []  # e.g. [("Running", "BuildEnvironment")]; 5 s per poll
        self.hold = threading.Event()  # set: operations stay Running (a deployment still in progress)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.RLock()
        self.app = self._api()
        self.blob_app = blob_app(self.blobs, self.requests)

    def add_workspace(self, resource_group: str, name: str) -> None:
        self.workspaces[(resource_group.lower(), name.lower())] = str(uuid.uuid4())

    def calls(self, method: str, pattern: str) -> list[str]:
        return [path for m, path in self.requests if m == method and re.search(pattern, path)]

    def stop(self) -> None:
        for service in self.services.values():
            if service.container:
                service.container.stop()

    # -- routes -----------------------------------------------------------------------------------

    def _api(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Any:
            path = request.url.path
            with self._lock:
                self.requests.append((request.method, path))
                fault = next(
                    (f for f in self.faults if f.method == request.method and re.search(f.pattern, path)), None
                )
                if fault:
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
            if path != "/discovery" and request.headers.get("authorization") != f"Bearer {self.token}":
                return error(401, "InvalidAuthenticationToken", "The access token is missing or invalid.")
            if fault:
                return error(fault.status, fault.code, fault.message, fault.headers)
            response = await call_next(request)
            response.headers["Connection"] = "close"
            return response

        @app.get("/subscriptions")
        def subscriptions() -> Any:
            sub = self.subscription_id
            return {"value": [{"id": f"/subscriptions/{sub}", "subscriptionId": sub, "tenantId": self.tenant_id,
                               "displayName": "modelops contract", "state": "Enabled"}]}  # fmt: skip

        @app.get("/" + WS)
        def workspace(sub: str, rg: str, ws: str) -> Any:
            workspace_id = self.workspaces.get((rg.lower(), ws.lower()))
            return workspace_body(sub, rg, ws, workspace_id=workspace_id, contract=self)

        @app.get("/rp/workspaces/" + WS + "/computes/{name}")
        def compute(sub: str, rg: str, ws: str, name: str) -> Any:
            return compute_body(sub, rg, ws, name, self.computes.get(name))

        @app.get("/discovery")
        def discovery() -> Any:
            services = ("api", "catalog", "experimentation", "gallery", "history", "hyperdrive", "labeling")
            return {
                **{s: self.base_url for s in services},
                "modelmanagement": self.base_url,
                "pipelines": self.base_url,
                "studio": "https://ml.azure.com",
            }

        @app.post("/artifact/v2.0/" + WS + "/artifacts/batch/metadata/{origin}/{container}")
        async def create_artifacts(sub: str, rg: str, ws: str, origin: str, container: str, request: Request) -> Any:
            return artifact_batch(origin, container, [p["path"] for p in (await request.json())["paths"]])

        @app.get(MMS + "/models/{model_id}")
        def model(sub: str, rg: str, ws: str, model_id: str) -> Any:
            return self._model(model_id)

        @app.post(MMS + "/services/validate/name/{name}")
        def validate_name(sub: str, rg: str, ws: str, name: str) -> Any:
            if name in self.services:
                return {"error": {"code": "Conflict", "message": f"Service {name} already exists."}}
            return {}

        @app.post(MMS + "/services/validate{rest:path}")
        def validate(sub: str, rg: str, ws: str, rest: str) -> Any:
            return {}

        @app.post(MMS + "/services")
        async def create(sub: str, rg: str, ws: str, request: Request) -> Any:
            return self._create(await request.json(), request.url.path)

        @app.get(MMS + "/services")
        def list_services(sub: str, rg: str, ws: str, tags: str = "") -> Any:
            wanted = dict(t.split("=", 1) for t in tags.split(",") if "=" in t)
            with self._lock:
                found = [
                    n for n, s in self.services.items() if wanted.items() <= (s.payload.get("kvTags") or {}).items()
                ]
                return {"value": [self._service(n) for n in found]}

        @app.get(MMS + "/services/{name}")
        def get_service(sub: str, rg: str, ws: str, name: str) -> Any:
            if name not in self.services:
                return error(404, "NotFound", f"No service with name {name} found.")
            self._advance(name)
            return self._service(name)

        @app.get(MMS + "/services/{name}/logs")
        def logs(sub: str, rg: str, ws: str, name: str) -> Any:
            service = self.services.get(name)
            if service is None:
                return error(404, "NotFound", f"No service with name {name} found.")
            text = service.logs or ("\n".join(service.container.logs) if service.container else "")
            return {"content": text}

        @app.post(MMS + "/services/{name}/listkeys")
        def list_keys(sub: str, rg: str, ws: str, name: str) -> Any:
            service = self.services.get(name)
            if service is None:
                return error(404, "NotFound", f"No service with name {name} found.")
            return {"primaryKey": service.keys[0], "secondaryKey": service.keys[1]}

        @app.delete(MMS + "/services/{name}")
        def delete(sub: str, rg: str, ws: str, name: str) -> Any:
            with self._lock:
                service = self.services.pop(name, None)
            if service is None:
                return Response(status_code=204)
            if service.container:
                service.container.stop()
            return Response(status_code=200)

        @app.get(MMS + "/operations/{op}")
        def operation(sub: str, rg: str, ws: str, op: str) -> Any:
            return self._poll(op)

        return app

    # -- behaviour --------------------------------------------------------------------------------

    def _model(self, model_id: str) -> Any:
        if model_id not in self.models:
            return JSONResponse({"code": "NotFound", "statusCode": 404, "message": f"Model {model_id} not found."}, 404)
        name, version = model_id.rsplit(":", 1)
        return {"id": model_id, "name": name, "version": int(version), "framework": "Custom", "frameworkVersion": None,
                "mimeType": "application/json", "url": f"aml://asset/{uuid.uuid4().hex}", "createdTime": now(),
                "kvTags": {}, "properties": {}, "description": None, "unpack": False, "datasets": [],
                "createdBy": {"userName": "modelops"}, "resourceRequirements": None}  # fmt: skip

    def _create(self, payload: dict[str, Any], path: str) -> Any:
        name = str(payload["name"])
        with self._lock:
            old = self.services.get(name)
            if old is not None and old.state == "Transitioning":
                return error(409, "Conflict", f"Service {name} has an operation in progress; wait for it to finish.")
            if old is not None and old.container:
                old.container.stop()
            self.services[name] = Service(payload=payload)
            op = Operation(id=str(uuid.uuid4()), service=name, steps=list(self.build_steps))
            self.operations[op.id] = op
            self.services[name].operation = op.id
        location = f"{self.base_url}{path.removesuffix('/services')}/operations/{op.id}"
        return JSONResponse({}, status_code=202, headers={"Operation-Location": location})

    def _poll(self, op_id: str) -> Any:
        with self._lock:
            op = self.operations.get(op_id)
            if op is None:
                return error(404, "NotFound", f"Operation {op_id} not found.")
            sub_operation = "DeployService"
            if op.state not in ("Succeeded", "Failed"):
                if self.hold.is_set():
                    op.state = "Running"
                elif op.steps:
                    op.state, sub_operation = op.steps.pop(0)
                else:
                    self._finish(op)
            body: dict[str, Any] = {"id": op.id, "operationType": "Deploy", "state": op.state,
                                    "createdTime": now(), "resourceLocation": f"/services/{op.service}",
                                    "operationDetails": {"subOperationType": sub_operation}}  # fmt: skip
            if op.error:
                body["error"] = op.error
            return body

    def _advance(self, name: str) -> None:
        """The deployment goes on whether or not anyone polls it: a held one stays, else it finishes."""
        with self._lock:
            op = self.operations.get(self.services[name].operation)
            if op and op.state not in ("Succeeded", "Failed") and not op.steps and not self.hold.is_set():
                self._finish(op)

    def _finish(self, op: Operation) -> None:
        """The image is built and the container started: init() decides the outcome."""
        service = self.services[op.service]
        request = service.payload["environmentImageRequest"]
        [model_id] = request["modelIds"]
        script = next(a for a in request["assets"] if a["mimeType"] == "application/octet-stream")
        source = self.blobs[script["url"].removeprefix("aml://artifact/")].decode()
        try:
            service.container = start_container(source, self.models[model_id], service.keys, self.ca)
        except CrashLoop as crash:
            aci = service.payload["computeType"] == "ACI"
            message = CRASH.format(name=op.service)
            service.state, service.logs = "Failed", crash.logs
            service.error = op.error = {
                "code": "AciDeploymentFailed" if aci else "AKSDeploymentFailed",
                "statusCode": 400,
                "message": f"{'Aci' if aci else 'Kubernetes'} Deployment failed with exception: {message}",
                "details": [{"code": "CrashLoopBackOff", "message": message}],
            }
            op.state = "Failed"
            return
        service.state, op.state = "Healthy", "Succeeded"

    def _service(self, name: str) -> dict[str, Any]:
        service = self.services[name]
        p = service.payload
        keys = ("computeType", "description", "kvTags", "properties", "authEnabled", "appInsightsEnabled",
                "containerResourceRequirements", "location", "sslEnabled", "sslCertificate", "sslKey", "cname",
                "autoScaler", "computeName", "dataCollection", "maxConcurrentRequestsPerContainer", "maxQueueWaitMs",
                "numReplicas", "scoringTimeoutMs", "livenessProbeRequirements", "aadAuthEnabled", "namespace",
                "environmentImageRequest")  # fmt: skip
        body = {k: p.get(k) for k in keys}
        body["properties"] = p.get("properties") or {}
        if p["computeType"] == "AKS":  # what MMS fills in when the request left it out (azureml-core's defaults)
            for key, default in AKS_DEFAULTS.items():
                given = {k: v for k, v in (p.get(key) or {}).items() if v is not None}
                body[key] = {**default, **given}
        body.update(name=name, state=service.state, createdTime=service.created, updatedTime=now(), publicIp=None,
                    scoringUri=service.container.scoring_uri if service.container else None, error=service.error,
                    imageId=None, imageDigest=None, createdBy={"userName": "modelops"})  # fmt: skip
        return body
