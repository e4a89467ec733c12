"""A `local` rollout overtaken during a hold (the alias moved on: the worker's desired-state check says
superseded): the traffic it had set goes back to the version serving, and its server is stopped, not
left `starting` at 0%. Real `mlflow models serve` processes behind the target's real router."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from shared.adapters.local_deployments import LocalDeploymentStore, is_alive
from shared.deployments import list_managed_deployments
from shared.errors import Superseded
from shared.executors.base import Outcome
from shared.executors.deploy_local import LocalDeployExecutor
from tests.deploy.conftest import Registry, make_context, write_config

pytestmark = pytest.mark.slow

MODEL = "churn-overtaken"
TARGET = "local:\n  kind: local\n  startup_timeout_s: 240\n  rollout: {steps: [50, 100], hold: PT1S}\n"


def test_an_overtaken_rollout_gives_its_traffic_back_and_stops_its_server(
    registry: Registry, state_dir: Path, tmp_path: Path
) -> None:
    config = write_config(tmp_path / "modelops.yaml", TARGET)

    def run(version: str, outputs: Outcome | None = None, *, desired: bool = True) -> Outcome:
        ctx = make_context(
            config,
            state_dir,
            target="local",
            model_name=MODEL,
            model_version=version,
            tracking_uri=registry.tracking_uri,
            outputs=outputs.outputs.to_dict() if outputs else None,
        )
        if not desired:

            def moved_on() -> None:
                raise Superseded(f"{MODEL} v{version} no longer holds champion")

            ctx.desired_check = moved_on
        return LocalDeployExecutor().execute(ctx)

    v1, v2 = registry.log_sklearn(MODEL), registry.log_sklearn(MODEL)
    assert run(v1).recheck_after_seconds is None
    at_half = run(v2)
    stable = at_half.outputs.to_dict()["router_url"]
    store = LocalDeploymentStore(state_dir)
    candidate = store.find("local", MODEL, v2)
    assert candidate is not None and candidate.status == "starting" and at_half.recheck_after_seconds is not None

    with pytest.raises(Superseded):
        run(v2, at_half, desired=False)  # the hold ends after the alias moved on

    assert store.find("local", MODEL, v2) is None and not is_alive(candidate)
    rows = [r for r in list_managed_deployments(config, state_dir) if r["model_name"] == MODEL]
    assert [(r["model_version"], r["status"], r["weight"]) for r in rows] == [(v1, "serving", 100)]
    for _ in range(10):  # every request answered by the version serving
        answer = requests.post(stable, json={"dataframe_split": registry.features.to_dict(orient="split")}, timeout=30)
        assert answer.status_code == 200 and answer.headers["x-modelops-route"] == f"{MODEL}/{v1}"
