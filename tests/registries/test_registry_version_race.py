"""Two sources copying into one registry model at once.

Into an Azure ML registry the race is real: the version number is ours to choose (one past the highest),
so two copies that read the versions at the same moment choose the same one. The registry keeps a
version's files once it exists (the contract answers the slower copy the way the service does; see
tests/contract/aml_registry_server.py), and the slower copy reads the versions again and takes the next
number. Into an MLflow registry (a `mlflow server`, and the Azure ML workspace's MLflow API, which the
azureml-mlflow plugin calls through MLflow's own RestStore) there is no race to lose: CreateModelVersion
carries no version, the server assigns it.

Both run through signed webhooks into the HTTP app and two worker threads at once, over the real
azure-ai-ml `MLClient` (HTTPS, Azurite behind the upload grants) and a real `mlflow server`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from fastapi.testclient import TestClient

from shared.bootstrap import Container
from shared.config.registries import AzureMLSharedRegistry
from shared.domain.actions import REGISTER, Action
from shared.executors.register_aml_registry import RegistryRegisterExecutor
from shared.executors.registry import FACTORIES, ExecutorRegistry
from shared.local.mlflow_server import MlflowServer
from shared.service.dispatch import LocalDispatcher
from shared.settings import Settings
from tests.contract.aml_registry_server import AmlRegistryContract
from tests.contract.azurite import Azurite
from tests.contract.credentials import StaticTokenCredential
from tests.contract.https import HttpsServer, TestCA
from tests.registries.conftest import SUB, TENANT, TOKEN
from tests.support import mlflow_delivery, train_and_register, unique

REGISTRY, RG = "contoso-race", "rg-registries"
SECRETS = {"DEV_SECRET": "dev-secret", "PROD_SECRET": "prod-secret"}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[AmlRegistryContract]:
    with Azurite(tmp_path_factory.mktemp("race-blobs"), cert=test_ca.cert, key=test_ca.key) as storage:
        contract = AmlRegistryContract(token=TOKEN, tenant_id=TENANT, azurite=storage)
        contract.add_registry(REGISTRY, SUB, RG, "westeurope")
        with HttpsServer(contract.app, test_ca) as server:
            contract.base_url = server.url
            yield contract


def _container(tmp: Path, source: MlflowServer, registry: AmlRegistryContract, target: str, into: str) -> Container:
    """Sources dev and prod (two models on one real `mlflow server`), one rule copying both into ``target``."""
    config = tmp / "modelops.yaml"
    config.write_text(
        "sources:\n"
        f'  dev: {{kind: mlflow, tracking_uri: "{source.url}", secret_setting: DEV_SECRET}}\n'
        f'  prod: {{kind: mlflow, tracking_uri: "{source.url}", secret_setting: PROD_SECRET}}\n'
        "registries:\n"
        f"  shared: {{kind: azureml-registry, registry_name: {REGISTRY}, location: westeurope,"
        f" discovery_endpoint: '{registry.base_url}'}}\n"
        f'  central: {{kind: mlflow, tracking_uri: "{source.url}"}}\n'
        "rules:\n"
        "  - {name: promote, on: model_version.created, source: [dev, prod],"
        f" do: [{{register: {into}, name: {target}}}]}}\n"
        "worker: {poll_interval_seconds: 0.05, backoff_base_seconds: 0.1}\n"
    )
    credential = StaticTokenCredential(TOKEN)
    executors = ExecutorRegistry(
        {**FACTORIES, (REGISTER, AzureMLSharedRegistry): lambda: RegistryRegisterExecutor(credential)}
    )
    env = {"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp / "state"), **SECRETS}
    return Container(Settings.from_env(env), dispatcher=LocalDispatcher(), executors=executors)


def _copy_both_at_once(container: Container, source: MlflowServer) -> list[Action]:
    """A version registered in each source, its webhook delivered, both copies run by two threads at once."""
    client = TestClient(container.http_app())
    ids = []
    for name, secret in (("dev", "dev-secret"), ("prod", "prod-secret")):
        model = unique(f"churn-{name}")
        version, _ = train_and_register(source.url, model, pip_requirements=["scikit-learn"])
        envelope = {
            "entity": "model_version",
            "action": "created",
            "data": {"name": model, "version": version, "source": "s", "run_id": None, "tags": {}},
        }
        body, headers = mlflow_delivery(secret, envelope)
        answer = client.post(f"/api/hooks/{name}", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        ids += answer.json()["action_ids"]
    worker = container.reactor().worker()
    threads = [threading.Thread(target=worker.run_once, args=(action_id,)) for action_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    return worker.run_until_done(ids, timeout=300)  # a retry, if one was scheduled


@pytest.mark.parametrize("refused_by", ["version PUT", "upload grant"])
def test_two_copies_racing_into_an_azure_ml_registry_model_take_two_versions(
    tmp_path: Path, source_server: MlflowServer, registry: AmlRegistryContract, trust_test_ca: TestCA, refused_by: str
) -> None:
    target = unique("promoted")
    container = _container(tmp_path, source_server, registry, target, "shared")
    registry.hold_listings(2)  # both copies read the (empty) version list before either creates one
    # the slower copy asks for its grant once version 1 exists (409), or both upload and then the slower
    # one's PUT of version 1 is refused
    registry.order_grants("late" if refused_by == "upload grant" else "together", version="1")

    done = _copy_both_at_once(container, source_server)

    assert [a.status for a in done] == ["succeeded", "succeeded"], [a.error for a in done]
    versions = registry.versions[(REGISTRY, target)]
    assert sorted(versions) == ["1", "2"]
    by_source = {v["properties"]["tags"]["modelops.source"]: n for n, v in versions.items()}
    assert set(by_source) == {"dev", "prod"}
    outputs = {a.params.source: a.outputs.to_dict() for a in done}
    assert {s: o["model_version"] for s, o in outputs.items()} == by_source
    assert not any(o["reused"] for o in outputs.values())
    # the slower copy was refused version 1 (by the upload grant's 409, or the PUT's 400) and took 2
    slower = next(a for a in done if a.outputs.to_dict()["model_version"] == "2")
    log = " ".join(line["message"] for line in container.reactor().ledger.action_log(slower.id))
    assert f"{target}/1 was registered by another copy first" in log, log
    # version 1 was asked for twice (the slower copy's upload grant at least), version 2 once
    assert len(registry.calls("PUT", rf"/tempdatarefs/{target}/versions/1$")) == 2
    assert len(registry.calls("PUT", rf"/models/{target}/versions/2$")) == 1
    refused_puts = len(registry.calls("PUT", rf"/models/{target}/versions/1$")) - 1
    assert refused_puts == (1 if refused_by == "version PUT" else 0)
    assert slower.attempts == 1  # handled within the attempt: no retry, no failure recorded


def test_two_copies_into_an_mlflow_registry_model_need_no_care(
    tmp_path: Path, source_server: MlflowServer, registry: AmlRegistryContract
) -> None:
    target = unique("central")
    container = _container(tmp_path, source_server, registry, target, "central")

    done = _copy_both_at_once(container, source_server)

    assert [a.status for a in done] == ["succeeded", "succeeded"], [a.error for a in done]
    central = mlflow.MlflowClient(tracking_uri=source_server.url)
    versions = {mv.version: mv.tags["modelops.source"] for mv in central.search_model_versions(f"name='{target}'")}
    assert sorted(versions) == ["1", "2"] and set(versions.values()) == {"dev", "prod"}
    # the request names no version: MLflow's CreateModelVersion has no such field (the server numbers it)
    from mlflow.protos.model_registry_pb2 import CreateModelVersion

    assert "version" not in CreateModelVersion.DESCRIPTOR.fields_by_name
