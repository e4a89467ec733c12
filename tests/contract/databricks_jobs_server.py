"""A Databricks workspace's Jobs API 2.2, as far as batch_score uses it, following its docs.

- POST /api/2.2/jobs/run-now {job_id, job_parameters, idempotency_token}: -> {run_id,
  number_in_job}; a token seen before returns the run it started (no new run); tokens are at
  most 64 characters; parameters must be declared by the job.
- GET /api/2.2/jobs/runs/get?run_id=: the run with `state` (life_cycle_state, result_state,
  state_message) and `status` (state, termination_details {code, type, message}), run_page_url,
  times and job_parameters [{name, default, value}]. Each read moves a run along
  PENDING -> RUNNING -> TERMINATED (or INTERNAL_ERROR), ending as its job is scripted to.
- Errors are `{"error_code", "message"}`; 401 without the expected bearer token; injected
  faults (429 with Retry-After, 5xx, 403 with a message: Databricks answers "Invalid access
  token." to some rejected tokens with 403) answer before the request is looked at.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.contract.credentials import CONTRACT_TOKEN

# outcome -> (life_cycle_state, result_state, termination code, termination type, message)
ENDINGS: dict[str, tuple[str, str, str, str, str]] = {
    "SUCCESS": ("TERMINATED", "SUCCESS", "SUCCESS", "SUCCESS", ""),
    "FAILED": (
        "TERMINATED",
        "FAILED",
        "RUN_EXECUTION_ERROR",
        "CLIENT_ERROR",
        "Task score failed with message: input table main.default.features not found.",
    ),
    "CANCELED": ("TERMINATED", "CANCELED", "USER_CANCELED", "SUCCESS", "Run cancelled by a user."),
    "TIMEDOUT": ("TERMINATED", "TIMEDOUT", "CANCELED", "SUCCESS", "Run timed out after 3600 s."),
    "INTERNAL_ERROR": (
        "INTERNAL_ERROR",
        "FAILED",
        "INTERNAL_ERROR",
        "INTERNAL_ERROR",
        "Cluster terminated unexpectedly: spot instance lost.",
    ),
}


@dataclass
class Job:
    job_id: int
    parameters: dict[str, str]  # name -> default
    ending: str = "SUCCESS"
    pending_reads: int = 1
    running_reads: int = 1


@dataclass
class Run:
    run_id: int
    job: Job
    number_in_job: int
    parameters: dict[str, str]
    token: str | None
    start_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    reads: int = 0


@dataclass
class Fault:
    path: str
    status: int
    retry_after: int | None
    times: int
    message: str | None = None


class DatabricksJobsContract:
    """State of the fake workspace; `.app` is the ASGI app to serve with HttpsServer."""

    def __init__(self, token: str = CONTRACT_TOKEN, workspace_id: int = 1234567890123456) -> None:
        self.token = token
        self.workspace_id = workspace_id
        self.jobs: dict[int, Job] = {}
        self.runs: dict[int, Run] = {}
        self.tokens: dict[str, int] = {}
        self.requests: list[dict[str, Any]] = []
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self._next_run = 5000
        self.app = self._build()

    def add_job(self, job_id: int, parameters: dict[str, str], **script: Any) -> Job:
        self.jobs[job_id] = Job(job_id, dict(parameters), **script)
        return self.jobs[job_id]

    def fail_next(
        self, path: str, status: int, *, retry_after: int | None = None, times: int = 1, message: str | None = None
    ) -> None:
        self._faults.append(Fault(path, status, retry_after, times, message))

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"] == path]

    # -- the API --------------------------------------------------------------------------

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def guard(request: Request, call_next: Any) -> Any:
            body = await request.body()
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.url.path,
                    "query": dict(request.query_params),
                    "body": body,
                    "authorization": request.headers.get("authorization"),
                }
            )
            fault = self._take_fault(request.url.path)
            if fault is not None:
                headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
                codes = {403: "PERMISSION_DENIED", 429: "REQUEST_LIMIT_EXCEEDED", 503: "TEMPORARILY_UNAVAILABLE"}
                code = codes.get(fault.status, "INTERNAL_ERROR")
                return _error(fault.status, code, fault.message or f"injected {fault.status}", headers)
            if request.headers.get("authorization") != f"Bearer {self.token}":
                return _error(401, "UNAUTHENTICATED", "Invalid access token.")
            response = await call_next(request)
            # no keep-alive: the server then stops at once when a test ends
            response.headers["Connection"] = "close"
            return response

        @app.post("/api/2.2/jobs/run-now")
        async def run_now(request: Request) -> Any:
            body = await request.json()
            return self._run_now(body, str(request.base_url).rstrip("/"))

        @app.get("/api/2.2/jobs/runs/get")
        def runs_get(request: Request, run_id: int) -> Any:
            return self._runs_get(run_id, str(request.base_url).rstrip("/"))

        return app

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path == path and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _run_now(self, body: dict[str, Any], base: str) -> Any:
        job_id = body.get("job_id")
        if not isinstance(job_id, int):
            return _error(400, "INVALID_PARAMETER_VALUE", "Missing required field: job_id")
        token = body.get("idempotency_token")
        if token is not None and len(token) > 64:
            return _error(400, "INVALID_PARAMETER_VALUE", "idempotency_token is longer than 64 characters")
        job = self.jobs.get(job_id)
        if job is None:
            return _error(400, "INVALID_PARAMETER_VALUE", f"Job {job_id} does not exist.")
        given = body.get("job_parameters") or {}
        unknown = sorted(set(given) - set(job.parameters))
        if unknown:
            return _error(400, "INVALID_PARAMETER_VALUE", f"Job parameters {unknown} are not defined in job {job_id}.")
        with self._lock:
            if token is not None and token in self.tokens:
                run = self.runs[self.tokens[token]]
            else:
                self._next_run += 1
                number = 1 + sum(1 for r in self.runs.values() if r.job is job)
                run = Run(self._next_run, job, number, {**job.parameters, **given}, token)
                self.runs[run.run_id] = run
                if token is not None:
                    self.tokens[token] = run.run_id
        return {"run_id": run.run_id, "number_in_job": run.number_in_job}

    def _runs_get(self, run_id: int, base: str) -> Any:
        with self._lock:
            run = self.runs.get(run_id)
            if run is None:
                return _error(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
            run.reads += 1
            reads, job = run.reads, run.job
        now = int(time.time() * 1000)
        payload: dict[str, Any] = {
            "job_id": job.job_id,
            "run_id": run.run_id,
            "number_in_job": run.number_in_job,
            "original_attempt_run_id": run.run_id,
            "creator_user_name": "modelops@contoso.com",
            "run_name": "modelops-batch-score",
            "run_type": "JOB_RUN",
            "trigger": "ONE_TIME",
            "start_time": run.start_ms,
            "run_page_url": f"{base}/?o={self.workspace_id}#job/{job.job_id}/run/{run.run_id}",
            "job_parameters": [
                {"name": name, "default": default, "value": run.parameters[name]}
                for name, default in job.parameters.items()
            ],
        }
        if reads <= job.pending_reads:
            payload.update(_active("PENDING", "Waiting for cluster"), end_time=0)
        elif reads <= job.pending_reads + job.running_reads:
            payload.update(_active("RUNNING", "In run"), end_time=0)
        else:
            life, result, code, kind, message = ENDINGS[job.ending]
            end = max(now, run.start_ms + 42_000)
            payload.update(
                state={
                    "life_cycle_state": life,
                    "result_state": result,
                    "state_message": message,
                    "user_cancelled_or_timedout": job.ending in ("CANCELED", "TIMEDOUT"),
                },
                status={"state": "TERMINATED", "termination_details": {"code": code, "type": kind, "message": message}},
                end_time=end,
                run_duration=end - run.start_ms,
                setup_duration=0,
                execution_duration=0,
                cleanup_duration=0,
            )
        return payload


def _active(state: str, message: str) -> dict[str, Any]:
    return {
        "state": {"life_cycle_state": state, "state_message": message, "user_cancelled_or_timedout": False},
        "status": {"state": state},
    }


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    headers = {**(headers or {}), "Connection": "close"}
    return JSONResponse({"error_code": code, "message": message}, status_code=status, headers=headers)
