"""Contract server for Azure ML online endpoints (Microsoft.MachineLearningServices ARM REST API).

Follows the shapes of the azure-rest-api-specs examples (stable 2024-04-01,
`examples/OnlineDeployment/ManagedOnlineDeployment/createOrUpdate.json` and the onlineEndpoints
operations): PUT create-or-update answers 201 with an `Azure-AsyncOperation` header whose status
resource goes InProgress -> Succeeded (or Failed with an ARM error), DELETE answers 202 the same
way, `listKeys` is a POST, traffic is a property of the endpoint. A scoring route stands in for
the endpoint's data plane: it checks the key, routes by `azureml-model-deployment` (else by
traffic) and asks ``scorer`` for the answer of the deployed model. A model container's answer other
than 200 reaches the client as 424 Model Error, with the container's status in the
`ms-azureml-model-error-statuscode` header (how-to-troubleshoot-online-endpoints.md, "HTTP status
codes": "If your model container returns a non-200 response, Azure returns a 424"), and Monitor
counts it under statusCode 424 with the container's in its `Model Status Code` dimension.

Failure scenarios, set on ``deployment_outcome`` for the next deployment PUTs:
``quota`` (synchronous 400 QuotaExceeded), ``failed`` (LRO ends Failed), ``stuck`` (LRO never ends).
``endpoint_conflicts`` answers the next endpoint PUTs with ARM's 409 Conflict error, one per entry:
``ongoing`` (another operation runs on the endpoint, with Retry-After) or ``taken`` (the name is in use).
``endpoint_update_seconds`` makes endpoint updates slow the way Azure's are: the operation runs that
long whoever polls it (its status resource stays InProgress, the endpoint `Updating`, the traffic the
old one), and an endpoint PUT meanwhile is refused 409 ``ongoing``.

Traffic and mirrored traffic, as the service documents them: `traffic` values add up to 0 or 100 and
`mirrorTraffic` to at most 50 (the spec's OnlineEndpointProperties), for one deployment only, never a
Kubernetes endpoint (how-to-safely-rollout-online-endpoints.md, "Mirroring has the following
limitations"); a request that names its deployment is not mirrored. Without the header a request goes
to a deployment drawn by the traffic weights (a seeded draw: runs repeat), and is copied to the mirrored
deployment at its percentage, that answer discarded. Every scored request is kept in ``requests`` (time,
deployment, status, latency): the Monitor metrics contract (monitor_metrics_server.py) reads it.
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.contract.credentials import CONTRACT_TOKEN

PROVIDER = "Microsoft.MachineLearningServices"
LOCATION = "westeurope"
WS = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices/workspaces/{ws}"
DEPLOYMENT_DEFAULTS: dict[str, Any] = {
    "scaleSettings": {"scaleType": "Default"},
    "requestSettings": {"maxQueueWait": "PT0.5S", "requestTimeout": "PT5S", "maxConcurrentRequestsPerInstance": 1},
    "livenessProbe": {
        "failureThreshold": 30,
        "successThreshold": 1,
        "timeout": "PT2S",
        "period": "PT10S",
        "initialDelay": "PT10S",
    },
    "readinessProbe": {
        "failureThreshold": 30,
        "successThreshold": 1,
        "timeout": "PT2S",
        "period": "PT10S",
        "initialDelay": "PT10S",
    },
    "appInsightsEnabled": False,
    "egressPublicNetworkAccess": "Enabled",
    "properties": {},
    "environmentVariables": {},
}
KUBERNETES_DEFAULTS: dict[str, Any] = {
    "containerResourceRequirements": {
        "containerResourceRequests": {"cpu": "0.1", "memory": "0.5Gi"},
        "containerResourceLimits": {"cpu": "1", "memory": "2Gi"},
    },
}
Scorer = Callable[[str, dict[str, Any]], tuple[int, Any]]  # (model ARM id, request) -> (status, body)


@dataclass(frozen=True)
class Scored:
    """One request a deployment answered (mirrored copies included), as Azure Monitor counts it."""

    at: float  # epoch seconds
    endpoint: str
    deployment: str
    status: int  # what the endpoint answered
    latency_ms: float
    model_status: int = 200  # what the model container answered


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def _conflict(kind: str, endpoint: str, retry_after: str = "20") -> JSONResponse:
    """ARM's 409 in the shape of every operation's default response, ErrorResponse
    (common-types/resource-management/v5/types.json, referenced by OnlineEndpoints_CreateOrUpdate in
    stable/2024-04-01/machineLearningServices.json); its success answers are the spec example
    examples/Workspace/OnlineEndpoint/createOrUpdate.json (200/201 with Azure-AsyncOperation)."""
    if kind == "ongoing":
        message = f"There is an ongoing operation on endpoint {endpoint}; wait for it to complete and try again."
        return _error(409, "Conflict", message, {"Retry-After": retry_after})
    return _error(409, "Conflict", f"Endpoint name {endpoint} is already in use; endpoint names are unique per region.")


def _system_data() -> dict[str, Any]:
    return {
        "createdAt": "2026-01-01T12:34:56.999Z",
        "createdBy": "modelops",
        "createdByType": "Application",
        "lastModifiedAt": "2026-01-01T12:34:56.999Z",
        "lastModifiedBy": "modelops",
        "lastModifiedByType": "Application",
    }


class AmlOnlineContract:
    """In-memory workspace state plus the FastAPI app serving it."""

    def __init__(self, scorer: Scorer, *, polls_before_done: int = 1) -> None:
        self.scorer = scorer
        self.base_url = ""  # set once the HTTPS server knows its port
        self.polls_before_done = polls_before_done
        self.deployment_outcome = "succeed"
        self.endpoint_conflicts: list[str] = []
        self.conflict_retry_after = "20"  # the Retry-After of a 409 "ongoing operation", in seconds
        self.endpoint_update_seconds: float | None = None
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.deployments: dict[str, dict[str, dict[str, Any]]] = {}
        self.keys: dict[str, str] = {}
        self.operations: dict[str, dict[str, Any]] = {}
        self.log: list[tuple[str, str]] = []
        self.scored: list[dict[str, Any]] = []
        self.requests: list[Scored] = []
        self._draw = random.Random(0)  # noqa: S311 - a routing draw, not a secret
        self._lock = threading.Lock()
        self.app = self._build()

    # -- helpers -------------------------------------------------------------------------------
    def traffic(self, endpoint: str) -> dict[str, int]:
        return dict(self.endpoints[endpoint]["properties"]["traffic"])

    def _ws_id(self, sub: str, rg: str, ws: str) -> str:
        return WS.format(sub=sub, rg=rg, ws=ws)

    def _start_operation(
        self,
        on_done: Callable[[], object],
        *,
        failure: dict[str, Any] | None = None,
        stuck: bool = False,
        seconds: float | None = None,
        endpoint: str | None = None,
    ) -> str:
        op_id = str(uuid.uuid4())
        self.operations[op_id] = {
            "polls": 0,
            "on_done": on_done,
            "failure": failure,
            "stuck": stuck,
            "status": "InProgress",
            "done_at": None if seconds is None else time.monotonic() + seconds,  # runs by itself, polled or not
            "endpoint": endpoint,
        }
        return op_id

    def _advance(self, op: dict[str, Any], *, polled: bool) -> None:
        """An operation ends after its polls (by default) or, when it has a duration, once that passed."""
        if op["status"] != "InProgress" or op["stuck"]:
            return
        due = op["polls"] > self.polls_before_done if op["done_at"] is None else time.monotonic() >= op["done_at"]
        if due and (polled or op["done_at"] is not None):
            op["on_done"]()
            op["status"] = "Failed" if op["failure"] else "Succeeded"

    def _endpoint_busy(self, name: str) -> bool:
        """Whether a timed operation still runs on the endpoint (ended ones are settled first)."""
        busy = False
        for op in self.operations.values():
            if op["endpoint"] == name and op["done_at"] is not None:
                self._advance(op, polled=False)
                busy = busy or op["status"] == "InProgress"
        return busy

    def _async_headers(self, sub: str, op_id: str) -> dict[str, str]:
        url = (
            f"{self.base_url}/subscriptions/{sub}/providers/{PROVIDER}/locations/{LOCATION}"
            f"/mfeOperationsStatus/{op_id}?api-version=2024-04-01"
        )
        # Retry-After keeps the SDK's pollers from waiting their 5 s default between polls
        return {"Azure-AsyncOperation": url, "Location": url.replace("Status", "Results"), "Retry-After": "1"}

    # -- app -----------------------------------------------------------------------------------
    def _build(self) -> FastAPI:  # noqa: C901 - one route table, read top to bottom
        app = FastAPI()
        prefix = WS  # FastAPI path parameters: sub, rg, ws

        @app.middleware("http")
        async def arm_auth(request: Request, call_next: Any) -> Response:
            self.log.append((request.method, request.url.path))
            arm = request.url.path.startswith("/subscriptions/")
            if arm and request.headers.get("authorization") != f"Bearer {CONTRACT_TOKEN}":
                return _error(401, "AuthenticationFailed", "missing or invalid bearer token")
            return await call_next(request)

        @app.get(prefix)
        def get_workspace(sub: str, rg: str, ws: str) -> dict[str, Any]:
            return {
                "id": self._ws_id(sub, rg, ws),
                "name": ws,
                "type": f"{PROVIDER}/workspaces",
                "location": LOCATION,
                "tags": {},
                "systemData": _system_data(),
                "identity": {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": str(uuid.uuid4())},
                "sku": {"name": "Basic", "tier": "Basic"},
                "properties": {
                    "friendlyName": ws,
                    "workspaceId": str(uuid.uuid5(uuid.NAMESPACE_URL, ws)),
                    "provisioningState": "Succeeded",
                    "publicNetworkAccess": "Enabled",
                    "discoveryUrl": f"https://{LOCATION}.api.azureml.ms/discovery",
                    "mlFlowTrackingUri": f"azureml://{LOCATION}.api.azureml.ms/mlflow/v1.0{self._ws_id(sub, rg, ws)}",
                },
            }

        @app.get(prefix + "/onlineEndpoints")
        def list_endpoints(sub: str, rg: str, ws: str) -> dict[str, Any]:
            return {"value": list(self.endpoints.values())}

        @app.get(prefix + "/onlineEndpoints/{name}")
        def get_endpoint(sub: str, rg: str, ws: str, name: str) -> Response:
            with self._lock:
                self._endpoint_busy(name)
            if name not in self.endpoints:
                return _error(404, "UserError", f"Resource {name} is not found.")
            return JSONResponse(self.endpoints[name])

        @app.put(prefix + "/onlineEndpoints/{name}")
        async def put_endpoint(sub: str, rg: str, ws: str, name: str, request: Request) -> Response:
            body = await request.json()
            props = body.get("properties", {})
            with self._lock:
                if self.endpoint_conflicts:
                    return _conflict(self.endpoint_conflicts.pop(0), name, self.conflict_retry_after)
                if self._endpoint_busy(name):
                    return _conflict("ongoing", name, self.conflict_retry_after)
                traffic = {k: int(v) for k, v in (props.get("traffic") or {}).items()}
                mirror = {k: int(v) for k, v in (props.get("mirrorTraffic") or {}).items() if int(v)}
                problem = self._traffic_problem(name, traffic) or self._mirror_problem(name, mirror, props, traffic)
                if problem:
                    return _error(400, "BadArgument", problem)
                created = name not in self.endpoints
                resource = self.endpoints.get(name) or {
                    "id": f"{self._ws_id(sub, rg, ws)}/onlineEndpoints/{name}",
                    "name": name,
                    "type": f"{PROVIDER}/workspaces/onlineEndpoints",
                    "location": body.get("location", LOCATION),
                    "kind": body.get("kind"),
                    "systemData": _system_data(),
                    "identity": {
                        "type": "SystemAssigned",
                        "principalId": str(uuid.uuid4()),
                        "tenantId": str(uuid.uuid4()),
                    },
                    "properties": {
                        "authMode": props.get("authMode", "Key"),
                        "scoringUri": f"{self.base_url}/score/{name}",
                        "swaggerUri": f"{self.base_url}/score/{name}/swagger.json",
                        "traffic": {},
                        "mirrorTraffic": {},
                        "publicNetworkAccess": "Enabled",
                        "properties": {},
                    },
                }
                resource["tags"] = body.get("tags") or {}
                resource["properties"]["description"] = props.get("description")
                if props.get("compute"):
                    resource["properties"]["compute"] = props["compute"]
                resource["properties"]["provisioningState"] = "Creating" if created else "Updating"
                self.endpoints[name] = resource
                self.deployments.setdefault(name, {})
                self.keys.setdefault(name, uuid.uuid4().hex)

                def done() -> None:
                    resource["properties"]["traffic"] = traffic
                    resource["properties"]["mirrorTraffic"] = mirror
                    resource["properties"]["provisioningState"] = "Succeeded"

                slow = None if created else self.endpoint_update_seconds
                op = self._start_operation(done, seconds=slow, endpoint=name)
            return JSONResponse(resource, status_code=201 if created else 200, headers=self._async_headers(sub, op))

        @app.post(prefix + "/onlineEndpoints/{name}/listKeys")
        def list_keys(sub: str, rg: str, ws: str, name: str) -> Response:
            if name not in self.endpoints:
                return _error(404, "UserError", f"Resource {name} is not found.")
            return JSONResponse({"primaryKey": self.keys[name], "secondaryKey": self.keys[name][::-1]})

        @app.get(prefix + "/onlineEndpoints/{endpoint}/deployments")
        def list_deployments(sub: str, rg: str, ws: str, endpoint: str) -> Response:
            if endpoint not in self.endpoints:
                return _error(404, "UserError", f"Resource {endpoint} is not found.")
            return JSONResponse({"value": list(self.deployments[endpoint].values())})

        @app.get(prefix + "/onlineEndpoints/{endpoint}/deployments/{name}")
        def get_deployment(sub: str, rg: str, ws: str, endpoint: str, name: str) -> Response:
            found = self.deployments.get(endpoint, {}).get(name)
            if found is None:
                return _error(404, "UserError", f"Resource {name} is not found.")
            return JSONResponse(found)

        @app.put(prefix + "/onlineEndpoints/{endpoint}/deployments/{name}")
        async def put_deployment(sub: str, rg: str, ws: str, endpoint: str, name: str, request: Request) -> Response:
            if endpoint not in self.endpoints:
                return _error(404, "UserError", f"Endpoint {endpoint} is not found.")
            body = await request.json()
            props = body.get("properties", {})
            if not str(props.get("model", "")).startswith(f"{self._ws_id(sub, rg, ws)}/models/"):
                return _error(400, "BadArgument", f"model {props.get('model')!r} is not a model of this workspace")
            if props.get("environmentId") or props.get("codeConfiguration"):
                return _error(400, "BadArgument", "an MLflow no-code deployment takes no environment or code")
            if self.deployment_outcome == "quota":
                sku = props.get("instanceType")
                return _error(
                    400,
                    "QuotaExceeded",
                    f"Not enough quota available for {sku} in SubscriptionId {sub}. "
                    "Current usage/limit: 4/4. Additional needed: 4",
                )
            with self._lock:
                created = name not in self.deployments[endpoint]
                resource = {
                    "id": f"{self._ws_id(sub, rg, ws)}/onlineEndpoints/{endpoint}/deployments/{name}",
                    "name": name,
                    "type": f"{PROVIDER}/workspaces/onlineEndpoints/deployments",
                    "location": body.get("location", LOCATION),
                    "kind": body.get("kind"),
                    "tags": body.get("tags") or {},
                    "systemData": _system_data(),
                    "sku": body.get("sku") or {"name": "Default", "capacity": 1},
                    # the service fills what the request left out (defaults as in the spec example)
                    "properties": {
                        **DEPLOYMENT_DEFAULTS,
                        **(KUBERNETES_DEFAULTS if props.get("endpointComputeType") == "Kubernetes" else {}),
                        **props,
                        "provisioningState": "Creating" if created else "Updating",
                    },
                }
                self.deployments[endpoint][name] = resource
                failure = None
                if self.deployment_outcome == "failed":
                    failure = {
                        "code": "ResourceNotReady",
                        "message": "User container has crashed or terminated: liveness probe failed",
                    }

                def done() -> None:
                    resource["properties"]["provisioningState"] = "Failed" if failure else "Succeeded"

                op = self._start_operation(done, failure=failure, stuck=self.deployment_outcome == "stuck")
            return JSONResponse(resource, status_code=201 if created else 200, headers=self._async_headers(sub, op))

        @app.delete(prefix + "/onlineEndpoints/{endpoint}/deployments/{name}")
        def delete_deployment(sub: str, rg: str, ws: str, endpoint: str, name: str) -> Response:
            with self._lock:
                if name not in self.deployments.get(endpoint, {}):
                    return Response(status_code=204)
                if self.traffic(endpoint).get(name):
                    return _error(400, "BadArgument", f"deployment {name} still receives traffic")
                self.deployments[endpoint][name]["properties"]["provisioningState"] = "Deleting"
                op = self._start_operation(lambda: self.deployments[endpoint].pop(name, None))
            return Response(status_code=202, headers=self._async_headers(sub, op))

        @app.get("/subscriptions/{sub}/providers/" + PROVIDER + "/locations/{loc}/mfeOperationsStatus/{op_id}")
        def operation_status(sub: str, loc: str, op_id: str) -> Response:
            with self._lock:
                op = self.operations.get(op_id)
                if op is None:
                    return _error(404, "NotFound", "operation not found")
                op["polls"] += 1
                self._advance(op, polled=True)
                body: dict[str, Any] = {"id": op_id, "name": op_id, "status": op["status"]}
                if op["status"] == "Failed":
                    body["error"] = op["failure"]
            return JSONResponse(body, headers={"Retry-After": "1"})

        @app.post("/score/{endpoint}")
        async def score(endpoint: str, request: Request) -> Response:
            if endpoint not in self.endpoints:
                return JSONResponse({"message": "endpoint not found"}, status_code=404)
            if request.headers.get("authorization") != f"Bearer {self.keys[endpoint]}":
                return JSONResponse({"message": "key_auth_access_denied"}, status_code=401)
            chosen = request.headers.get("azureml-model-deployment")
            payload = await request.json()
            if not chosen:
                live = {d: share for d, share in self.traffic(endpoint).items() if share}
                if not live:
                    return JSONResponse({"message": "no deployment has traffic"}, status_code=424)
                with self._lock:
                    chosen = self._draw.choices(list(live), weights=list(live.values()))[0]
                    mirrored = self.endpoints[endpoint]["properties"].get("mirrorTraffic") or {}
                    copies = [d for d, share in mirrored.items() if self._draw.random() * 100 < share]
                for shadow in copies:  # the shadow's answer is discarded, its figures are not
                    self._score(endpoint, shadow, payload)
            deployment = self.deployments[endpoint].get(chosen)
            if deployment is None or deployment["properties"]["provisioningState"] != "Succeeded":
                return JSONResponse({"message": f"deployment {chosen} is not ready"}, status_code=404)
            self.scored.append({"deployment": chosen, "payload": payload})
            status, answer = self._score(endpoint, chosen, payload)
            headers = {"azureml-model-deployment": chosen}
            if status != 200:
                headers["ms-azureml-model-error-statuscode"] = str(status)
                headers["ms-azureml-model-error-reason"] = "model_error"
                return JSONResponse(answer, status_code=424, headers=headers)
            return JSONResponse(answer, headers=headers)

        return app

    def _score(self, endpoint: str, name: str, payload: dict[str, Any]) -> tuple[int, Any]:
        started = time.perf_counter()
        status, answer = self.scorer(self.deployments[endpoint][name]["properties"]["model"], payload)
        latency_ms = (time.perf_counter() - started) * 1000
        answered = 200 if status == 200 else 424  # the endpoint's answer to a model error
        self.requests.append(Scored(time.time(), endpoint, name, answered, latency_ms, model_status=status))
        return status, answer

    def _mirror_problem(
        self, endpoint: str, mirror: dict[str, int], props: dict[str, Any], traffic: dict[str, int]
    ) -> str | None:
        if not mirror:
            return None
        if props.get("compute") or (self.endpoints.get(endpoint, {}).get("properties", {}).get("compute")):
            return "mirror traffic is not supported for Kubernetes online endpoints"
        if len(mirror) > 1:
            return "mirror traffic can be set for one deployment only"
        if sum(mirror.values()) > 50:
            return "mirror traffic values need to sum to at most 50"
        for name in mirror:
            if self.deployments.get(endpoint, {}).get(name, {}).get("properties", {}).get("provisioningState") != (
                "Succeeded"
            ):
                return f"mirror traffic refers to deployment {name} which does not exist or is not Succeeded"
            if traffic.get(name):
                return f"deployment {name} cannot receive live and mirror traffic at once"
        return None

    def _traffic_problem(self, endpoint: str, traffic: dict[str, int]) -> str | None:
        existing = self.deployments.get(endpoint, {})
        for name, share in traffic.items():
            if share and existing.get(name, {}).get("properties", {}).get("provisioningState") != "Succeeded":
                return f"traffic refers to deployment {name} which does not exist or is not Succeeded"
        if traffic and sum(traffic.values()) not in (0, 100):
            return "traffic must add up to 100"
        return None
