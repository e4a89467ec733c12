"""The registry poller against a real MLflow server without webhooks."""

from __future__ import annotations

from pathlib import Path

import mlflow

from shared.local.mlflow_server import MlflowServer
from shared.service.reconcile import reconcile_sources as poll_sources
from tests.spine.apptest import make_app
from tests.support import train_and_register, unique

CONFIG = """
sources:
  mlflow: {tracking_uri: "%(server)s", poll: true, poll_lookback_seconds: 0}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
rules:
  - name: copy
    on: model_version.created
    models: ["%(prefix)s*"]
    do: [{register: local-aml}]
  - name: champion
    on: model_version.alias_set
    alias: champion
    models: ["%(prefix)s*"]
    do: [{register: local-aml}]
"""


class TestPoller:
    def test_a_version_is_picked_up_once_and_matches_the_webhook(self, tmp_path: Path, mlflow_server: MlflowServer):
        prefix = unique("poll")
        config = CONFIG % {"server": mlflow_server.url, "tmp": tmp_path, "prefix": prefix}
        client, reactor = make_app(tmp_path, config=config.replace("%", "%%"), mlflow_webhook_secret=None)
        assert poll_sources(reactor)["mlflow"]["accepted"] == 0  # baseline: nothing is new yet

        name = f"{prefix}-churn"
        version, _ = train_and_register(mlflow_server.url, name)
        first = poll_sources(reactor)["mlflow"]
        assert first["accepted"] == 1
        [action] = reactor.ledger.list_actions(model=name)
        assert action.key == f"register:local-aml:{name}:{version}"
        assert poll_sources(reactor)["mlflow"]["accepted"] == 0

        # the same change delivered late by a webhook is a duplicate: it runs once
        envelope = {
            "entity": "model_version",
            "action": "created",
            "data": {"name": name, "version": version, "source": "s", "run_id": None, "tags": {}},
        }
        response = client.post("/api/hooks/mlflow", json=envelope)
        assert response.status_code == 200 and response.json()["duplicate"] is True
        [done] = reactor.worker().run_until_done([action.id], timeout=120)
        assert done.status == "succeeded"

        mlflow.MlflowClient(tracking_uri=mlflow_server.url).set_registered_model_alias(name, "champion", version)
        assert poll_sources(reactor)["mlflow"]["aliases"] == 1
        alias_events = reactor.ledger.list_events(source="mlflow")
        assert [(e["kind"], e["summary"]["via"]) for e in alias_events][0] == ("model_version.alias_set", "reconcile")
        assert poll_sources(reactor)["mlflow"]["aliases"] == 0
        assert reactor.ledger.list_reports("reconcile")


STAGE_CONFIG = """
sources:
  mlflow: {tracking_uri: "%(server)s", poll_lookback_seconds: 0}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
rules:
  - name: production
    on: model_version.stage_changed
    stage: production
    models: ["%(prefix)s*"]
    do: [{register: local-aml}]
"""


def test_a_stage_change_no_event_reported_is_found_once_per_move(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    """Workspace registries' stages (Databricks' MODEL_VERSION_TRANSITIONED_STAGE is a webhook MLflow
    OSS does not send): the newest version in the stage a rule listens to, read from the models'
    `latest_versions` in the same searches as the aliases, is a move when the ledger recorded another."""
    prefix = unique("stage")
    config = STAGE_CONFIG % {"server": mlflow_server.url, "tmp": tmp_path, "prefix": prefix}
    _, reactor = make_app(tmp_path, config=config.replace("%", "%%"), mlflow_webhook_secret=None)
    registry = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
    name = f"{prefix}-churn"
    registry.create_registered_model(name)
    for _ in range(2):
        registry.create_model_version(name, source="s3://bucket/model")
    first = poll_sources(reactor)["mlflow"]
    assert (first["stages"], first["accepted"]) == (0, 0), first  # nothing in Production yet

    registry.transition_model_version_stage(name, "1", "Production")
    registry.transition_model_version_stage(name, "2", "Staging")  # a stage no rule listens to
    found = poll_sources(reactor)["mlflow"]
    assert (found["stages"], found["accepted"]) == (1, 1), found
    [event] = [e for e in reactor.ledger.list_events(source="mlflow") if e["kind"] == "model_version.stage_changed"]
    assert (event["summary"]["via"], event["summary"]["model_version"], event["summary"]["stage"]) == (
        "reconcile",
        "1",
        "Production",
    )
    assert poll_sources(reactor)["mlflow"]["stages"] == 0  # recorded: a quiet pass finds nothing

    registry.transition_model_version_stage(name, "2", "Production", archive_existing_versions=True)
    moved = poll_sources(reactor)["mlflow"]
    assert (moved["stages"], moved["accepted"]) == (1, 1), moved
    keys = sorted(a.key for a in reactor.ledger.list_actions(model=name))
    assert keys == [f"register:local-aml:{name}:1", f"register:local-aml:{name}:2"]
