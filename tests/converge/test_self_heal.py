"""Drift: the champion's local server is killed (-9). `modelops status` says `degraded` with the reason;
reconcile reports it and, with `reconcile.self_heal: true`, deploys the desired version again until
the line is `in-sync`. An operator's `modelops undeploy` after that is out of sync, not drift: said
so, and not healed. Real `mlflow server` (the alias), real `mlflow models serve` (the target)."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import mlflow
import pytest

from shared.adapters.local_deployments import SERVING, LocalDeploymentStore
from shared.bootstrap import Container
from shared.cli.main import main
from shared.deployments import undeploy_local
from shared.local.mlflow_server import MlflowServer
from shared.service.dispatch import LocalDispatcher
from shared.service.reconcile import reconcile_sources
from shared.settings import Settings
from tests.support import train_and_register, unique, write_config

PIP = ["scikit-learn", "pandas", "numpy"]
CONFIG = """
sources:
  mlflow: {tracking_uri: "%(uri)s"}
deployments:
  local: {kind: local, startup_timeout_s: 240}
rules:
  - name: serve-the-champion
    on: model_version.alias_set
    alias: champion
    models: ["%(model)s"]
    do: [{deploy: local}]
reconcile: {self_heal: %(heal)s}
worker: {poll_interval_seconds: 0.1}
"""


def _container(tmp: Path, uri: str, model: str, *, heal: bool) -> Container:
    config = write_config(tmp / f"heal-{heal}.yaml", CONFIG % {"uri": uri, "model": model, "heal": str(heal).lower()})
    env = {"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp / "state")}
    return Container(Settings.from_env(env), dispatcher=LocalDispatcher())


def _status(container: Container, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    capsys.readouterr()
    code = main(["status", "-o", "json", "--config", container.settings.config_path or "", "--state-dir",
                 str(container.settings.state_dir)])  # fmt: skip
    [line] = json.loads(capsys.readouterr().out)["targets"]
    return code, line


def _run_all(container: Container) -> None:
    reactor = container.reactor()
    pending = [a.id for a in reactor.ledger.list_actions() if a.status in ("queued", "running", "waiting")]
    for action in reactor.worker().run_until_done(pending, timeout=300):
        assert action.status in ("succeeded", "superseded"), action.error


def test_a_killed_server_is_degraded_and_self_heal_serves_it_again(
    tmp_path: Path, mlflow_server: MlflowServer, capsys: pytest.CaptureFixture[str]
) -> None:
    model = unique("heal")
    version, _ = train_and_register(mlflow_server.url, model, pip_requirements=PIP)
    mlflow.MlflowClient(tracking_uri=mlflow_server.url).set_registered_model_alias(model, "champion", version)
    watching = _container(tmp_path, mlflow_server.url, model, heal=False)
    try:
        summary = reconcile_sources(watching.reactor())  # no webhook: reconcile finds the alias
        assert summary["mlflow"]["aliases"] == 1, summary
        _run_all(watching)
        code, line = _status(watching, capsys)
        assert (code, line["sync"], line["desired"]["version"], line["actual"]["version"]) == (
            0,
            "in-sync",
            version,
            version,
        )

        [server] = [r for r in LocalDeploymentStore(tmp_path / "state").list() if r.status == SERVING]
        os.killpg(server.pid, signal.SIGKILL)
        code, line = _status(watching, capsys)
        assert code == 1 and line["sync"] == "degraded" and line["actual"]["state"] == "down"
        # killed: gone, or (not yet reaped by its parent) no longer answering
        assert any(why in line["actual"]["detail"] for why in ("process is gone", "does not answer /ping"))
        drift = reconcile_sources(watching.reactor())["lines"]  # reported, not undone: self_heal is off
        assert [(d["sync"], d["healed_by"]) for d in drift] == [("degraded", None)]

        healing = _container(tmp_path, mlflow_server.url, model, heal=True)
        [healed] = reconcile_sources(healing.reactor())["lines"]
        assert healed["healed_by"]
        _run_all(healing)
        code, line = _status(healing, capsys)
        assert (code, line["sync"], line["actual"]["version"]) == (0, "in-sync", version)

        # an operator's stop is not drift: out of sync, said plainly, and not healed even with self_heal
        capsys.readouterr()
        assert main(["undeploy", "local", "--config", healing.settings.config_path or "", "--state-dir",
                     str(tmp_path / "state")]) == 0  # fmt: skip
        code, line = _status(healing, capsys)
        assert (code, line["sync"], line["actual"]["version"]) == (1, "out-of-sync", None), line
        assert "stopped by `modelops undeploy` at " in line["reason"], line["reason"]
        assert "lines" not in reconcile_sources(healing.reactor())
    finally:
        undeploy_local(watching.config, tmp_path / "state", "local")
