"""Nothing lost: MLflow delivers while the reactor is down (the delivery is refused, MLflow's three quick
retries too, and it gives up); the reactor then starts and reconciles: the version is copied once within
one reconcile interval, its event says `via: reconcile`, and the webhook arriving late is a duplicate."""

from __future__ import annotations

import time
from pathlib import Path

import mlflow
import requests

from shared.local.mlflow_server import MlflowServer
from tests.support import (
    ReactorProcess,
    actions_for,
    mlflow_delivery,
    train_and_register,
    unique,
    wait_for,
    write_config,
)

SECRET = "nothing-lost-secret"
PIP = ["scikit-learn", "pandas", "numpy"]

CONFIG = """
sources:
  mlflow: {tracking_uri: "%(uri)s", poll_lookback_seconds: 600}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
rules:
  - name: copy-new-versions
    on: model_version.created
    models: ["%(model)s"]
    do: [{register: local-aml}]
reconcile: {every: PT3S}
worker: {backoff_base_seconds: 0.2, poll_interval_seconds: 0.2}
"""


def test_a_version_delivered_while_the_reactor_was_down_is_copied_once_by_reconcile(
    tmp_path: Path, mlflow_server: MlflowServer
) -> None:
    model = unique("lost")
    config = write_config(
        tmp_path / "modelops.yaml", CONFIG % {"uri": mlflow_server.url, "tmp": tmp_path, "model": model}
    )
    reactor = ReactorProcess(tmp_path / "state", config, env={"MLFLOW_WEBHOOK_SECRET": SECRET})  # not started
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
    hook = client.create_webhook(
        name=unique("down"), url=f"{reactor.url}/api/hooks/mlflow", events=["model_version.created"], secret=SECRET
    )
    try:
        version, _ = train_and_register(mlflow_server.url, model, pip_requirements=PIP)  # delivered to no one
        # MLflow retries a refused delivery 3 times, backing off 1, 2 and 4 s plus up to 1 s of jitter each
        # (mlflow/webhooks/delivery.py, MLFLOW_WEBHOOK_REQUEST_MAX_RETRIES): by then it has given up for good
        time.sleep(15)
        with reactor:
            done = wait_for(
                lambda: [a for a in actions_for(reactor.url, model) if a["status"] == "succeeded"],
                timeout=240,
                what="reconcile to find and copy the version",
            )
            [action] = done
            assert action["kind"] == "register" and action["model_version"] == version
            event = requests.get(f"{reactor.url}/api/events/{action['event_id']}", timeout=30).json()
            assert event["summary"]["via"] == "reconcile"

            # the sender's delivery arriving late (a retry after an outage) is the same change
            envelope = {
                "entity": "model_version",
                "action": "created",
                "timestamp": "2026-12-07T10:00:00+00:00",
                "data": {"name": model, "version": version, "source": "s", "run_id": None, "tags": {}},
            }
            body, headers = mlflow_delivery(SECRET, envelope)
            late = requests.post(f"{reactor.url}/api/hooks/mlflow", data=body, headers=headers, timeout=30)
            assert late.status_code == 200 and late.json()["duplicate"] is True
            assert late.json()["event_id"] == action["event_id"]
            assert len(actions_for(reactor.url, model)) == 1
    finally:
        client.delete_webhook(hook.webhook_id)
    copies = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/aml.db").search_model_versions(f"name='{model}'")
    assert len(copies) == 1
