"""Run completion: a finished run's logged model is registered when its metrics pass the gate
(real MLflow server as the run's tracking server, real target registry)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import mlflow
import pytest
from fastapi.testclient import TestClient

from shared.local.mlflow_server import MlflowServer
from shared.service.reactor import Reactor
from tests.spine.apptest import DATABRICKS_SECRET, make_app
from tests.support import train_and_register, unique

RUN_COMPLETED = "Microsoft.MachineLearningServices.RunCompleted"

CONFIG = """
sources:
  mlflow: {tracking_uri: "%(server)s"}
  azureml: {tracking_uri: "%(server)s"}
  databricks: {tracking_uri: "%(server)s"}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
rules:
  - name: good-runs
    on: run.completed
    when: {metric: accuracy, at_least: 0.9}
    do: [{register: local-aml, name: "%(name)s"}]
  - name: copy
    on: model_version.created
    do: [{register: local-aml}]
"""


def setup(tmp_path: Path, server: MlflowServer, name: str) -> tuple[TestClient, Reactor]:
    config = CONFIG % {"server": server.url, "tmp": tmp_path, "name": name}
    return make_app(tmp_path, config=config.replace("%", "%%"))


def run_of(server: MlflowServer, model: str, version: str) -> str:
    return str(mlflow.MlflowClient(tracking_uri=server.url).get_model_version(model, version).run_id)


def aml_run_completed(run_id: str) -> list[dict]:
    return [
        {
            "id": f"ev-{run_id}",
            "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws",
            "subject": f"experiments/e/runs/{run_id}",
            "eventType": RUN_COMPLETED,
            "eventTime": "2026-11-28T04:00:00Z",
            "dataVersion": "2",
            "data": {
                "experimentId": "e",
                "experimentName": "tests",
                "runId": run_id,
                "runType": "azureml.scriptrun",
                "runTags": {},
                "runProperties": {},
            },
        }
    ]


def recorded_event(reactor: Reactor, event_id: str) -> dict[str, Any]:
    event = reactor.ledger.get_event(event_id)
    assert event is not None, f"event {event_id} is not in the ledger"
    return event


def drain(reactor: Reactor, ids: list[str]) -> None:
    worker = reactor.worker()
    for _ in range(5):  # resolution plans more actions; run until the event's actions are all done
        first = reactor.ledger.get_action(ids[0])
        assert first is not None, f"action {ids[0]} is not in the ledger"
        event_id = first.event_id
        ids = [a["id"] for a in recorded_event(reactor, event_id)["actions"]]
        done = worker.run_until_done(ids, timeout=120)
        if all(a.status in ("succeeded", "failed", "skipped") for a in done) and len(done) == len(
            recorded_event(reactor, event_id)["actions"]
        ):
            return


def copies(tmp_path: Path, name: str) -> list:
    uri = f"sqlite:///{tmp_path}/aml.db"
    return list(mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri).search_model_versions(f"name='{name}'"))


class TestRunCompleted:
    def test_a_good_run_registers_its_model_once(self, tmp_path: Path, mlflow_server: MlflowServer) -> None:
        target_name = unique("from-runs")
        client, reactor = setup(tmp_path, mlflow_server, target_name)
        run_id = run_of(mlflow_server, src := unique("runs-src"), train_and_register(mlflow_server.url, src)[0])
        response = client.post("/api/hooks/eventgrid", json=aml_run_completed(run_id))
        assert response.status_code == 202, response.text
        drain(reactor, response.json()["action_ids"])

        [copy] = copies(tmp_path, target_name)
        assert copy.tags["modelops.source_run_id"] == run_id
        assert copy.tags["modelops.rule"] == "good-runs"
        # dual tracking: the copy's run carries the finished run (its name and its accuracy's history)
        source, target = mlflow.MlflowClient(mlflow_server.url), mlflow.MlflowClient(f"sqlite:///{tmp_path}/aml.db")
        assert target.get_run(str(copy.run_id)).info.run_name == source.get_run(run_id).info.run_name
        history = [(m.step, m.timestamp, m.value) for m in source.get_metric_history(run_id, "accuracy")]
        assert [
            (m.step, m.timestamp, m.value) for m in target.get_metric_history(str(copy.run_id), "accuracy")
        ] == history
        event = recorded_event(reactor, response.json()["event_id"])
        assert event["status"] == "accepted"
        assert sorted((a["kind"], a["status"]) for a in event["actions"]) == [
            ("register", "succeeded"),
            ("resolve_run", "succeeded"),
        ]
        resolve = next(a for a in event["actions"] if a["kind"] == "resolve_run")
        assert resolve["outputs"]["metrics"]["accuracy"] == pytest.approx(0.95)

        again = client.post("/api/hooks/eventgrid", json=aml_run_completed(run_id))
        assert again.json()["duplicate"] is True
        assert len(copies(tmp_path, target_name)) == 1

    def test_a_run_below_the_gate_is_ignored_with_the_reason(self, tmp_path: Path, mlflow_server: MlflowServer) -> None:
        target_name = unique("from-runs")
        client, reactor = setup(tmp_path, mlflow_server, target_name)
        src = unique("runs-weak")
        run_id = run_of(mlflow_server, src, train_and_register(mlflow_server.url, src, accuracy=0.7)[0])
        response = client.post("/api/hooks/eventgrid", json=aml_run_completed(run_id))
        drain(reactor, response.json()["action_ids"])
        event = recorded_event(reactor, response.json()["event_id"])
        assert event["status"] == "ignored"
        assert "accuracy=0.7 < 0.9" in event["reason"]
        assert copies(tmp_path, target_name) == []

    def test_a_run_without_a_model_is_ignored_with_the_reason(
        self, tmp_path: Path, mlflow_server: MlflowServer
    ) -> None:
        client, reactor = setup(tmp_path, mlflow_server, unique("from-runs"))
        source = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
        experiment = source.get_experiment_by_name("tests")
        assert experiment is not None
        run = source.create_run(experiment.experiment_id)
        source.log_metric(run.info.run_id, "accuracy", 0.99)
        source.set_terminated(run.info.run_id)
        response = client.post("/api/hooks/eventgrid", json=aml_run_completed(run.info.run_id))
        drain(reactor, response.json()["action_ids"])
        event = recorded_event(reactor, response.json()["event_id"])
        assert event["status"] == "ignored" and "has no logged model" in event["reason"]

    def test_a_databricks_job_notification_finds_the_run_by_job_run_id(
        self, tmp_path: Path, mlflow_server: MlflowServer
    ) -> None:
        target_name = unique("from-jobs")
        client, reactor = setup(tmp_path, mlflow_server, target_name)
        job_run = unique("9")[-8:]
        src = unique("jobs-src")
        train_and_register(mlflow_server.url, src, run_tags={"mlflow.databricks.jobRunID": job_run})
        payload = {
            "event_type": "jobs.on_success",
            "workspace_id": "123",
            "run": {"run_id": job_run},
            "job": {"job_id": "77", "name": "train-churn"},
        }
        auth = "Basic " + base64.b64encode(f"token:{DATABRICKS_SECRET}".encode()).decode()
        response = client.post(
            "/api/hooks/databricks",
            content=json.dumps(payload),
            headers={"Authorization": auth, "Content-Type": "application/json"},
        )
        assert response.status_code == 202, response.text
        drain(reactor, response.json()["action_ids"])
        [copy] = copies(tmp_path, target_name)
        assert copy.tags["modelops.source_run_id"] == run_of(mlflow_server, src, "1")
        wrong = "Basic " + base64.b64encode(b"token:nope").decode()
        refused = client.post("/api/hooks/databricks", json=payload, headers={"Authorization": wrong})
        assert refused.status_code == 401


class TestLoopProtection:
    def test_a_version_this_rule_registered_does_not_trigger_it_again(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path, mlflow_webhook_secret=None)
        envelope = {
            "entity": "model_version",
            "action": "created",
            "data": {
                "name": "churn",
                "version": "4",
                "source": "s",
                "run_id": None,
                "tags": {"modelops.rule": "copy", "modelops.source_version": "2"},
            },
        }
        response = client.post("/api/hooks/mlflow", json=envelope)
        assert response.status_code == 200 and response.json()["ignored"] is True
        assert "loop protection" in response.json()["reason"]
        assert reactor.ledger.list_actions() == []

    def test_other_rules_still_react_to_the_copy(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path, mlflow_webhook_secret=None)
        envelope = {
            "entity": "model_version",
            "action": "created",
            "data": {
                "name": "churn",
                "version": "4",
                "source": "s",
                "run_id": None,
                "tags": {"modelops.rule": "some-other-rule"},
            },
        }
        assert client.post("/api/hooks/mlflow", json=envelope).status_code == 202
        assert len(reactor.ledger.list_actions()) == 1
