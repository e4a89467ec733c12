from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.local.mlflow_server import MlflowServer
from tests.support import ReactorProcess, write_config

SECRET = "spine-webhook-secret"


def spine_config(tmp: Path, source_uri: str, **extra: str) -> Path:
    return write_config(
        tmp / "modelops.yaml",
        f"""
sources:
  mlflow: {{tracking_uri: "{source_uri}"}}
registries:
  local-aml:
    kind: mlflow
    tracking_uri: "sqlite:///{tmp}/aml-registry.db"
    artifact_location: "{tmp}/aml-artifacts"
rules:
  - name: copy-new-versions
    on: model_version.created
    models: ["spine-*"]
    do: [{{register: local-aml}}]
worker:
  lease_seconds: {extra.get("lease", "4")}
  backoff_base_seconds: 0.2
  poll_interval_seconds: 0.2
""",
    )


@pytest.fixture
def reactor_server(tmp_path: Path, mlflow_server: MlflowServer) -> Iterator[ReactorProcess]:
    config = spine_config(tmp_path, mlflow_server.url)
    with ReactorProcess(tmp_path / "state", config, env={"MLFLOW_WEBHOOK_SECRET": SECRET}) as server:
        yield server
