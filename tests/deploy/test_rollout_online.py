"""managed-online rolled out in steps through the real azure-ai-ml MLClient and the real
azure-monitor-querymetrics MetricsClient, over HTTPS, against the online endpoints contract and the
Azure Monitor metrics contract (whose figures are the requests the endpoint contract really scored,
by the real MLflow models)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.config.deployments import LocalDeployment, ManagedOnlineDeployment
from shared.config.loader import load_config
from shared.config.schema import ReactorConfig
from shared.errors import ConfigError, PermanentError
from shared.executors.aml_targets import deployment_name
from shared.executors.base import Outcome
from shared.executors.deploy_online import OnlineDeployExecutor
from tests.contract.aml_online_server import AmlOnlineContract
from tests.contract.credentials import StaticTokenCredential
from tests.contract.https import HttpsServer, TestCA
from tests.contract.monitor_metrics_server import MonitorMetricsContract
from tests.deploy.conftest import Registry, make_context
from tests.deploy.test_deploy_online import ENDPOINT, RG, SUB, WS, upstream

MODEL = "churn-steps"


@pytest.fixture
def monitor(aml: AmlOnlineContract, trust_test_ca: TestCA) -> Iterator[MonitorMetricsContract]:
    contract = MonitorMetricsContract(lambda: list(aml.requests))
    with HttpsServer(contract.app, trust_test_ca) as server:
        contract.base_url = server.url
        yield contract


def rollout_config(
    tmp_path: Path, aml: AmlOnlineContract, monitor: MonitorMetricsContract, rollout: str, wait_s: float = 30
) -> ReactorConfig:
    workspace = f"subscription_id: {SUB}\n    resource_group: {RG}\n    workspace: {WS}\n"
    path = tmp_path / "modelops.yaml"
    path.write_text(
        f"registries:\n  aml-prod:\n    kind: azureml\n    {workspace}"
        f"deployments:\n  online:\n    kind: managed-online\n    {workspace}    endpoint: {ENDPOINT}\n"
        f"    arm_endpoint: {aml.base_url}\n    metrics_endpoint: {monitor.base_url}\n"
        f"    keep_previous: 1\n    wait_s: {wait_s}\n    poll_interval_s: 0.2\n    rollout: {rollout}\n"
    )
    return load_config(path, env={})


def step(config: ReactorConfig, tmp_path: Path, registry: Registry, version: str, outputs: dict[str, Any]) -> Outcome:
    """One claim of the deploy action: what the worker does at each re-check, after the hold."""
    ctx = make_context(
        config,
        tmp_path,
        target="online",
        model_name=MODEL,
        model_version=version,
        upstream=upstream(registry, MODEL, version),
        outputs=outputs,
    )
    return OnlineDeployExecutor(credential=StaticTokenCredential()).execute(ctx)


def held(config: ReactorConfig, tmp_path: Path, registry: Registry, version: str, outcome: Outcome) -> Outcome:
    time.sleep(outcome.recheck_after_seconds or 0)
    return step(config, tmp_path, registry, version, outcome.outputs.to_dict())


def live_traffic(aml: AmlOnlineContract, registry: Registry, count: int) -> None:
    """Users' requests: no deployment named, so the endpoint routes (and mirrors) them."""
    frame = registry.features
    body = {"input_data": {"columns": ["a", "b"], "index": [0], "data": [[0.33, 0.66]]}}
    assert list(frame.columns) == ["a", "b"]
    for _ in range(count):
        requests.post(
            f"{aml.base_url}/score/{ENDPOINT}",
            json=body,
            headers={"Authorization": f"Bearer {aml.keys[ENDPOINT]}"},
            timeout=30,
        )


def state(aml: AmlOnlineContract) -> tuple[dict[str, int], dict[str, int]]:
    props = aml.endpoints[ENDPOINT]["properties"]
    return dict(props["traffic"]), dict(props.get("mirrorTraffic") or {})


JUDGE = "{max_error_rate: 0.2, min_requests: 5, too_few_requests: pass}"


def test_mirror_then_steps_in_order_judged_on_monitor_metrics(
    aml: AmlOnlineContract, monitor: MonitorMetricsContract, registry: Registry, tmp_path: Path
) -> None:
    config = rollout_config(tmp_path, aml, monitor, f"{{mirror: 20, steps: [50, 100], hold: PT1S, judge: {JUDGE}}}")
    v1, v2 = registry.log_sklearn(MODEL), registry.log_sklearn(MODEL)
    d1, d2 = deployment_name("online", MODEL, v1), deployment_name("online", MODEL, v2)
    first = step(config, tmp_path, registry, v1, {})
    assert first.recheck_after_seconds is None and state(aml) == ({d1: 100}, {})  # nothing to roll out from

    seen = []
    outcome = step(config, tmp_path, registry, v2, {})
    while outcome.recheck_after_seconds is not None:
        seen.append(state(aml))
        live_traffic(aml, registry, 30)
        outcome = held(config, tmp_path, registry, v2, outcome)
    assert seen == [({d1: 100}, {d2: 20}), ({d1: 50, d2: 50}, {}), ({d2: 100}, {})]  # mirror set, then cleared
    out = outcome.outputs.to_dict()
    assert [s["phase"] for s in out["rollout"]] == ["mirror 20%", "50% of traffic", "100% of traffic"]
    assert [s["verdict"] for s in out["rollout"]] == ["passed", "passed", "passed"]
    mirrored = out["rollout"][0]["figures"]
    assert 0 < mirrored["requests"] < 30 and mirrored["errors"] == 0  # the shadow's own figures
    assert out["rollout"][1]["figures"]["requests"] >= 5
    assert state(aml) == ({d2: 100}, {}) and set(aml.deployments[ENDPOINT]) == {d1, d2}
    query = monitor.queries[0]["query"]
    assert query["metricnames"] == "RequestsPerMinute" and f"deployment eq '{d2}'" in query["filter"]


def test_failed_judgement_restores_traffic_and_a_busy_endpoint_is_retried(
    aml: AmlOnlineContract,
    monitor: MonitorMetricsContract,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the SDK sits out a short Retry-After itself; without its retries the 409 reaches the rollout
    monkeypatch.setenv("MODELOPS_AZURE_RETRIES", "0")
    config = rollout_config(tmp_path, aml, monitor, f"{{steps: [50, 100], hold: PT1S, judge: {JUDGE}}}")
    good, bad = registry.log_sklearn(MODEL), registry.log_flaky(MODEL)
    d_good, d_bad = deployment_name("online", MODEL, good), deployment_name("online", MODEL, bad)
    step(config, tmp_path, registry, good, {})

    aml.endpoint_conflicts = ["ongoing"]  # the first traffic update meets another operation: 409
    aml.conflict_retry_after = "1"
    endpoint_puts = endpoint_puts_of(aml)
    outcome = step(config, tmp_path, registry, bad, {})  # refused: waits in the ledger, no retry in the call
    assert outcome.recheck_after_seconds == 1 and endpoint_puts_of(aml) - endpoint_puts == 1
    assert state(aml) == ({d_good: 100}, {}) and outcome.outputs.to_dict()["rollout_pending"]["then"] == "apply"
    outcome = held(config, tmp_path, registry, bad, outcome)  # the re-check sends it again: taken
    assert outcome.recheck_after_seconds is not None and state(aml) == ({d_good: 50, d_bad: 50}, {})
    assert endpoint_puts_of(aml) - endpoint_puts == 2 and "rollout_pending" not in outcome.outputs.to_dict()

    live_traffic(aml, registry, 30)  # the flaky version fails on these inputs (it passed its smoke test)
    restored = held(config, tmp_path, registry, bad, outcome)
    assert state(aml) == ({d_good: 100}, {})
    assert restored.outputs.to_dict()["rollout"][0]["verdict"] == "failed"
    with pytest.raises(PermanentError, match="judged failed: error rate"):
        step(config, tmp_path, registry, bad, restored.outputs.to_dict())
    assert d_bad in aml.deployments[ENDPOINT]  # kept at 0% for a look


def endpoint_puts_of(aml: AmlOnlineContract) -> int:
    return sum(1 for m, p in aml.log if m == "PUT" and p.endswith(f"/onlineEndpoints/{ENDPOINT}"))


def test_a_busy_then_slow_traffic_update_mid_rollout_waits_in_the_ledger_and_resumes(
    aml: AmlOnlineContract,
    monitor: MonitorMetricsContract,
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELOPS_AZURE_RETRIES", "0")  # the 409 reaches the rollout (see above)
    rollout = f"{{steps: [50, 100], hold: PT1S, judge: {JUDGE}}}"
    config = rollout_config(tmp_path, aml, monitor, rollout)
    v1, v2 = registry.log_sklearn(MODEL), registry.log_sklearn(MODEL)
    d1, d2 = deployment_name("online", MODEL, v1), deployment_name("online", MODEL, v2)
    step(config, tmp_path, registry, v1, {})
    at_half = step(config, tmp_path, registry, v2, {})
    assert state(aml) == ({d1: 50, d2: 50}, {})
    live_traffic(aml, registry, 10)

    # the 100% update meets another operation on the endpoint (409), then, sent again, runs for 2 s:
    # longer than the attempt may wait (wait_s: 0.5), so the rollout waits on it in the ledger
    aml.endpoint_conflicts, aml.conflict_retry_after, aml.endpoint_update_seconds = ["ongoing"], "1", 2.0
    impatient = rollout_config(tmp_path, aml, monitor, rollout, wait_s=0.5)
    puts = endpoint_puts_of(aml)
    outcome = held(impatient, tmp_path, registry, v2, at_half)  # judged passed; the update refused
    pending = outcome.outputs.to_dict()
    assert pending["rollout"][0]["verdict"] == "passed" and pending["rollout_pending"]["traffic"] == {d2: 100}
    assert outcome.recheck_after_seconds == 1 and state(aml) == ({d1: 50, d2: 50}, {})
    rechecks = 0
    while "rollout_pending" in outcome.outputs.to_dict():
        outcome = held(impatient, tmp_path, registry, v2, outcome)
        rechecks += 1
        assert rechecks < 50, outcome.outputs.to_dict()
    assert rechecks >= 2  # sent again once, then looked at while Azure still ran it
    assert endpoint_puts_of(aml) - puts == 2  # the one refused, the one taken: none while it ran
    assert state(aml) == ({d2: 100}, {}) and outcome.outputs.to_dict()["rollout_step"] == 1

    done = held(config, tmp_path, registry, v2, outcome)  # the 100% hold, judged, and the rollout ends
    assert done.recheck_after_seconds is None
    assert [s["verdict"] for s in done.outputs.to_dict()["rollout"]] == ["passed", "passed"]


def test_kubernetes_targets_refuse_a_mirror(tmp_path: Path) -> None:
    path = tmp_path / "modelops.yaml"
    path.write_text(
        "deployments:\n  k8s:\n    kind: kubernetes-online\n    subscription_id: s\n    resource_group: r\n"
        "    workspace: w\n    endpoint: churn-k8s\n    compute: aks\n"
        "    rollout: {mirror: 10, steps: [100]}\n"
    )
    with pytest.raises(ConfigError, match="does not mirror traffic on Kubernetes"):
        load_config(path, env={})


def test_the_documented_rollout_config_loads(tmp_path: Path) -> None:
    doc = (Path(__file__).parents[2] / "docs" / "rollout.md").read_text()
    block = doc.split("```yaml", 1)[1].split("```", 1)[0]
    path = tmp_path / "modelops.yaml"
    path.write_text(block)
    config = load_config(path, env={})
    online, local = config.deployments["online-prod"], config.deployments["local"]
    assert isinstance(online, ManagedOnlineDeployment) and isinstance(local, LocalDeployment)
    assert online.rollout is not None and online.rollout.steps == [10, 50, 100] and online.rollout.mirror == 20
    assert online.rollout.hold_seconds == 600 and online.rollout.judge is not None
    assert local.rollout is not None and local.router_port == 8765
    path.write_text(block.replace("mirror: 20 ", "mirror: 60 "))
    with pytest.raises(ConfigError, match="at most 50"):
        load_config(path, env={})
