"""A worker killed (SIGKILL) mid-action: the restarted worker finishes it, exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow

from shared.ledger.sqlite import SqliteLedger
from shared.local.mlflow_server import MlflowServer
from tests.spine.conftest import spine_config
from tests.support import ROOT, ReactorProcess, train_and_register, unique, wait_for


def _with_big_artifact(tracking_uri: str, name: str, version: str, tmp: Path, size_mb: int) -> None:
    """Add a large file next to the model so copying it takes a while."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    run_id = client.get_model_version(name, version).run_id
    blob = tmp / "weights.bin"
    with blob.open("wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    client.log_artifact(run_id, str(blob), artifact_path="model")
    blob.unlink()


class TestWorkerCrash:
    def test_killed_mid_copy_then_restarted_finishes_once(self, tmp_path: Path, mlflow_server: MlflowServer) -> None:
        name = unique("spine-crash")
        version, _ = train_and_register(mlflow_server.url, name)
        # the version's source is the logged model; register a second version from the run dir with the blob
        client = mlflow.MlflowClient(tracking_uri=mlflow_server.url)
        run_id = client.get_model_version(name, version).run_id
        _with_big_artifact(mlflow_server.url, name, version, tmp_path, size_mb=300)
        big = client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id)
        config = spine_config(tmp_path, mlflow_server.url, lease="3")
        state = tmp_path / "state"
        env = {**os.environ, "MODELOPS_STATE_DIR": str(state), "MODELOPS_CONFIG": str(config)}
        queued = subprocess.run(
            [
                sys.executable,
                "-m",
                "shared.cli.main",
                "register",
                name,
                str(big.version),
                "--target",
                "local-aml",
                "--no-wait",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        action_id = queued.stdout.split(":")[0]
        ledger = SqliteLedger(state / "ledger.db")

        first = ReactorProcess(state, config, command="worker").start()
        try:
            wait_for(
                lambda: any("downloading" in line["message"] for line in ledger.action_log(action_id)),
                interval=0.05,
                what="the copy to start",
            )
            first.kill()
        finally:
            first.stop()
        interrupted = ledger.get_action(action_id)
        assert interrupted is not None
        assert interrupted.status == "running" and interrupted.attempts == 1

        with ReactorProcess(state, config, command="worker"):
            done = wait_for(
                lambda: (a := ledger.get_action(action_id)) is not None and a.status in ("succeeded", "failed") and a,
                what="the restarted worker to finish",
            )
        assert done.status == "succeeded", done.error
        assert done.attempts == 2
        assert any("expired; reclaimed" in line["message"] for line in ledger.action_log(action_id))

        target_uri = f"sqlite:///{tmp_path}/aml-registry.db"
        target = mlflow.MlflowClient(tracking_uri=target_uri, registry_uri=target_uri)
        copies = target.search_model_versions(f"name='{name}'")
        assert [c.version for c in copies] == [int(done.outputs.to_dict()["model_version"])]
        experiment = target.get_experiment_by_name("modelops-reactor-copies")
        assert experiment is not None
        runs = target.search_runs(
            [experiment.experiment_id], filter_string=f"tags.`modelops.action_key` = '{done.key}'"
        )
        assert len(runs) == 1  # the interrupted upload was resumed, not started over in a second run
