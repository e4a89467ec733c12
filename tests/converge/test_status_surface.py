"""`GET /api/status` and `modelops status` as an operator meets them: the read credential, a source that
does not exist (one error shape, exit 2), and the shape of a line over a real MLflow registry."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pytest

from shared.cli.main import main
from shared.settings import OpsAuthSettings
from tests.spine.apptest import make_app

TOKEN = "status-ops-token"
CONFIG = """
sources:
  mlflow: {tracking_uri: "sqlite:///%(tmp)s/source.db"}
deployments:
  local: {kind: local}
rules:
  - name: serve-the-champion
    on: model_version.alias_set
    alias: champion
    models: ["churn"]
    do: [{deploy: local}]
"""


def test_status_needs_the_read_credential_and_names_an_unknown_source(tmp_path: Path) -> None:
    client, _ = make_app(tmp_path, config=CONFIG, ops_auth=OpsAuthSettings(token=TOKEN))
    assert client.get("/api/status").status_code == 401
    missing = client.get("/api/status", params={"source": "nope"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert missing.status_code == 404
    assert missing.json()["error"].startswith("no source named 'nope'") and missing.json()["problems"]


def test_a_line_shows_desired_actual_and_why_they_differ(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client, reactor = make_app(tmp_path, config=CONFIG)
    registry = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/source.db")
    registry.create_registered_model("churn")
    registry.create_model_version("churn", "s3://bucket/churn")
    registry.set_registered_model_alias("churn", "champion", "1")

    [line] = client.get("/api/status").json()["targets"]
    assert line == {
        "target": "local",
        "source": "mlflow",
        "model": "churn",
        "desired": {"version": "1", "rule": "serve-the-champion", "alias": "champion"},
        "actual": {"version": None, "state": "none"},
        "sync": "out-of-sync",
        "reason": "alias champion names v1 but the target serves nothing",
    }
    options = ["--config", str(tmp_path / "modelops.yaml"), "--state-dir", str(tmp_path / "state")]
    assert main(["status", "-o", "json", *options]) == 1  # not in sync: a pipeline's check fails
    assert json.loads(capsys.readouterr().out)["targets"][0]["sync"] == "out-of-sync"
    assert main(["status", "--source", "nope", *options]) == 2
    assert "no source named 'nope'" in capsys.readouterr().err
