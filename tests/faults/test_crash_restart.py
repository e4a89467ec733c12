"""The worker SIGKILLed at seeded random points during register and during a local deploy, then
restarted: each action is done exactly once (one copy in the target registry, one scoring server)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import mlflow
import psutil
import pytest
import requests

from shared.adapters.local_deployments import SERVING, LocalDeploymentStore, is_alive, stop_deployment
from shared.bootstrap import Container
from shared.domain.actions import TERMINAL, Action
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent
from shared.ledger.sqlite import SqliteLedger
from shared.local.mlflow_server import MlflowServer
from shared.service.dispatch import LocalDispatcher
from shared.settings import Settings
from tests.support import ReactorProcess, train_and_register, unique, wait_for, write_config

pytestmark = pytest.mark.slow
BLOB_MB = 80  # so the copy takes long enough to be interrupted mid-transfer


def _big_version(url: str, name: str, tmp: Path) -> str:
    """A servable version whose artifacts are a small sklearn model plus a large opaque file."""
    version, _ = train_and_register(url, name)
    client = mlflow.MlflowClient(tracking_uri=url)
    run_id = client.get_model_version(name, version).run_id
    assert run_id is not None
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            client.get_model_version_download_uri(name, version), dst_path=str(tmp / "upload"), tracking_uri=url
        )
    )
    assert (model_dir / "MLmodel").exists()
    with (model_dir / "weights.bin").open("wb") as f:
        for _ in range(BLOB_MB):
            f.write(os.urandom(1 << 20))
    client.log_artifacts(run_id, str(model_dir), artifact_path="model")
    return str(client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id).version)


def _serving_groups(name: str) -> set[int]:
    """Sessions of live processes serving any version of ``name`` (one per scoring server)."""
    groups = set()
    for proc in psutil.process_iter(["cmdline", "status"]):
        with contextlib.suppress(psutil.Error, ProcessLookupError):
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(
                f"models:/{name}/" in part for part in proc.info["cmdline"] or []
            ):
                groups.add(os.getsid(proc.pid))
    return groups


@pytest.fixture
def model_name() -> Iterator[str]:
    name = unique("crash")
    yield name
    for sid in _serving_groups(name):  # never leave a scoring server behind, whatever failed
        with contextlib.suppress(ProcessLookupError):
            os.killpg(sid, signal.SIGKILL)


def _log_has(ledger: SqliteLedger, action_id: str, text: str) -> bool:
    return any(text in line["message"] for line in ledger.action_log(action_id))


def _kill_after(worker: ReactorProcess, ready: object, delay: float, what: str) -> None:
    wait_for(ready, interval=0.05, timeout=240, what=what)  # type: ignore[arg-type]
    time.sleep(delay)
    worker.kill()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_killed_during_register_and_deploy_each_done_once(
    tmp_path: Path, mlflow_server: MlflowServer, model_name: str, seed: int
) -> None:
    rng = random.Random(seed)
    version = _big_version(mlflow_server.url, model_name, tmp_path)
    state = tmp_path / "state"
    config = write_config(
        tmp_path / "modelops.yaml",
        f"""
sources:
  mlflow: {{tracking_uri: "{mlflow_server.url}"}}
registries:
  local-aml: {{kind: mlflow, tracking_uri: "sqlite:///{tmp_path}/aml.db", artifact_location: "{tmp_path}/aml-art"}}
deployments:
  local: {{kind: local, startup_timeout_s: 180}}
rules:
  - name: copy-and-serve
    on: model_version.created
    models: ["crash-*"]
    do: [{{register: local-aml}}, {{deploy: local}}]
worker: {{lease_seconds: 3, backoff_base_seconds: 0.2, poll_interval_seconds: 0.2}}
""",
    )
    settings = Settings.from_env({"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(state)})
    reactor = Container(settings, dispatcher=LocalDispatcher()).reactor()
    accepted = reactor.accept(
        ModelEvent(
            source="mlflow",
            kind=MODEL_VERSION_CREATED,
            source_type="model_version.created",
            model_name=model_name,
            model_version=version,
            delivery_id=unique("d"),
        )
    )
    register_id, deploy_id = accepted.action_ids
    ledger = SqliteLedger(state / "ledger.db")

    def action(action_id: str) -> Action:
        found = ledger.get_action(action_id)
        assert found is not None
        return found

    # 1: somewhere in the copy (the download or the upload), at a seeded random point
    first = ReactorProcess(state, config, command="worker").start()
    try:
        _kill_after(first, lambda: _log_has(ledger, register_id, "downloading"), rng.uniform(0, 2.5), "the copy")
    finally:
        first.stop()
    # 2: somewhere in the deploy (scoring server starting, /ping, smoke test, promotion)
    second = ReactorProcess(state, config, command="worker").start()
    try:
        _kill_after(
            second,
            lambda: _log_has(ledger, deploy_id, "starting mlflow models serve") or action(deploy_id).status in TERMINAL,
            rng.uniform(0, 12),
            "the deploy to start",
        )
    finally:
        second.stop()
    # 3: a worker that is left to finish
    with ReactorProcess(state, config, command="worker"):
        wait_for(lambda: action(deploy_id).status in TERMINAL, timeout=420, what="the restarted worker to finish")

    registered, deployed = action(register_id), action(deploy_id)
    assert registered.status == "succeeded", registered.error
    assert deployed.status == "succeeded", deployed.error
    # the kills interrupted work in flight: an interrupted action is claimed again (one more attempt)
    assert registered.attempts + deployed.attempts >= 3, (registered.attempts, deployed.attempts)

    # one copy in the target registry, uploaded in one run
    target_uri = f"sqlite:///{tmp_path}/aml.db"
    target = mlflow.MlflowClient(tracking_uri=target_uri, registry_uri=target_uri)
    assert [str(c.version) for c in target.search_model_versions(f"name='{model_name}'")] == [
        registered.outputs.to_dict()["model_version"]
    ]
    experiment = target.get_experiment_by_name("modelops-reactor-copies")
    assert experiment is not None
    key_filter = f"tags.`modelops.action_key` = '{registered.key}'"
    assert len(target.search_runs([experiment.experiment_id], filter_string=key_filter)) == 1

    # one scoring server: recorded, alive, serving, answering; no orphan beside it
    store = LocalDeploymentStore(state)
    records = [r for r in store.list() if r.model_name == model_name]
    try:
        assert len(records) == 1, records
        [record] = records
        assert record.status == SERVING and is_alive(record)
        assert record.url == deployed.outputs.to_dict()["scoring_url"].removesuffix("/invocations")
        assert requests.get(f"{record.url}/ping", timeout=10).status_code == 200
        assert _serving_groups(model_name) == {os.getsid(record.pid)}
    finally:
        for record in records:
            stop_deployment(store, record)
