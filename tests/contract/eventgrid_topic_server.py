"""An Event Grid custom topic's publish API, as a contract server (serve it with HttpsServer).

Checks what the real topic checks: POST /api/events?api-version=..., the ``aeg-sas-key`` header
(or an Entra ``Authorization: Bearer`` token), and the CloudEvents 1.0 batch schema. Answers
scripted failures (401, 5xx...) on request, to exercise the publisher's retries.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

REQUIRED = ("id", "source", "type", "specversion")


class EventGridTopic:
    def __init__(self, *, key: str | None = None, token: str | None = None) -> None:
        self.key = key
        self.token = token
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        self.at: list[float] = []  # monotonic time of each request
        self.retry_after: str | None = None
        self._failures: list[int] = []
        self._lock = threading.Lock()
        self.app = FastAPI()
        self.app.post("/api/events")(self._publish)

    def fail_next(self, *statuses: int, retry_after: str | None = None) -> None:
        """Answer the next requests (authorized or not) with these status codes (and a Retry-After)."""
        with self._lock:
            self._failures.extend(statuses)
            self.retry_after = retry_after

    def _error(self, status: int, code: str, message: str) -> JSONResponse:
        headers = {"Retry-After": self.retry_after} if self.retry_after and status in (429, 503) else None
        return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)

    async def _publish(self, request: Request) -> Response:
        with self._lock:
            self.attempts += 1
            self.at.append(time.monotonic())
            scripted = self._failures.pop(0) if self._failures else None
        if not request.query_params.get("api-version"):
            return self._error(400, "BadRequest", "api-version query parameter is required")
        if self.key is not None and request.headers.get("aeg-sas-key") != self.key:
            return self._error(401, "Unauthorized", "aeg-sas-key is missing or wrong")
        if self.token is not None and request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401, "Unauthorized", "a valid Bearer token is required")
        if scripted is not None:
            return self._error(scripted, "Scripted", f"scripted failure {scripted}")
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("application/cloudevents-batch+json"):
            return self._error(400, "BadRequest", f"expected application/cloudevents-batch+json, got {content_type}")
        try:
            events = json.loads(await request.body())
        except json.JSONDecodeError as exc:
            return self._error(400, "BadRequest", f"body is not JSON: {exc}")
        if not isinstance(events, list) or not events:
            return self._error(400, "BadRequest", "body must be a non-empty JSON array of CloudEvents")
        for index, event in enumerate(events):
            missing = [k for k in REQUIRED if not isinstance(event, dict) or not isinstance(event.get(k), str)]
            if missing:
                return self._error(400, "BadRequest", f"event {index} lacks {', '.join(missing)}")
            if event["specversion"] != "1.0":
                return self._error(400, "BadRequest", f"event {index}: specversion must be 1.0")
        with self._lock:
            self.received.extend(events)
        return Response(status_code=200)
