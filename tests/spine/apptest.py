"""The HTTP app in-process (real FastAPI, real SQLite ledger), for route-level tests."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fastapi.testclient import TestClient

from shared.bootstrap import Container
from shared.service.dispatch import LocalDispatcher
from shared.service.reactor import Reactor
from shared.settings import Settings
from tests.support import write_config

MLFLOW_SECRET = "mlflow-secret"
DATABRICKS_SECRET = "databricks-secret"

CONFIG = """
sources:
  mlflow: {tracking_uri: "sqlite:///%(tmp)s/source.db"}
  databricks: {tracking_uri: "sqlite:///%(tmp)s/source.db"}
  azureml: {tracking_uri: "sqlite:///%(tmp)s/source.db"}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
deployments:
  local: {kind: local}
rules:
  - name: copy
    on: [model_version.created, model.registered]
    do: [{register: local-aml}]
  - name: promote
    on: model_version.stage_changed
    stage: Production
    do: [{register: local-aml}, {deploy: local}]
  - name: champion
    on: model_version.alias_set
    alias: champion
    models: ["churn-*"]
    do: [{register: local-aml}, {deploy: local}]
"""


def make_app(tmp: Path, *, config: str = CONFIG, **settings_overrides: object) -> tuple[TestClient, Reactor]:
    path = write_config(tmp / "modelops.yaml", config % {"tmp": tmp})
    settings = Settings.from_env(
        {
            "MODELOPS_CONFIG": str(path),
            "MODELOPS_STATE_DIR": str(tmp / "state"),
            "MLFLOW_WEBHOOK_SECRET": MLFLOW_SECRET,
            "DATABRICKS_WEBHOOK_SECRET": DATABRICKS_SECRET,
        }
    )
    settings = replace(settings, **settings_overrides)  # type: ignore[arg-type]
    container = Container(settings, dispatcher=LocalDispatcher())
    return TestClient(container.http_app()), container.reactor()
