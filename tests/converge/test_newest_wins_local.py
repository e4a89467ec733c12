"""Newest wins, end to end: a real `mlflow server` moves `champion` and delivers signed webhooks to
`modelops serve` (two workers), which deploys to a `local` target with `mlflow models serve`.

Three moves within a second leave the newest version serving; moving the alias back to a version that
held it before converges back (a new move, not a duplicate); a redelivered alias webhook stays a
duplicate. The versions predict differently (each adds its own bias), so the scoring URL proves which
one serves."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pytest
import requests

from shared.local.mlflow_server import MlflowServer
from tests.support import ReactorProcess, mlflow_delivery, train_and_register, unique, wait_for, write_config

SECRET = "converge-webhook-secret"
PIP = ["scikit-learn", "pandas", "numpy"]  # given: MLflow's inference of them costs seconds per model

CONFIG = """
sources:
  mlflow: {tracking_uri: "%(uri)s"}
deployments:
  local: {kind: local, keep_previous: 3, startup_timeout_s: 240}
rules:
  - name: serve-the-champion
    on: model_version.alias_set
    alias: champion
    models: ["%(model)s"]
    do: [{deploy: local}]
reconcile: {every: PT1H}
worker: {threads: 2, lease_seconds: 20, backoff_base_seconds: 0.2, poll_interval_seconds: 0.2}
"""


@pytest.fixture
def stack(tmp_path: Path, mlflow_server: MlflowServer) -> Iterator[tuple[ReactorProcess, str]]:
    model = unique("converge")
    config = write_config(tmp_path / "modelops.yaml", CONFIG % {"uri": mlflow_server.url, "model": model})
    with ReactorProcess(tmp_path / "state", config, env={"MLFLOW_WEBHOOK_SECRET": SECRET}) as reactor:
        try:
            yield reactor, model
        finally:
            from shared.cli.main import main

            main(["undeploy", "local", "--config", str(config), "--state-dir", str(tmp_path / "state")])


def _status(reactor: ReactorProcess, model: str) -> dict[str, Any]:
    response = requests.get(f"{reactor.url}/api/status", timeout=60)
    response.raise_for_status()
    [line] = [t for t in response.json()["targets"] if t["model"] == model]
    return dict(line)


def _converged(reactor: ReactorProcess, model: str, version: str) -> dict[str, Any] | None:
    line = _status(reactor, model)
    return line if line["sync"] == "in-sync" and line["actual"]["version"] == version else None


def _prediction(reactor: ReactorProcess, model: str) -> float:
    rows = requests.get(f"{reactor.url}/api/deployments", timeout=30).json()["deployments"]
    [serving] = [r for r in rows if r.get("model_name") == model and r.get("status") == "serving"]
    answer = requests.post(f"{serving['url']}/invocations", json={"inputs": [{"a": 0, "b": 0, "c": 0}]}, timeout=60)
    answer.raise_for_status()
    return float(answer.json()["predictions"][0])


def test_the_newest_alias_holder_serves_whatever_order_the_deploys_finish(
    stack: tuple[ReactorProcess, str], mlflow_server: MlflowServer
) -> None:
    reactor, model = stack
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
    versions = [train_and_register(mlflow_server.url, model, bias=b, pip_requirements=PIP)[0] for b in (0, 10, 20, 30)]
    v1, v2, v3, v4 = versions
    hook = client.create_webhook(
        name=unique("converge"),
        url=f"{reactor.url}/api/hooks/mlflow",
        events=["model_version_alias.created"],
        secret=SECRET,
    )
    try:
        client.set_registered_model_alias(model, "champion", v1)
        wait_for(lambda: _converged(reactor, model, v1), timeout=300, what=f"v{v1} to serve")
        assert _prediction(reactor, model) == pytest.approx(0.0, abs=1e-6)

        started = datetime.now(UTC)
        for version in (v2, v3, v4):  # three moves within a second: v2's and v3's deploys may start, v4 wins
            client.set_registered_model_alias(model, "champion", version)
        assert (datetime.now(UTC) - started).total_seconds() < 1.0
        line = wait_for(lambda: _converged(reactor, model, v4), timeout=400, what=f"v{v4} to serve")
        assert line["desired"] == {"version": v4, "rule": "serve-the-champion", "alias": "champion"}
        assert _prediction(reactor, model) == pytest.approx(30.0, abs=1e-6)
        deploys = requests.get(f"{reactor.url}/api/actions", params={"model": model, "kind": "deploy"}, timeout=30)
        by_version = {a["model_version"]: a for a in deploys.json()["actions"]}
        assert by_version[v4]["status"] == "succeeded"
        for overtaken in (v2, v3):  # superseded (switched nothing), or done before the next move
            assert by_version[overtaken]["status"] in ("superseded", "succeeded"), by_version[overtaken]
            if by_version[overtaken]["status"] == "superseded":
                assert by_version[overtaken]["error"] is None

        # a move back to a version that held the alias before is a new move: v1 serves again
        client.set_registered_model_alias(model, "champion", v1)
        wait_for(lambda: _converged(reactor, model, v1), timeout=400, what=f"v{v1} to serve again")
        assert _prediction(reactor, model) == pytest.approx(0.0, abs=1e-6)
    finally:
        client.delete_webhook(hook.webhook_id)

    # the same move delivered twice (a sender's retry: same delivery, same timestamp): the second is a
    # duplicate. (The first is a move of its own, later than any recorded: v1 already serves, so its
    # deploy reuses the running server.)
    envelope = {
        "entity": "model_version_alias",
        "action": "created",
        "timestamp": datetime.now(UTC).isoformat(),
        "data": {"name": model, "alias": "champion", "version": v1},
    }
    body, headers = mlflow_delivery(SECRET, envelope, delivery_id="redelivered-move")
    first = requests.post(f"{reactor.url}/api/hooks/mlflow", data=body, headers=headers, timeout=30)
    again = requests.post(f"{reactor.url}/api/hooks/mlflow", data=body, headers=headers, timeout=30)
    assert first.status_code == 202 and again.status_code == 200
    assert json.loads(again.text)["duplicate"] is True
