"""A gated promotion on the real stack: a real `mlflow server` (the source, which sends its own
webhooks), `modelops serve`, real sklearn classifiers and a real holdout file."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import requests

from shared.local.mlflow_server import MlflowServer
from tests.batch.conftest import behaving, environ_file, registered_model  # noqa: F401 - test_validation_process's
from tests.support import ReactorProcess, unique, wait_for, write_config

SECRET = "gates-webhook-secret"
OPS, APPROVER = "gates-ops-token", "gates-approver-token"
FEATURES = ["f0", "f1", "f2", "f3"]

CONFIG = """
sources:
  mlflow: {{tracking_uri: "{mlflow}"}}
deployments:
  local: {{kind: local}}
validations:
  holdout:
    data: "{holdout}"
    targets: label
    model_type: classifier
    baseline: champion
    thresholds:
      accuracy_score: {{threshold: 0.7, min_absolute_change: 0.01, greater_is_better: true}}
approvals:
  owners: {{expires: PT1H, tag: approval.owners, recheck: PT1H}}
  quick: {{expires: PT3S}}
rules:
  - name: gated-promotion
    on: model_version.alias_set
    alias: challenger
    do: [{{validate: holdout}}, {{approve: owners}}, {{deploy: local}}]
  - name: tag-approval
    on: model_version.alias_set
    alias: candidate
    do: [{{approve: owners}}]
  - name: short-approval
    on: model_version.alias_set
    alias: quick
    do: [{{approve: quick}}]
worker:
  backoff_base_seconds: 0.2
  poll_interval_seconds: 0.2
"""


@dataclass
class Data:
    train_x: pd.DataFrame
    train_y: pd.Series
    holdout: pd.DataFrame
    path: Path


@dataclass
class Gates:
    url: str
    mlflow: str
    data: Data
    reactor: ReactorProcess
    config: Path

    def get(self, path: str, **params: Any) -> Any:
        response = requests.get(self.url + path, headers=_bearer(OPS), params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def decide(self, action_id: str, body: Any, token: str | None = APPROVER) -> requests.Response:
        headers = _bearer(token) if token else {}
        return requests.post(f"{self.url}/api/actions/{action_id}/approve", json=body, headers=headers, timeout=30)

    def actions(self, model: str, version: str) -> dict[str, dict[str, Any]]:
        """The version's actions by kind."""
        listed = self.get("/api/actions", model=model, version=version)["actions"]
        return {a["kind"]: a for a in listed}

    def action(self, action_id: str) -> dict[str, Any]:
        return dict(self.get(f"/api/actions/{action_id}"))

    def until(self, model: str, version: str, kind: str, *statuses: str, timeout: float = 300) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            found = self.actions(model, version).get(kind)
            return found if found and found["status"] in statuses else None

        return dict(wait_for(reached, timeout=timeout, interval=0.5, what=f"{kind} of {model} v{version} {statuses}"))

    def register(self, name: str, model: Any) -> str:
        """Log the fitted classifier to the source server and register it; its version."""
        from mlflow.models import infer_signature

        client = mlflow.MlflowClient(tracking_uri=self.mlflow)
        experiment = client.get_experiment_by_name("gates") or client.get_experiment(client.create_experiment("gates"))
        mlflow.set_tracking_uri(self.mlflow)
        try:
            with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
                x = self.data.train_x
                info = mlflow.sklearn.log_model(
                    model,
                    name="model",
                    signature=infer_signature(x, model.predict(x)),
                    input_example=x.head(3),
                    pip_requirements=["scikit-learn"],
                )
        finally:
            mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        try:
            client.create_registered_model(name)
        except mlflow.exceptions.MlflowException:
            pass
        return str(client.create_model_version(name, info.model_uri, run_id=run.info.run_id).version)

    def alias(self, name: str, version: str, alias: str) -> None:
        """Move the alias in the source; the server's own webhook tells the reactor."""
        mlflow.MlflowClient(tracking_uri=self.mlflow).set_registered_model_alias(name, alias, version)


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _data(tmp: Path) -> Data:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=800, n_features=4, n_informative=3, n_redundant=0, random_state=3)
    frame = pd.DataFrame(x, columns=FEATURES)
    frame["label"] = y.astype(np.int64)
    holdout = frame.iloc[400:].reset_index(drop=True)
    path = tmp / "validation" / "holdout.parquet"
    path.parent.mkdir(parents=True)
    holdout.to_parquet(path)
    return Data(frame.iloc[:400][FEATURES], frame.iloc[:400]["label"], holdout, path)


@pytest.fixture(scope="module")
def gates(tmp_path_factory: pytest.TempPathFactory, mlflow_server: MlflowServer) -> Iterator[Gates]:
    tmp = tmp_path_factory.mktemp("gates")
    data = _data(tmp)
    config = write_config(tmp / "modelops.yaml", CONFIG.format(mlflow=mlflow_server.url, holdout=data.path))
    env = {"MLFLOW_WEBHOOK_SECRET": SECRET, "MODELOPS_OPS_TOKEN": OPS, "MODELOPS_APPROVER_TOKEN": APPROVER}
    reactor = ReactorProcess(tmp / "state", config, env=env).start()
    client = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
    hook = client.create_webhook(
        name=unique("gates"),
        url=f"{reactor.url}/api/hooks/mlflow",
        events=["model_version_alias.created", "model_version_tag.set"],
        secret=SECRET,
    )
    try:
        yield Gates(reactor.url, mlflow_server.url, data, reactor, config)
    finally:
        client.delete_webhook(hook.webhook_id)
        reactor.stop()
        from shared.adapters.local_deployments import LocalDeploymentStore, stop_deployment

        store = LocalDeploymentStore(tmp / "state")
        for deployment in store.list():
            stop_deployment(store, deployment)
