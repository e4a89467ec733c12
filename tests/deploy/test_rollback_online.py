"""Rollback of a managed online endpoint, end to end over the ledger, through the real azure-ai-ml
MLClient against the Azure ML online endpoints contract server: traffic goes back to the deployment
kept at 0%, after a smoke test of that deployment alone, once under a duplicate request; a version
no longer kept is refused with the reason, traffic untouched."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from shared.bootstrap import Container
from shared.config.deployments import ManagedOnlineDeployment
from shared.domain.actions import DEPLOY, ROLLBACK
from shared.executors.aml_targets import deployment_name
from shared.executors.deploy_online import OnlineDeployExecutor
from shared.executors.registry import FACTORIES, ExecutorRegistry
from shared.executors.rollback_azure import OnlineRollbackExecutor
from shared.service.dispatch import LocalDispatcher
from shared.service.reactor import Reactor
from shared.settings import Settings
from tests.contract.aml_online_server import AmlOnlineContract
from tests.contract.credentials import StaticTokenCredential
from tests.deploy.conftest import Registry
from tests.deploy.test_deploy_online import ENDPOINT, RG, SUB, WS


def _container(tmp: Path, aml: AmlOnlineContract, registry: Registry) -> Container:
    workspace = f"subscription_id: {SUB}\n    resource_group: {RG}\n    workspace: {WS}\n"
    config = tmp / "modelops.yaml"
    config.write_text(
        f'sources:\n  mlflow: {{tracking_uri: "{registry.tracking_uri}", registry: aml-prod}}\n'
        f"registries:\n  aml-prod:\n    kind: azureml\n    {workspace}"
        f"deployments:\n  online:\n    kind: managed-online\n    {workspace}    endpoint: {ENDPOINT}\n"
        f"    arm_endpoint: {aml.base_url}\n    keep_previous: 1\n    wait_s: 30\n    poll_interval_s: 0.2\n"
        "worker: {poll_interval_seconds: 0.05, max_attempts: 2}\n"
    )
    credential = StaticTokenCredential()
    executors = ExecutorRegistry(
        {
            **FACTORIES,
            (DEPLOY, ManagedOnlineDeployment): lambda: OnlineDeployExecutor(credential=credential),
            (ROLLBACK, ManagedOnlineDeployment): lambda: OnlineRollbackExecutor(credential=credential),
        }
    )
    settings = Settings.from_env({"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp / "state")})
    return Container(settings, dispatcher=LocalDispatcher(), executors=executors)


def _deploy(reactor: Reactor, version: str) -> None:
    result = reactor.request_action(kind="deploy", target="online", model_name="churn-rb", model_version=version)
    [done] = reactor.worker().run_until_done(result.action_ids)
    assert done.status == "succeeded", done.error


def _traffic_puts(aml: AmlOnlineContract) -> int:
    return sum(1 for method, path in aml.log if method == "PUT" and path.endswith(f"/onlineEndpoints/{ENDPOINT}"))


def test_traffic_returns_to_the_kept_deployment_once_under_a_duplicate_request(
    aml: AmlOnlineContract, registry: Registry, tmp_path: Path
) -> None:
    container = _container(tmp_path, aml, registry)
    reactor = container.reactor()
    v1, v2, v3 = (registry.log_sklearn("churn-rb") for _ in range(3))
    d1, d2, d3 = (deployment_name("online", "churn-rb", v) for v in (v1, v2, v3))
    _deploy(reactor, v1)
    _deploy(reactor, v2)
    assert aml.traffic(ENDPOINT) == {d2: 100} and set(aml.deployments[ENDPOINT]) == {d1, d2}

    client = TestClient(container.http_app())
    puts, scored = _traffic_puts(aml), len(aml.scored)
    first = client.post("/api/deployments/online/rollback", json={"model": "churn-rb"})
    again = client.post("/api/deployments/online/rollback", json={"model": "churn-rb"})
    assert first.status_code == 202, first.text
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["action_id"] == first.json()["action_id"]
    [done] = reactor.worker().run_until_done([first.json()["action_id"]])
    assert done.status == "succeeded", done.error
    assert done.attempts == 1 and done.outputs.to_dict()["traffic"] == {d1: 100}
    assert aml.traffic(ENDPOINT) == {d1: 100}
    assert _traffic_puts(aml) == puts + 1  # one switch
    assert [s["deployment"] for s in aml.scored[scored:]] == [d1]  # smoke-tested alone, before the switch
    assert set(aml.deployments[ENDPOINT]) == {d1, d2}  # nothing deleted: v2 stays at 0%

    # once it ran, the same request finds nothing further back
    third = client.post("/api/deployments/online/rollback", json={"model": "churn-rb"})
    assert third.status_code == 409, third.text
    assert third.json()["problems"][0]["field"] == "target" and _traffic_puts(aml) == puts + 1

    # v3 replaces v1, which keep_previous=1 keeps (it served until then); v2's delete is started
    _deploy(reactor, v3)
    assert aml.traffic(ENDPOINT) == {d3: 100}
    assert [path.rsplit("/", 1)[1] for method, path in aml.log if method == "DELETE"] == [d2]
    refused = client.post("/api/deployments/online/rollback", json={"to": int(v2)})
    assert refused.status_code == 202, refused.text
    [failed] = reactor.worker().run_until_done([refused.json()["action_id"]])
    assert failed.status == "failed" and "nothing kept to roll back to" in str(failed.error)
    assert aml.traffic(ENDPOINT) == {d3: 100}
    # without `to` it goes to the version that served before v3
    back = client.post("/api/deployments/online/rollback")
    [ok] = reactor.worker().run_until_done([back.json()["action_id"]])
    assert ok.status == "succeeded", ok.error
    assert aml.traffic(ENDPOINT) == {d1: 100}
