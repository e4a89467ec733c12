"""The v1 Model Management Service contract over HTTPS for the ACI / AKS tests, reached by the real
azureml-core through azure-identity's credential protocol (wrapped by the adapter's identity_auth,
as in production), its blob uploads through an HTTPS proxy to the contract's storage."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.azureml_core_webservices import AzureMLCoreWebservices
from shared.config.loader import load_config
from shared.config.schema import ReactorConfig
from shared.executors.deploy_legacy import LegacyWebserviceExecutor
from tests.contract.aml_mms_server import MmsContract
from tests.contract.aml_mms_workspace import BLOB_HOST
from tests.contract.connect_proxy import ConnectProxy
from tests.contract.credentials import StaticTokenCredential
from tests.contract.https import HttpsServer, TestCA
from tests.deploy.conftest import Registry, make_context
from tests.registries.conftest import entra_like_token

SUB = "00000000-1111-2222-3333-444444444444"
TENANT = "72f988bf-0000-0000-0000-000000000001"
RG, WS, AKS = "rg-modelops", "ws-modelops", "aks-cluster"
TOKEN = entra_like_token(TENANT)  # azureml-core decodes exp/tid from the token it is given


@dataclass
class Mms:
    contract: MmsContract
    url: str
    proxy: ConnectProxy


@pytest.fixture(scope="module")
def mms_server(test_ca: TestCA) -> Iterator[Mms]:
    contract = MmsContract(token=TOKEN, tenant_id=TENANT, subscription_id=SUB, ca=test_ca)
    contract.add_workspace(RG, WS)
    contract.computes[AKS] = "aks-cluster-dns.westeurope.cloudapp.azure.com"
    with (
        HttpsServer(contract.app, test_ca) as api,
        HttpsServer(contract.blob_app, test_ca, cert=test_ca.issue(BLOB_HOST)) as blobs,
        ConnectProxy({BLOB_HOST: blobs.port}) as proxy,
    ):
        contract.base_url = api.url
        try:
            yield Mms(contract, api.url, proxy)
        finally:
            contract.stop()


@pytest.fixture
def mms(mms_server: Mms, trust_test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[MmsContract]:
    """The module's contract, reset for this test; blob uploads go through the proxy, the rest direct."""
    monkeypatch.setenv("HTTPS_PROXY", mms_server.proxy.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("AZUREML_LOG_DEPRECATION_WARNING_ENABLED", "False")
    contract = mms_server.contract
    yield contract
    contract.stop()
    contract.services.clear()
    contract.faults.clear()
    contract.build_steps.clear()
    contract.hold.clear()
    contract.requests.clear()


def legacy_config(tmp_path: Path, url: str, *, timeout_s: float = 120) -> ReactorConfig:
    ws = f'    subscription_id: "{SUB}"\n    resource_group: {RG}\n    workspace: {WS}\n    arm_endpoint: {url}\n'
    path = tmp_path / "modelops.yaml"
    path.write_text(
        f"registries:\n  aml-prod:\n    kind: azureml\n{ws}"
        f"deployments:\n"
        f"  aci-dev:\n    kind: aci\n{ws}    cpu_cores: 0.5\n    memory_gb: 1.5\n    location: westeurope\n"
        f"    dns_name_label: churn-dev\n    keep_previous: 0\n    timeout_s: {timeout_s}\n"
        f"  aks-prod:\n    kind: aks\n{ws}    compute_target: {AKS}\n    cpu_cores: 2\n    memory_gb: 4\n"
        f"    num_replicas: 3\n    namespace: scoring\n    scoring_timeout_ms: 5000\n    enable_app_insights: true\n"
        f"    timeout_s: {timeout_s}\n"
    )
    return load_config(path, env={})


def register_in_workspace(contract: MmsContract, registry: Registry, name: str, version: str, dest: Path) -> None:
    """The model as the register step leaves it in the workspace: its files, as MMS model `name:version`."""
    from mlflow.artifacts import download_artifacts

    files = download_artifacts(
        f"models:/{name}/{version}", dst_path=str(dest / uuid.uuid4().hex[:8]), tracking_uri=registry.tracking_uri
    )
    contract.models[f"{name}:{version}"] = str(files)


def deploy(
    config: ReactorConfig, tmp_path: Path, registry: Registry, target: str, name: str, version: str
) -> dict[str, Any]:
    """One attempt of the deploy action, through the production adapter and the real azureml-core."""
    upstream = {
        "model_uri": f"models:/{name}/{version}",
        "tracking_uri": registry.tracking_uri,
        "registry_uri": None,
        "model_name": name,
        "model_version": version,
        "registry": "aml-prod",
    }
    ctx = make_context(config, tmp_path, target=target, model_name=name, model_version=version, upstream=upstream)
    sdk = AzureMLCoreWebservices(credential=StaticTokenCredential(TOKEN))
    return LegacyWebserviceExecutor(sdk).execute(ctx).outputs.to_dict()
