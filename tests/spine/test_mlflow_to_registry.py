"""The spine, end to end: a real MLflow server's signed webhook -> one registered copy."""

from __future__ import annotations

import concurrent.futures
import uuid
from pathlib import Path

import mlflow
import pandas as pd
import requests

from shared.local.mlflow_server import MlflowServer
from tests.spine.conftest import SECRET
from tests.support import ReactorProcess, actions_for, mlflow_delivery, train_and_register, unique, wait_for


def _target(tmp_path: Path) -> mlflow.MlflowClient:
    uri = f"sqlite:///{tmp_path}/aml-registry.db"
    return mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)


def _copies(tmp_path: Path, name: str) -> list:
    return list(_target(tmp_path).search_model_versions(f"name='{name}'"))


def _succeeded(url: str, name: str, version: str) -> list[dict]:
    done = [a for a in actions_for(url, name) if a["model_version"] == version and a["status"] == "succeeded"]
    return done


class TestRealWebhookToRegisteredCopy:
    def test_a_registered_version_is_copied_once_with_lineage(
        self, tmp_path: Path, mlflow_server: MlflowServer, reactor_server: ReactorProcess
    ) -> None:
        source = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
        hook = source.create_webhook(
            name=unique("reactor"),
            url=f"{reactor_server.url}/api/hooks/mlflow",
            events=["model_version.created"],
            secret=SECRET,
        )
        try:
            name = unique("spine-churn")
            version, example = train_and_register(mlflow_server.url, name)
            wait_for(lambda: _succeeded(reactor_server.url, name, version), what="register action to succeed")
        finally:
            source.delete_webhook(hook.webhook_id)

        copies = _copies(tmp_path, name)
        assert len(copies) == 1
        copy = copies[0]
        assert copy.tags["modelops.source_name"] == name
        assert copy.tags["modelops.source_version"] == version
        assert copy.tags["modelops.source_registry"] == mlflow_server.url
        assert copy.tags["modelops.source_run_id"] == source.get_model_version(name, version).run_id
        assert copy.tags["modelops.event_id"].startswith("evt_")

        # the copy is a working model: its own artifacts, same predictions, signature and example
        copied_dir = _download(
            _target(tmp_path), f"sqlite:///{tmp_path}/aml-registry.db", name, copy.version, tmp_path / "c"
        )
        original_dir = _download(source, mlflow_server.url, name, version, tmp_path / "o")
        assert str(tmp_path / "aml-artifacts") in _target(tmp_path).get_model_version_download_uri(name, copy.version)
        assert (copied_dir / "input_example.json").exists()
        copied = mlflow.pyfunc.load_model(str(copied_dir))
        assert copied.metadata.get_input_schema() is not None
        original = mlflow.pyfunc.load_model(str(original_dir))
        pd.testing.assert_series_equal(
            pd.Series(copied.predict(example)), pd.Series(original.predict(example)), check_names=False
        )

        # the audit trail: the event and its action, visible over the ops API
        action = _succeeded(reactor_server.url, name, version)[0]
        assert action["outputs"]["model_version"] == str(copy.version)
        event = requests.get(f"{reactor_server.url}/api/events/{action['event_id']}", timeout=10).json()
        assert event["source"] == "mlflow" and event["kind"] == "model_version.created"
        assert [a["id"] for a in event["actions"]] == [action["id"]]

    def test_redelivery_and_concurrent_duplicates_leave_one_copy(
        self, tmp_path: Path, mlflow_server: MlflowServer, reactor_server: ReactorProcess
    ) -> None:
        name = unique("spine-dup")
        version, _ = train_and_register(mlflow_server.url, name)
        envelope = {
            "entity": "model_version",
            "action": "created",
            "timestamp": "2026-11-28T04:00:00+00:00",
            "data": {"name": name, "version": version, "source": "x", "run_id": None, "tags": {}, "description": None},
        }
        url = f"{reactor_server.url}/api/hooks/mlflow"
        body, headers = mlflow_delivery(SECRET, envelope, delivery_id=str(uuid.uuid4()))

        first = requests.post(url, data=body, headers=headers, timeout=10)
        assert first.status_code == 202, first.text
        again = requests.post(url, data=body, headers=headers, timeout=10)  # the same delivery, resent
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert again.json()["event_id"] == first.json()["event_id"]

        # the same change delivered concurrently under new delivery ids
        def send(_: int) -> requests.Response:
            b, h = mlflow_delivery(SECRET, envelope)
            return requests.post(url, data=b, headers=h, timeout=30)

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(send, range(16)))
        assert {r.status_code for r in answers} == {200}
        assert {r.json()["event_id"] for r in answers} == {first.json()["event_id"]}

        wait_for(lambda: _succeeded(reactor_server.url, name, version), what="register to succeed")
        assert len(_copies(tmp_path, name)) == 1
        assert len(actions_for(reactor_server.url, name)) == 1
        event = requests.get(f"{reactor_server.url}/api/events/{first.json()['event_id']}", timeout=10).json()
        assert event["deliveries"] == 18


def _download(client: mlflow.MlflowClient, tracking_uri: str, name: str, version: str, dst: Path) -> Path:
    dst.mkdir(parents=True)
    uri = client.get_model_version_download_uri(name, version)
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst), tracking_uri=tracking_uri))
