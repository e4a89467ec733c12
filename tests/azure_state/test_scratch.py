"""Temp space in Azure mode: a host process SIGKILLed mid-copy leaves its partial download under
the state dir's `tmp/`; the retry of that action (the message coming back to another invocation)
removes it, and nothing is left under `tmp/` once the action is done."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shared.adapters.azure_storage import StorageAccount
from shared.bootstrap import Container
from shared.local.mlflow_server import MlflowServer
from shared.settings import Settings
from tests.azure_state.host_queue import deliver
from tests.azure_state.test_full_path import grid_event, run_action
from tests.faults.test_crash_restart import _big_version
from tests.support import ROOT, unique, wait_for, write_config

pytestmark = pytest.mark.slow  # a real MLflow server and an 80 MB artifact
LEASE_S = 3
VISIBILITY_S = 5  # how long the killed host's message stays invisible before it comes back

CONFIG = """
sources:
  azureml: {tracking_uri: "%(source)s"}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
rules:
  - {name: copy, on: [model.registered], do: [{register: local-aml}]}
worker: {lease_seconds: %(lease)s}
"""

# one host process: the queue trigger's delivery loop over this container (tests/azure_state/host_queue.py)
HOST = f"""
from shared.adapters.azure_storage import StorageAccount
from shared.bootstrap import Container
from tests.azure_state.host_queue import deliver
from tests.support import indexed_functions

container = Container.from_env()
function = indexed_functions(container)["run_action"].get_user_function()
account = StorageAccount.from_settings(container.settings.storage)
deliver(account, container.settings.actions_queue, function, max_dequeue_count=5, visibility_timeout={VISIBILITY_S})
"""


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_copy_killed_mid_download_leaves_no_temp_files_after_the_retry(
    tmp_path: Path, azure_env: dict[str, str], account: StorageAccount, mlflow_server: MlflowServer
) -> None:
    name = unique("big")
    version = _big_version(mlflow_server.url, name, tmp_path)
    config = write_config(
        tmp_path / "scratch.yaml", CONFIG % {"tmp": tmp_path, "source": mlflow_server.url, "lease": LEASE_S}
    )
    env = {**azure_env, "MODELOPS_CONFIG": str(config)}
    container = Container(Settings.from_env(env))
    response = TestClient(container.http_app()).post("/api/hooks/eventgrid", json=grid_event(name, version))
    [action_id] = response.json()["action_ids"]
    scratch = Path(env["MODELOPS_STATE_DIR"]) / "tmp"

    host = subprocess.Popen(
        [sys.executable, "-c", HOST], env={**os.environ, **env, "PYTHONPATH": str(ROOT)}, cwd=str(ROOT)
    )
    try:
        wait_for(lambda: _files(scratch / action_id), interval=0.02, timeout=120, what="the copy's download")
    finally:
        host.kill()
        host.wait()
    left = _files(scratch / action_id)
    assert left, "the killed attempt left its partial download"

    # the message comes back to another invocation once its visibility ends; the lease has expired by then
    # (a delivery that still finds the dead host's lease re-sends itself for when the lease expires)
    function, ledger = run_action(container), container.reactor().ledger
    for _ in range(3):
        results = deliver(account, azure_env["MODELOPS_ACTIONS_QUEUE"], function, max_dequeue_count=5)
        assert results == ["done"]
        action = ledger.get_action(action_id)
        if action is not None and action.status != "running":
            break
    assert action is not None and action.status == "succeeded" and action.attempts == 2, action
    assert _files(scratch) == [] and list(scratch.iterdir()) == []
