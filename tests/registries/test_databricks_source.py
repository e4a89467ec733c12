"""A Databricks workspace registry as the source: a signed registry webhook -> the register action reads the version
through MLflow's Databricks client (profile auth, real HTTPS, DBFS downloads) and copies it into a local registry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from fastapi.testclient import TestClient

from shared.local.mlflow_server import MlflowServer
from shared.service.reactor import Reactor
from tests.contract.databricks_registry_server import DatabricksRegistryContract
from tests.contract.https import HttpsServer, TestCA
from tests.spine.apptest import DATABRICKS_SECRET, make_app
from tests.support import databricks_delivery, train_and_register, unique

PAT = "dapi-contract-0123456789abcdef"

CONFIG = """
sources:
  databricks: {registry: dbx}
registries:
  dbx: {kind: databricks, host: "%(host)s", auth: token, token_setting: DBX_TOKEN}
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%%(tmp)s/aml.db", artifact_location: "%%(tmp)s/aml-art"}
rules:
  - name: promote
    on: model_version.stage_changed
    stage: Production
    do: [{register: local-aml}]
"""


@dataclass
class Workspace:
    contract: DatabricksRegistryContract
    url: str
    backing: MlflowServer  # the real MLflow server behind the workspace's registry


@pytest.fixture(scope="module")
def workspace(mlflow_server: MlflowServer, test_ca: TestCA) -> Iterator[Workspace]:
    contract = DatabricksRegistryContract(
        token=PAT, mlflow_url=mlflow_server.url, artifact_root=mlflow_server.root / "artifacts"
    )
    try:
        with HttpsServer(contract.app, test_ca) as server:
            yield Workspace(contract, server.url, mlflow_server)
    finally:
        contract.close()


@pytest.fixture
def databricks_env(monkeypatch: pytest.MonkeyPatch, trust_test_ca: TestCA) -> pytest.MonkeyPatch:
    """Only the reactor's per-registry profile may authenticate: no ambient Databricks settings."""
    for name in (
        "DATABRICKS_HOST",
        "DATABRICKS_TOKEN",
        "DATABRICKS_CONFIG_PROFILE",
        "DATABRICKS_CONFIG_FILE",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DBX_TOKEN", PAT)
    return monkeypatch


def _promoted(name: str, version: str) -> dict[str, object]:
    return {
        "event": "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
        "webhook_id": unique("hook"),
        "event_timestamp": 1764300000000,
        "model_name": name,
        "version": version,
        "to_stage": "Production",
        "from_stage": "None",
        "text": "",
    }


def _deliver(client: TestClient, reactor: Reactor, payload: dict[str, object]) -> list[str]:
    body, headers = databricks_delivery(DATABRICKS_SECRET, payload)
    response = client.post("/api/hooks/databricks", content=body, headers=headers)
    assert response.status_code == 202, response.text
    ids = list(response.json()["action_ids"])
    reactor.worker().run_until_done(ids, timeout=300)
    return ids


def _local(tmp_path: Path) -> mlflow.MlflowClient:
    uri = f"sqlite:///{tmp_path}/aml.db"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


class TestDatabricksRegistrySource:
    def test_a_promoted_version_is_copied_once_with_lineage(
        self, tmp_path: Path, workspace: Workspace, databricks_env: pytest.MonkeyPatch
    ) -> None:
        name = unique("dbx-churn")
        version, example = train_and_register(workspace.backing.url, name)
        client, reactor = make_app(tmp_path, config=CONFIG % {"host": workspace.url})
        before = len(workspace.contract.requests)
        payload = _promoted(name, version)

        [action_id] = _deliver(client, reactor, payload)

        action = client.get(f"/api/actions/{action_id}").json()
        assert action["status"] == "succeeded", action
        copies = list(_local(tmp_path).search_model_versions(f"name='{name}'"))
        assert len(copies) == 1
        copy = copies[0]
        assert action["outputs"]["model_version"] == str(copy.version)
        assert copy.tags["modelops.source_registry"] == "dbx"
        assert copy.tags["modelops.source_name"] == name and copy.tags["modelops.source_version"] == version
        assert (
            copy.tags["modelops.source_run_id"]
            == mlflow.MlflowClient(workspace.backing.url).get_model_version(name, version).run_id
        )
        assert copy.tags["modelops.event_id"] == action["event_id"]

        # the files came through the workspace: the registry's download URI, then DBFS reads of that path
        seen = [r for r in workspace.contract.requests[before:] if not r["path"].startswith("/.well-known/")]
        assert any(r["path"] == "/api/2.0/mlflow/model-versions/get-download-uri" for r in seen)
        reads = [r["path"] for r in seen if r["path"].startswith("/dbfs/databricks/mlflow-registry/")]
        assert any(p.endswith("/models/model/MLmodel") for p in reads), reads
        assert {r["authorization"] for r in seen} == {f"Bearer {PAT}"}

        # the copy is a working model with the original's predictions
        local = mlflow.artifacts.download_artifacts(
            _local(tmp_path).get_model_version_download_uri(name, copy.version),
            dst_path=str(tmp_path / "copy"),
            tracking_uri=f"sqlite:///{tmp_path}/aml.db",
        )
        original = mlflow.artifacts.download_artifacts(
            mlflow.MlflowClient(workspace.backing.url).get_model_version_download_uri(name, version),
            dst_path=str(tmp_path / "original"),
            tracking_uri=workspace.backing.url,
        )
        pd.testing.assert_series_equal(
            pd.Series(mlflow.pyfunc.load_model(local).predict(example)),
            pd.Series(mlflow.pyfunc.load_model(original).predict(example)),
        )

        # a redelivery of the same webhook is a duplicate: nothing runs again, still one copy
        body, headers = databricks_delivery(DATABRICKS_SECRET, payload)
        again = client.post("/api/hooks/databricks", content=body, headers=headers)
        assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
        reactor.worker().run_until_done(again.json()["action_ids"], timeout=60)
        assert len(list(_local(tmp_path).search_model_versions(f"name='{name}'"))) == 1

    def test_a_wrong_token_fails_the_action_saying_the_workspace_refused_it(
        self, tmp_path: Path, workspace: Workspace, databricks_env: pytest.MonkeyPatch
    ) -> None:
        name = unique("dbx-denied")
        version, _ = train_and_register(workspace.backing.url, name)
        databricks_env.setenv("DBX_TOKEN", "dapi-revoked")
        client, reactor = make_app(tmp_path, config=CONFIG % {"host": workspace.url})
        before = len(workspace.contract.requests)

        [action_id] = _deliver(client, reactor, _promoted(name, version))

        action = client.get(f"/api/actions/{action_id}").json()
        assert action["status"] == "failed", action
        assert f"cannot read source model version {name}/{version}" in action["error"]
        assert "Invalid access token" in action["error"] and "dapi-revoked" not in action["error"]
        assert action["attempts"] == 1  # a refused credential is not retried
        refused = [r for r in workspace.contract.requests[before:] if not r["path"].startswith("/.well-known/")]
        assert refused and {r["authorization"] for r in refused} == {"Bearer dapi-revoked"}
        assert not list(_local(tmp_path).search_model_versions(f"name='{name}'"))
