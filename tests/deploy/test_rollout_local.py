"""A `local` target rolled out in steps through its stable endpoint: real MLflow models behind real
`mlflow models serve` processes and the target's router, the deploy action run by the worker over the
SQLite ledger (holds are ledger waits of a few seconds)."""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from shared.adapters.local_deployments import RETIRED, ROLLED_BACK, STARTING, LocalDeploymentStore, is_alive
from shared.adapters.local_routers import LocalRouterStore
from shared.bootstrap import Container
from shared.cleanup.runner import run_cleanup
from shared.config.schema import ReactorConfig
from shared.deployments import list_managed_deployments, undeploy_local
from shared.domain.actions import Action
from shared.service.dispatch import LocalDispatcher
from shared.settings import Settings
from tests.deploy.conftest import Registry

pytestmark = pytest.mark.slow

MODEL = "churn-rollout"
CONFIG = """
sources:
  mlflow: {tracking_uri: "%(uri)s"}
deployments:
  local:
    kind: local
    startup_timeout_s: 300
    rollout:
      steps: [50, 100]
      hold: PT2S
      # no count_4xx: by default the 400s of a model that raises (mlflow's scoring server) are errors
      judge: {max_error_rate: 0.2, min_requests: 10, too_few_requests: pass}
worker: {poll_interval_seconds: 0.05}
"""


@pytest.fixture(scope="module")
def stack(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, Path]]:
    tmp = tmp_path_factory.mktemp("rollout-local")
    (tmp / "modelops.yaml").write_text(CONFIG % {"uri": registry.tracking_uri})
    env = {"MODELOPS_CONFIG": str(tmp / "modelops.yaml"), "MODELOPS_STATE_DIR": str(tmp / "state")}
    settings = Settings.from_env(env)
    container = Container(settings, dispatcher=LocalDispatcher())
    try:
        yield settings, tmp
    finally:
        undeploy_local(container.config, tmp / "state", "local")


def _container(settings: Settings) -> Container:
    """A reactor over the state dir: a new one is what a restart gives."""
    return Container(settings, dispatcher=LocalDispatcher())


def _request(reactor_container: Container, version: str) -> str:
    result = reactor_container.reactor().request_action(
        kind="deploy", target="local", model_name=MODEL, model_version=version
    )
    return result.action_ids[0]


def _step(container: Container, action_id: str, *, timeout: float = 900) -> Action:
    """Run the action's next claim (its hold over first): one phase of the rollout."""
    worker = container.worker()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ran = worker.run_once(action_id)
        if ran is not None and ran.status != "queued":  # queued: a retryable failure, tried again
            return ran
        time.sleep(0.1)
    raise AssertionError(f"{action_id} never became due")


def _traffic(url: str, count: int) -> Counter[tuple[str, int]]:
    """``count`` live requests with inputs the models never saw: (route that answered, status) counted."""
    rng = random.Random(7)
    seen: Counter[tuple[str, int]] = Counter()
    for _ in range(count):
        row = [round(rng.uniform(0, 1), 3), round(rng.uniform(0, 1), 3)]
        body = {"dataframe_split": {"columns": ["a", "b"], "data": [row]}}
        response = requests.post(url, json=body, timeout=30)
        seen[(response.headers.get("x-modelops-route", "?"), response.status_code)] += 1
    return seen


def test_steps_through_the_stable_url_then_judged_rollback_and_restart(
    stack: tuple[Settings, Path], registry: Registry
) -> None:
    settings, tmp = stack
    v1, v2 = registry.log_sklearn(MODEL), registry.log_sklearn(MODEL)
    first = _container(settings)

    # nothing serves yet: the first version takes the target at once
    done = _step(first, _request(first, v1))
    assert done.status == "succeeded", done.error
    stable = done.outputs.to_dict()["router_url"]
    assert stable.endswith("/invocations") and "rollout" not in done.outputs.to_dict()
    assert set(_traffic(stable, 5)) == {(f"{MODEL}/{v1}", 200)}

    # v2 rolls out: during the 50% step both versions answer through the stable URL
    rolling = _request(first, v2)
    at_half = _step(first, rolling)
    assert at_half.status == "waiting" and at_half.outputs.to_dict()["rollout_step"] == 0
    assert at_half.outputs.to_dict()["router_url"] == stable  # the URL never changes
    seen = _traffic(stable, 40)
    assert set(seen) == {(f"{MODEL}/{v1}", 200), (f"{MODEL}/{v2}", 200)}, seen
    [row] = [r for r in list_managed_deployments(first.config, tmp / "state") if r["model_version"] == v2]
    assert row["router_url"] == stable and row["weight"] == 50

    at_full = _step(first, rolling)  # judged on the 50% hold's figures, then 100%
    assert at_full.status == "waiting" and at_full.outputs.to_dict()["rollout_step"] == 1
    assert set(_traffic(stable, 10)) == {(f"{MODEL}/{v2}", 200)}
    finished = _step(first, rolling)
    assert finished.status == "succeeded", finished.error
    steps = finished.outputs.to_dict()["rollout"]
    assert [s["phase"] for s in steps] == ["50% of traffic", "100% of traffic"]
    assert [s["verdict"] for s in steps] == ["passed", "passed"]
    assert steps[0]["figures"]["requests"] >= 10 and steps[0]["figures"]["errors"] == 0
    store = LocalDeploymentStore(tmp / "state")
    assert store.get("local").model_version == v2  # type: ignore[union-attr]
    assert [r.status for r in store.list() if r.model_version == v1] == [RETIRED]

    # a version that passes its smoke test but fails on live inputs is judged and rolled back
    v3 = registry.log_flaky(MODEL)
    bad = _request(first, v3)
    assert _step(first, bad).status == "waiting"
    seen = _traffic(stable, 40)
    assert seen[(f"{MODEL}/{v3}", 400)] > 0 and seen[(f"{MODEL}/{v2}", 200)] > 0, seen
    restored = _step(first, bad)  # judged failed: all traffic back on v2 first, the figures recorded
    assert restored.outputs.to_dict()["traffic"] == {f"{MODEL}/{v2}": 100}
    failed = _step(first, bad)
    assert failed.status == "failed"
    assert "judged failed" in (failed.error or "") and "error rate" in (failed.error or "")
    assert set(_traffic(stable, 30)) == {(f"{MODEL}/{v2}", 200)}  # every request answered by the old one
    held = store.find("local", MODEL, v3)
    assert held is not None and is_alive(held)  # kept at 0% for a look, owned by no action
    [row] = [r for r in list_managed_deployments(first.config, tmp / "state") if r["model_version"] == v3]
    assert (row["status"], row["weight"]) == (ROLLED_BACK, 0)
    sweep = ReactorConfig.model_validate({"cleanup": {"provider": "local", "default_ttl": "PT1S"}})
    plan = run_cleanup(sweep, apply=False, state_dir=tmp / "state", now=datetime.now(UTC) + timedelta(hours=1))
    assert plan.row(f"local/{MODEL}/{v3}").decision == "mark"  # cleanup may retire it: not locked

    # the audit page draws the rollout: its step, the judged figures, the verdict
    page = TestClient(first.http_app()).get(f"/api/ui/events/{failed.event_id}")
    assert page.status_code == 200
    table = page.text.split('<table class="rollout">', 1)[1].split("</table>", 1)[0]
    assert "50% of traffic" in table and 'data-verdict="failed"' in table and "error rate" in table

    # a reactor restart during a hold resumes the rollout where it was
    v4 = registry.log_sklearn(MODEL)
    resumed = _request(first, v4)
    assert _step(first, resumed).outputs.to_dict()["rollout_step"] == 0
    router_pid = LocalRouterStore(tmp / "state").get("local").pid  # type: ignore[union-attr]
    first.reactor().ledger.close()
    second = _container(settings)
    mid = _step(second, resumed)
    assert mid.outputs.to_dict()["rollout_step"] == 1 and mid.attempts == 1  # a re-check, not a new attempt
    end = _step(second, resumed)
    assert end.status == "succeeded", end.error
    assert set(_traffic(stable, 5)) == {(f"{MODEL}/{v4}", 200)}
    assert LocalRouterStore(tmp / "state").get("local").pid == router_pid  # type: ignore[union-attr]

    # a rollback during a rollout: the version serving takes all traffic back, and the rollout's next
    # check ends it and stops the new server (never left `starting`, never holding a port)
    v5 = registry.log_sklearn(MODEL)
    overtaken = _request(second, v5)
    assert _step(second, overtaken).status == "waiting"
    candidate = store.find("local", MODEL, v5)
    assert candidate is not None and candidate.status == STARTING
    rollback = second.reactor().request_rollback("local")
    assert _step(second, rollback.action_ids[0]).status == "succeeded"
    assert set(_traffic(stable, 5)) == {(f"{MODEL}/{v4}", 200)}
    ended = _step(second, overtaken)  # an operator's deploy: the rollback moved its traffic, no pin
    assert ended.status == "failed" and "traffic was changed meanwhile" in (ended.error or ""), ended.error
    assert store.find("local", MODEL, v5) is None and not is_alive(candidate)
    rows = list_managed_deployments(second.config, tmp / "state")
    assert [r["status"] for r in rows if r["target"] == "local" and r["status"] == STARTING] == []
