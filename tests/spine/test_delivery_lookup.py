"""An operator holding a sender's delivery id finds what became of it: an Event Grid event id, an
MLflow X-MLflow-Delivery-Id and a Databricks delivery each find their event (API and CLI); a signed
but unusable delivery is kept as refused with its reason; a badly signed one leaves no trace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.cli.main import main
from shared.service.reactor import Reactor
from tests.spine.apptest import DATABRICKS_SECRET, MLFLOW_SECRET, make_app
from tests.spine.test_eventgrid import REGISTERED, grid_event, native_event, native_trigger
from tests.support import databricks_delivery, mlflow_delivery

ENVELOPE = {
    "entity": "model_version",
    "action": "created",
    "timestamp": "2026-11-28T04:00:00Z",
    "data": {"name": "churn", "version": "3", "source": "models:/m-1", "run_id": "r1", "tags": {}},
}
DATABRICKS = {
    "event": "MODEL_VERSION_TRANSITIONED_STAGE",
    "webhook_id": "5f1a9c2e",
    "event_timestamp": 1764300000000,
    "model_name": "churn",
    "version": "4",
    "to_stage": "Staging",
    "from_stage": "None",
}
JOB = {"event_type": "jobs.on_start", "workspace_id": "1", "run": {"run_id": 991}, "job": {"job_id": 7, "name": "n"}}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Reactor, Path]:
    tmp = tmp_path_factory.mktemp("lookup")
    client, reactor = make_app(tmp)
    return client, reactor, tmp


def _by_delivery(client: TestClient, delivery_id: str) -> dict[str, Any]:
    response = client.get("/api/events", params={"delivery_id": delivery_id})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _cli(tmp: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    config, state = str(tmp / "modelops.yaml"), str(tmp / "state")
    code = main(["events", *args, "--config", config, "--state-dir", state])
    return code, capsys.readouterr().out


class TestFindByDeliveryId:
    def test_an_mlflow_delivery_id_finds_its_event_and_a_redelivery_is_listed_as_duplicate(
        self, app: tuple[TestClient, Reactor, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        client, _, tmp = app
        body, headers = mlflow_delivery(MLFLOW_SECRET, ENVELOPE, delivery_id="6b1f7e1c-mlflow-first")
        created = client.post("/api/hooks/mlflow", content=body, headers=headers)
        assert created.status_code == 202, created.text
        body, headers = mlflow_delivery(MLFLOW_SECRET, ENVELOPE, delivery_id="6b1f7e1c-mlflow-again")
        assert client.post("/api/hooks/mlflow", content=body, headers=headers).json()["duplicate"] is True
        for delivery_id in ("6b1f7e1c-mlflow-first", "6b1f7e1c-mlflow-again"):
            found = _by_delivery(client, delivery_id)
            assert [e["id"] for e in found["events"]] == [created.json()["event_id"]]
        shown = client.get(f"/api/events/{created.json()['event_id']}").json()
        assert [(d["delivery_id"], d["answer"]) for d in shown["delivery_log"]] == [
            ("6b1f7e1c-mlflow-first", "accepted"),
            ("6b1f7e1c-mlflow-again", "duplicate"),
        ]
        code, out = _cli(tmp, "--delivery", "6b1f7e1c-mlflow-again", capsys=capsys)
        assert code == 0 and "duplicate" in out and created.json()["event_id"] in out

    def test_an_event_grid_event_id_finds_its_event_by_webhook_and_by_the_native_trigger(
        self, app: tuple[TestClient, Reactor, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        client, _, tmp = app
        grid = grid_event(REGISTERED, "models/churn:5", {"modelName": "churn", "modelVersion": "5"}, "9d3c-grid")
        answered = client.post("/api/hooks/eventgrid", json=[grid])
        assert answered.status_code == 202, answered.text
        assert [e["id"] for e in _by_delivery(client, "9d3c-grid")["events"]] == [answered.json()["event_id"]]
        code, out = _cli(tmp, "--delivery", "9d3c-grid", "-o", "json", capsys=capsys)
        assert code == 0 and [e["model_version"] for e in json.loads(out)["events"]] == ["5"]

        from tests.spine.apptest import CONFIG

        container, trigger = native_trigger(tmp_path, CONFIG)
        trigger(native_event("77aa-native", REGISTERED, "models/churn:6", {"modelName": "churn", "modelVersion": 6}))
        [event] = container.reactor().ledger.list_events(delivery_id="77aa-native")
        assert event["model_version"] == "6" and event["status"] == "accepted"

    def test_databricks_deliveries_are_found_by_webhook_id_and_timestamp_and_by_job_run(
        self, app: tuple[TestClient, Reactor, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        client, _, tmp = app
        body, headers = databricks_delivery(DATABRICKS_SECRET, DATABRICKS)
        ignored = client.post("/api/hooks/databricks", content=body, headers=headers)
        assert ignored.status_code == 200 and ignored.json()["ignored"] is True  # no rule for Staging
        [event] = _by_delivery(client, "5f1a9c2e:1764300000000")["events"]
        assert event["id"] == ignored.json()["event_id"] and event["status"] == "ignored"
        body, headers = databricks_delivery(DATABRICKS_SECRET, JOB)
        job = client.post("/api/hooks/databricks", content=body, headers=headers).json()
        found = _by_delivery(client, "job-run:991")
        assert [e["id"] for e in found["events"]] == [job["event_id"]]
        assert [d["answer"] for d in found["deliveries"]] == ["ignored"]
        code, out = _cli(tmp, "--delivery", "job-run:991", capsys=capsys)
        assert code == 0 and "ignored" in out

    def test_a_signed_but_unusable_delivery_is_refused_with_its_reason(
        self, app: tuple[TestClient, Reactor, Path]
    ) -> None:
        client, reactor, _ = app
        before = reactor.ledger.list_events(limit=1000)
        bad = {**ENVELOPE, "data": {"version": "3"}}  # no model name
        body, headers = mlflow_delivery(MLFLOW_SECRET, bad, delivery_id="0ff1-malformed")
        assert client.post("/api/hooks/mlflow", content=body, headers=headers).status_code == 400
        found = _by_delivery(client, "0ff1-malformed")
        assert found["events"] == []
        [refused] = found["deliveries"]
        assert refused["answer"] == "refused" and "name" in refused["reason"] and refused["event_id"] is None
        assert reactor.ledger.list_events(limit=1000) == before

    def test_a_badly_signed_delivery_records_nothing(self, app: tuple[TestClient, Reactor, Path]) -> None:
        client, reactor, _ = app
        body, headers = mlflow_delivery("not-the-secret", ENVELOPE, delivery_id="dead-forged")
        assert client.post("/api/hooks/mlflow", content=body, headers=headers).status_code == 401
        assert reactor.ledger.deliveries(delivery_id="dead-forged") == []
        body, headers = databricks_delivery("not-the-secret", {**DATABRICKS, "webhook_id": "forged"})
        assert client.post("/api/hooks/databricks", content=body, headers=headers).status_code == 401
        assert reactor.ledger.deliveries(delivery_id="forged:1764300000000") == []

    def test_an_unknown_delivery_id_finds_nothing(
        self, app: tuple[TestClient, Reactor, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        client, _, tmp = app
        assert _by_delivery(client, "never-sent") == {"events": [], "deliveries": []}
        code, _ = _cli(tmp, "--delivery", "never-sent", capsys=capsys)
        assert code == 2
