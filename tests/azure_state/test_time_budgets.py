"""Time budgets in Azure mode (Table ledger and Storage queue on Azurite, the queue-triggered
function called as the host calls it): an MLflow source that does not answer fails the attempt in
seconds (MLflow's own retries are bounded, shared/adapters/mlflow_http.py), the ledger retries it,
and a Retry-After from MLflow's REST API is sat out when short and kept for the ledger when long."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.adapters.azure_storage import StorageAccount
from shared.bootstrap import Container
from shared.settings import MlflowHttpSettings, Settings
from tests.azure_state.host_queue import deliver
from tests.azure_state.test_full_path import grid_event, run_action
from tests.support import unique, write_config

CONFIG = """
sources:
  azureml: {tracking_uri: "%(source)s"}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
rules:
  - {name: copy, on: [model.registered], do: [{register: local-aml}]}
worker: {lease_seconds: 30, max_attempts: 3, backoff_base_seconds: 1}
"""


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """Accepts connections and never answers (a load balancer in front of a hung server)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError, OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()


class Throttling(BaseHTTPRequestHandler):
    """MLflow's REST API answering 429 REQUEST_LIMIT_EXCEEDED with a Retry-After (as Databricks'
    MLflow does when rate limited), whatever is asked."""

    retry_after = "30"
    requests: list[float] = []

    def do_GET(self) -> None:
        type(self).requests.append(time.monotonic())
        body = json.dumps({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "rate limit exceeded"}).encode()
        self.send_response(429)
        self.send_header("Retry-After", type(self).retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def throttling_server(retry_after: str) -> Iterator[type[Throttling]]:
    handler = type("Handler", (Throttling,), {"retry_after": retry_after, "requests": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _host(tmp_path: Path, azure_env: dict[str, str], source: str) -> tuple[Container, str]:
    config = write_config(tmp_path / "budget.yaml", CONFIG % {"tmp": tmp_path, "source": source})
    container = Container(Settings.from_env({**azure_env, "MODELOPS_CONFIG": str(config)}))
    response = TestClient(container.http_app()).post("/api/hooks/eventgrid", json=grid_event(unique("churn"), "1"))
    assert response.status_code == 202, response.text
    [action_id] = response.json()["action_ids"]
    return container, action_id


def _one_delivery(container: Container, azure_env: dict[str, str], account: StorageAccount) -> float:
    import shared.executors.register  # noqa: F401 - imported by the host's first invocation, not timed here

    started = time.monotonic()
    results = deliver(account, azure_env["MODELOPS_ACTIONS_QUEUE"], run_action(container), max_dequeue_count=5)
    assert results == ["done"]  # a failed attempt is the ledger's retry, not a failed execution
    return time.monotonic() - started


def test_an_unreachable_source_fails_the_attempt_in_seconds_and_the_ledger_retries(
    tmp_path: Path, azure_env: dict[str, str], account: StorageAccount
) -> None:
    container, action_id = _host(tmp_path, azure_env, f"http://127.0.0.1:{closed_port()}")
    elapsed = _one_delivery(container, azure_env, account)
    action = container.reactor().ledger.get_action(action_id)
    assert action is not None and action.status == "queued" and action.attempts == 1
    assert action.error is not None and action.error.startswith("transient error: cannot read source model version")
    # connection refused: 3 tries with the default limits, sleeping 0 s then 2-3 s (MLflow's default: ~247 s)
    assert elapsed < 10, f"one attempt took {elapsed:.1f}s"
    print(f"\nunreachable source (refused): attempt failed in {elapsed:.1f}s")


def test_a_source_that_never_answers_fails_the_attempt_within_the_stated_bound(
    tmp_path: Path, azure_env: dict[str, str], account: StorageAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")  # an app setting, read by Settings and MLflow
    limits = MlflowHttpSettings(timeout_seconds=2)
    with silent_server() as url:
        container, action_id = _host(tmp_path, {**azure_env, "MLFLOW_HTTP_REQUEST_TIMEOUT": "2"}, url)
        assert container.settings.mlflow_http == limits
        elapsed = _one_delivery(container, azure_env, account)
    action = container.reactor().ledger.get_action(action_id)
    assert action is not None and action.status == "queued" and action.attempts == 1
    assert action.error is not None and "timed out" in action.error, action.error
    bound = limits.worst_case_seconds()  # 3 tries x 2 s + 2-3 s of backoff
    assert 3 * 2 <= elapsed < bound + 5, f"one attempt took {elapsed:.1f}s, bound {bound:.0f}s"
    print(f"\nsilent source: attempt failed in {elapsed:.1f}s (bound {bound:.0f}s)")


def test_a_long_retry_after_from_mlflow_goes_to_the_ledger_and_a_short_one_is_sat_out(
    tmp_path: Path, azure_env: dict[str, str], account: StorageAccount
) -> None:
    with throttling_server("30") as throttled:
        container, action_id = _host(tmp_path, azure_env, throttled.url)  # type: ignore[attr-defined]
        elapsed = _one_delivery(container, azure_env, account)
    assert len(throttled.requests) == 1 and elapsed < 10  # not retried inside the attempt
    action = container.reactor().ledger.get_action(action_id)
    assert action is not None and action.status == "queued" and action.error is not None
    assert "asked to retry after 30s" in action.error, action.error
    assert action.not_before is not None
    assert (action.not_before - datetime.now(UTC)).total_seconds() > 30 - elapsed - 2
    # the queue message for the retry is invisible as long
    assert account.queue_client(azure_env["MODELOPS_ACTIONS_QUEUE"]).peek_messages() == []

    with throttling_server("1") as short:
        container, action_id = _host(tmp_path / "short", azure_env, short.url)  # type: ignore[attr-defined]
        _one_delivery(container, azure_env, account)
    gaps = [b - a for a, b in zip(short.requests, short.requests[1:], strict=False)]
    assert len(short.requests) == 3 and all(gap >= 0.95 for gap in gaps), gaps  # sat out by MLflow's retries
