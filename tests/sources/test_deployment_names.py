"""Deployment names per source: `churn` v1 of source dev and of source prod, deployed to one managed
online endpoint through the ops API and the worker, become two deployments (real azure-ai-ml MLClient,
over HTTPS, against the online endpoints contract server), and a rollback finds the other source's one.
The names of the one-source-per-kind configs (mlflow, databricks, azureml) stay what they were."""

from __future__ import annotations

import hashlib
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
from shared.settings import Settings
from tests.contract.aml_online_server import AmlOnlineContract
from tests.contract.credentials import StaticTokenCredential
from tests.deploy.conftest import Registry, aml, registry  # noqa: F401 - fixtures of this module
from tests.deploy.test_deploy_online import ENDPOINT, RG, SUB, WS


def _container(tmp: Path, contract: AmlOnlineContract, models: Registry) -> Container:
    """Two named sources whose models live in the endpoint's workspace registry (aml-prod; here the local
    MLflow registry stands in for it), and the legacy-named source `mlflow` beside them."""
    workspace = f"subscription_id: {SUB}\n    resource_group: {RG}\n    workspace: {WS}\n"
    config = tmp / "modelops.yaml"
    sources = "".join(
        f'  {name}: {{kind: mlflow, tracking_uri: "{models.tracking_uri}", registry: aml-prod}}\n'
        for name in ("dev", "prod", "mlflow")
    )
    config.write_text(
        f"sources:\n{sources}registries:\n  aml-prod:\n    kind: azureml\n    {workspace}"
        f"deployments:\n  online:\n    kind: managed-online\n    {workspace}    endpoint: {ENDPOINT}\n"
        f"    arm_endpoint: {contract.base_url}\n    keep_previous: 2\n    wait_s: 30\n    poll_interval_s: 0.2\n"
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


def test_two_sources_same_named_versions_get_two_deployments_and_rollback_finds_them(
    aml: AmlOnlineContract,  # noqa: F811
    registry: Registry,  # noqa: F811
    tmp_path: Path,
) -> None:
    container = _container(tmp_path, aml, registry)
    client = TestClient(container.http_app())
    worker = container.reactor().worker()
    version = registry.log_sklearn("churn-src")

    def deploy(source: str) -> dict:
        body = {"kind": "deploy", "target": "online", "model_name": "churn-src", "model_version": version}
        answer = client.post("/api/actions", json={**body, "source": source})
        assert answer.status_code == 202, answer.text
        [done] = worker.run_until_done([answer.json()["action_id"]])
        assert done.status == "succeeded", done.error
        return done.outputs.to_dict()

    dev, prod = deploy("dev"), deploy("prod")

    assert dev["deployment"] != prod["deployment"]
    assert dev["deployment"] == deployment_name("online", "churn-src", version, source="dev")
    assert dev["deployment"].startswith(f"churn-src-v{version}-dev-")
    assert prod["deployment"].startswith(f"churn-src-v{version}-prod-")
    assert {dev["deployment"], prod["deployment"]} <= set(aml.deployments[ENDPOINT])
    assert aml.traffic(ENDPOINT) == {prod["deployment"]: 100}

    # the rollback goes back to dev's deployment of the same name and version, by its own name
    back = client.post("/api/deployments/online/rollback")
    assert back.status_code == 202, back.text
    [rolled] = worker.run_until_done([back.json()["action_id"]])
    assert rolled.status == "succeeded", rolled.error
    assert rolled.outputs.to_dict()["deployment"] == dev["deployment"]
    assert aml.traffic(ENDPOINT) == {dev["deployment"]: 100}

    # the source named for its kind keeps the name it had before sources were named
    legacy = deploy("mlflow")
    old_rule = f"churn-src-v{version}-" + hashlib.sha256(f"online|churn-src|{version}".encode()).hexdigest()[:6]
    assert legacy["deployment"] == old_rule
    assert len(set(aml.deployments[ENDPOINT]) & {dev["deployment"], prod["deployment"], old_rule}) == 3


def test_names_stay_valid_for_online_deployments_and_web_services_when_long() -> None:
    import re

    # azureml-core's webservice_name_validation; online deployment names: letters, digits, '-', <= 32
    valid = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
    long_source = "team-" + "x" * 60
    names = {
        deployment_name("aks-prod", "Customer Churn: gradient-boosted (EU)", "1234567", source=source)
        for source in (long_source, long_source + "y", "9-lives", None, "mlflow", "databricks", "azureml")
    }
    assert len(names) == 4  # None and the three legacy names are one name; the three sources differ
    assert all(valid.match(n) and 3 <= len(n) <= 32 for n in names), names
    assert deployment_name("t", "m", "1", source="dev") == deployment_name("t", "m", "1", source="dev")
    assert deployment_name("t", "m", "1", source="azureml") == deployment_name("t", "m", "1")
    assert deployment_name("t", "m", "1", source="operator") == deployment_name("t", "m", "1")
