"""A register whose source tracking server fails (503, connection resets, hangs): retried with
backoff, then a clear failed state; once the source is back, a replay finishes it, once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import mlflow
import pytest
from fastapi.testclient import TestClient

from shared.bootstrap import Container
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent
from shared.local.mlflow_server import MlflowServer
from shared.service.dispatch import LocalDispatcher
from shared.service.reactor import Reactor
from shared.settings import Settings
from tests.faults.flaky_source import FlakySource, Mode
from tests.support import train_and_register, unique, write_config

pytestmark = pytest.mark.slow  # a real MLflow server behind a real socket front
MAX_ATTEMPTS = 3
BACKOFF_BASE = 0.2
# what the recorded error must name, per failure
CAUSES: dict[Mode, tuple[str, ...]] = {
    "503": ("503", "TEMPORARILY_UNAVAILABLE"),
    "reset": ("reset", "Connection aborted"),
    "hang": ("timed out",),
}


@pytest.fixture
def source(mlflow_server: MlflowServer) -> Iterator[FlakySource]:
    with FlakySource(mlflow_server.port) as flaky:
        yield flaky


@pytest.fixture
def fast_failing_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's own client retries (7 by default, minutes of backoff) and waits 120 s per request;
    the reactor's retries are under test here, so the client gives up at once."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")


def _stack(tmp: Path, source_url: str) -> tuple[Reactor, TestClient]:
    config = write_config(
        tmp / "modelops.yaml",
        f"""
sources:
  mlflow: {{tracking_uri: "{source_url}"}}
registries:
  local-aml: {{kind: mlflow, tracking_uri: "sqlite:///{tmp}/aml.db", artifact_location: "{tmp}/aml-art"}}
rules:
  - name: copy
    on: model_version.created
    do: [{{register: local-aml}}]
worker: {{max_attempts: {MAX_ATTEMPTS}, backoff_base_seconds: {BACKOFF_BASE}, lease_seconds: 30,
          poll_interval_seconds: 0.05}}
""",
    )
    settings = Settings.from_env({"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp / "state")})
    container = Container(settings, dispatcher=LocalDispatcher())
    return container.reactor(), TestClient(container.http_app())


@pytest.mark.usefixtures("fast_failing_client")
@pytest.mark.parametrize("mode", list(CAUSES))
def test_failing_source_retries_with_backoff_then_fails_then_replay_finishes(
    tmp_path: Path, mlflow_server: MlflowServer, source: FlakySource, mode: Mode
) -> None:
    name = unique("fault")
    version, _ = train_and_register(mlflow_server.url, name)
    reactor, api = _stack(tmp_path, source.url)
    accepted = reactor.accept(
        ModelEvent(
            source="mlflow",
            kind=MODEL_VERSION_CREATED,
            source_type="model_version.created",
            model_name=name,
            model_version=version,
            delivery_id=unique("d"),
        )
    )
    [action_id] = accepted.action_ids

    source.mode = mode
    worker = reactor.worker()
    [failed] = worker.run_until_done([action_id], timeout=120)
    assert failed.status == "failed"
    assert failed.attempts == MAX_ATTEMPTS
    assert failed.error and failed.error.startswith("transient error: cannot read source model version")
    assert any(cause in failed.error for cause in CAUSES[mode]), failed.error
    assert source.connections >= MAX_ATTEMPTS  # every attempt really went to the source

    log = reactor.ledger.action_log(action_id)
    retries = [line for line in log if "; retry at " in line["message"]]
    assert len(retries) == MAX_ATTEMPTS - 1
    delays = [
        (
            datetime.fromisoformat(line["message"].rsplit("retry at ", 1)[1]) - datetime.fromisoformat(line["at"])
        ).total_seconds()
        for line in retries
    ]
    # retry k waits base * 2**(k-1): the schedule doubles (read from the ledger, not measured)
    assert [round(d, 1) for d in delays] == [BACKOFF_BASE * 2**k for k in range(MAX_ATTEMPTS - 1)], delays
    assert log[-1]["message"].startswith(f"failed after {MAX_ATTEMPTS} attempt(s)")

    # nothing accepted is lost: the event and its failed action are there for the operator
    event = api.get(f"/api/events/{accepted.event_id}").json()
    assert event["status"] == "accepted"
    assert api.get(f"/api/actions/{action_id}").json()["status"] == "failed"

    source.mode = "proxy"
    replay = api.post(f"/api/events/{accepted.event_id}/replay")
    assert replay.status_code == 202 and replay.json()["requeued"] == [action_id]
    [done] = worker.run_until_done([action_id], timeout=120)
    assert done.status == "succeeded", done.error
    assert done.attempts == 1  # a replay starts the count again

    target = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/aml.db")
    copies = target.search_model_versions(f"name='{name}'")
    assert [str(c.version) for c in copies] == [done.outputs.to_dict()["model_version"]]
    assert copies[0].tags["modelops.source_version"] == version
