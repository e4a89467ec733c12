"""Logs: correlation ids from the HTTP entry through the queue into the worker, no secret ever
written, Azure Monitor only when configured."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from functions.queue_worker import max_dequeue_count
from shared import telemetry
from shared.adapters.azure_storage import StorageAccount
from shared.bootstrap import Container
from shared.settings import Settings
from tests.azure_state.conftest import TOPIC_KEY
from tests.azure_state.host_queue import deliver
from tests.azure_state.test_full_path import grid_event, run_action
from tests.contract.azurite import KEY as AZURITE_KEY
from tests.support import ROOT, mlflow_delivery, train_and_register, unique

WEBHOOK_SECRET = "whsec-7c0ffee-do-not-log"


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Every log line of the process, at DEBUG, as the CLI writes them (JSON lines)."""
    stream = io.StringIO()
    monkeypatch.setenv("MODELOPS_LOG_FORMAT", "json")
    root = logging.getLogger()
    level = root.level
    telemetry.setup_logging(level=logging.DEBUG, stream=stream)
    for name in ("azure", "urllib3", "mlflow"):
        logging.getLogger(name).setLevel(logging.DEBUG)  # SDK request/response logging too
    yield stream
    for handler in [h for h in root.handlers if getattr(h, "modelops_handler", False)]:
        root.removeHandler(handler)
    root.setLevel(level)


class TestRedaction:
    @pytest.mark.parametrize(
        ("line", "secret"),
        [
            ("conn DefaultEndpointsProtocol=https;AccountName=a;AccountKey=abc123==;EndpointSuffix=x", "abc123=="),
            ("GET https://a.blob.core.windows.net/c/b?sv=2024&sig=s1gn%2Fature&se=1", "s1gn%2Fature"),
            ("headers {'Authorization': 'Bearer eyJhbGciOi.eyJzdWIiOi.c2lnbmF0dXJl'}", "eyJhbGciOi"),
            ("headers {'aeg-sas-key': 'k3y-value'}", "k3y-value"),
            ("X-Databricks-Signature: 0a1b2c3d", "0a1b2c3d"),
            ("token dapi0123456789abcdef0123456789abcdef used", "dapi0123456789abcdef0123456789abcdef"),
        ],
    )
    def test_known_secret_shapes_never_reach_a_handler(self, captured: io.StringIO, line: str, secret: str) -> None:
        logging.getLogger("modelops.test").info("%s", line)
        try:
            raise RuntimeError(line)
        except RuntimeError:
            logging.getLogger("modelops.test").exception("failed")
        text = captured.getvalue()
        assert secret not in text and "***" in text and "RuntimeError" in text


class TestSecretsInAFullPath:
    def test_no_secret_is_logged_from_webhook_to_outcome_event(
        self,
        tmp_path: Path,
        azure_env: dict[str, str],
        account: StorageAccount,
        captured: io.StringIO,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        # settings are read at start, as in the host: the container's HTTP app installs the redaction
        container = Container(Settings.from_env({**azure_env, "MLFLOW_WEBHOOK_SECRET": WEBHOOK_SECRET}))
        name = unique("churn")
        version, _ = train_and_register(f"sqlite:///{tmp_path}/source.db", name)
        client = TestClient(container.http_app())
        body, headers = mlflow_delivery(
            WEBHOOK_SECRET,
            {
                "entity": "model_version",
                "action": "created",
                "timestamp": 1,
                "data": {"name": name, "version": version},
            },
        )
        client.post("/api/hooks/mlflow", content=body, headers={**headers, "X-MLflow-Signature": "v1,d3JvbmcK"})
        response = client.post(
            "/api/hooks/eventgrid", json=grid_event(name, version), headers={"X-Correlation-Id": "corr-77"}
        )
        assert response.status_code == 202
        assert deliver(
            account, azure_env["MODELOPS_ACTIONS_QUEUE"], run_action(container), max_dequeue_count=max_dequeue_count()
        ) == ["done"]
        logging.getLogger("modelops.test").info("storage is %s", azure_env["AzureWebJobsStorage"])

        text = captured.getvalue()
        for secret in (WEBHOOK_SECRET, TOPIC_KEY, AZURITE_KEY, headers["X-MLflow-Signature"]):
            assert secret not in text
        lines = [json.loads(line) for line in text.splitlines()]
        [action_id] = response.json()["action_ids"]
        worker_lines = [r for r in lines if r["logger"] == "modelops.worker" and r.get("action_id") == action_id]
        # the worker's lines carry the id of the HTTP request that accepted the event, via the queue
        assert worker_lines and all(r.get("correlation_id") == "corr-77" for r in worker_lines)
        assert all(r.get("event_id") == response.json()["event_id"] for r in worker_lines)


class TestAzureMonitor:
    def test_not_imported_without_a_connection_string(self) -> None:
        code = (
            "import sys, function_app; "
            "print([m for m in ('azure.monitor.opentelemetry', 'opentelemetry.sdk', 'azure.data.tables', "
            "'azure.storage.queue', 'azure.eventgrid') if m in sys.modules])"
        )
        env = {"PATH": "/usr/bin:/bin", "MODELOPS_STATE_DIR": "/tmp/modelops-telemetry-test"}
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, check=True
        )
        assert out.stdout.strip() == "[]", out.stderr

    def test_configured_when_the_connection_string_is_set(self) -> None:
        code = (
            "import os, logging; from shared import telemetry; telemetry.setup_logging(); "
            "from opentelemetry import trace; print(type(trace.get_tracer_provider()).__module__); "
            "print(any('opentelemetry' in type(h).__module__ for h in logging.getLogger('modelops').handlers)); "
            "import sys; sys.stdout.flush(); os._exit(0)"  # no export flush: this test must not reach the network
        )
        env = {
            "PATH": "/usr/bin:/bin",
            # a well-formed connection string; the process exits before any export or statsbeat
            "APPLICATIONINSIGHTS_CONNECTION_STRING": "InstrumentationKey=00000000-0000-0000-0000-000000000000;"
            "IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/",
            "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
        }
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env, timeout=120
        )
        assert out.stdout.split() == ["opentelemetry.sdk.trace", "True"], out.stderr[-2000:]
