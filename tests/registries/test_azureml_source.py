"""An Azure ML workspace as a copy source: a model in one workspace (its files in the workspace's blob
storage, Azurite here) copied into a second workspace and into a plain MLflow registry, over the
workspace contract (ARM, discovery, MLflow REST, run-history artifacts), with the real azureml-mlflow."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from shared.adapters.aml_registry import RegistryModelsClient
from shared.adapters.azureml_artifacts import check_download_url
from shared.adapters.azureml_workspace import mlflow_tracking_uri
from shared.config.registries import AzureMLRegistry, AzureMLSharedRegistry
from shared.errors import PermanentError
from shared.executors.base import ActionContext
from shared.executors.register import RegisterExecutor
from shared.executors.register_aml_registry import RegistryRegisterExecutor
from shared.local.mlflow_server import MlflowServer
from tests.contract.aml_registry_server import AmlRegistryContract
from tests.contract.azurite import Azurite
from tests.contract.credentials import StaticTokenCredential
from tests.contract.https import HttpsServer, TestCA
from tests.registries.conftest import RG, SUB, TENANT, TOKEN, AmlWorkspace, register_context
from tests.support import train_and_register, unique

DEV = "ws-dev-" + uuid.uuid4().hex[:6]
REGISTRY = "contoso-blobs"
PROD = "ws-prod-" + uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def prod_backing(tmp_path_factory: pytest.TempPathFactory, aml: AmlWorkspace) -> Iterator[MlflowServer]:
    """The second workspace's own MLflow store, so a copy lands somewhere the source is not."""
    with MlflowServer(tmp_path_factory.mktemp("aml-prod")) as backing:
        aml.contract.add_workspace(RG, DEV, str(uuid.uuid4()))
        aml.contract.add_workspace(RG, PROD, str(uuid.uuid4()), mlflow_url=backing.url)
        yield backing


@pytest.fixture(scope="module")
def blob_registry(aml: AmlWorkspace, test_ca: TestCA) -> Iterator[AmlRegistryContract]:
    """An Azure ML registry whose temporary upload containers are in the workspaces' Azurite (Azurite
    copies between blobs of one instance only)."""
    contract = AmlRegistryContract(token=TOKEN, tenant_id=TENANT, azurite=aml.azurite)
    contract.add_registry(REGISTRY, SUB, "rg-registries", "westeurope")
    with HttpsServer(contract.app, test_ca) as server:
        contract.base_url = server.url
        yield contract


@pytest.fixture(scope="module")
def far_registry(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[AmlRegistryContract]:
    """An Azure ML registry on an Azurite of its own: its storage cannot read the workspaces' blobs."""
    with Azurite(tmp_path_factory.mktemp("far-registry")) as storage:
        contract = AmlRegistryContract(token=TOKEN, tenant_id=TENANT, azurite=storage)
        contract.add_registry(REGISTRY, SUB, "rg-registries", "westeurope")
        with HttpsServer(contract.app, test_ca) as server:
            contract.base_url = server.url
            yield contract


def _workspace(name: str, url: str, extra: str = "") -> str:
    return (
        f'    kind: azureml\n    subscription_id: "{SUB}"\n    resource_group: {RG}\n    workspace: {name}\n'
        f"    arm_endpoint: {url}\n{extra}"
    )


def _config(aml: AmlWorkspace, source_url: str, *, storage: bool = True) -> str:
    endpoint = f"    storage_endpoint: {aml.azurite.blob_url}\n" if storage else ""
    return (
        f'sources:\n  mlflow: {{tracking_uri: "{source_url}"}}\n  azureml: {{registry: aml-dev}}\n'
        f"registries:\n  aml-dev:\n{_workspace(DEV, aml.url, endpoint)}  aml-prod:\n{_workspace(PROD, aml.url)}"
    )


def _resolve(ctx: ActionContext) -> None:
    """Resolve the workspaces with the contract's token (the app's identity in production)."""
    credential = StaticTokenCredential(TOKEN)
    for entry in ctx.config.registries.values():
        if isinstance(entry, AzureMLRegistry):
            mlflow_tracking_uri(entry, credential=credential)


def _workspace_client(ctx: ActionContext) -> MlflowClient:
    """An MLflow client on the action's target workspace."""
    uri = mlflow_tracking_uri(ctx.target(AzureMLRegistry))
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _into_dev(tmp_path: Path, aml: AmlWorkspace, source: MlflowServer, name: str, version: str) -> str:
    """The dev workspace's version of a source model (copied in by the MLflow -> Azure ML path)."""
    params = {"source": "mlflow", "source_tracking_uri": source.url}
    ctx = register_context(tmp_path, _config(aml, source.url), name, version, params, "aml-dev")
    _resolve(ctx)
    return str(RegisterExecutor().execute(ctx).outputs.to_dict()["model_version"])


def _big_dev_model(
    tmp_path: Path, aml: AmlWorkspace, source: MlflowServer, prefix: str
) -> tuple[str, str, pd.DataFrame, Path]:
    """A dev-workspace version whose files are a small model plus 6 MB of weights: (name, dev version,
    input example, the files as logged)."""
    name = unique(prefix)
    version, example = train_and_register(source.url, name)
    client = MlflowClient(source.url)
    run_id = client.get_model_version(name, version).run_id
    assert run_id is not None
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            client.get_model_version_download_uri(name, version), dst_path=str(tmp_path / "m"), tracking_uri=source.url
        )
    )
    (model_dir / "weights.bin").write_bytes(os.urandom(6 << 20))
    client.log_artifacts(run_id, str(model_dir), artifact_path="model")
    big = client.create_model_version(name, source=f"runs:/{run_id}/model", run_id=run_id).version
    (tmp_path / "dev").mkdir()
    return name, _into_dev(tmp_path / "dev", aml, source, name, str(big)), example, model_dir


@dataclass(frozen=True)
class DevModel:
    name: str
    source_version: str
    version: str  # in the dev workspace
    example: pd.DataFrame


@pytest.fixture(scope="module")
def dev_model(
    tmp_path_factory: pytest.TempPathFactory,
    source_server: MlflowServer,
    aml: AmlWorkspace,
    prod_backing: MlflowServer,
    test_ca: TestCA,
) -> Iterator[DevModel]:
    """A model in the dev workspace, its files in dev's blob storage (copied in from an MLflow server)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("REQUESTS_CA_BUNDLE", str(test_ca.bundle))
        env.setenv("SSL_CERT_FILE", str(test_ca.bundle))
        name = unique("churn")
        version, example = train_and_register(source_server.url, name)
        dev = _into_dev(tmp_path_factory.mktemp("dev"), aml, source_server, name, version)
    yield DevModel(name, version, dev, example)


class TestCopyOutOfAnAzureMLWorkspace:
    def test_a_workspace_model_is_copied_to_a_second_workspace_with_its_files_once(
        self,
        tmp_path: Path,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        prod_backing: MlflowServer,
        dev_model: DevModel,
        trust_test_ca: TestCA,
    ) -> None:
        name, version, dev_version, example = (
            dev_model.name,
            dev_model.source_version,
            dev_model.version,
            dev_model.example,
        )
        config = _config(aml, source_server.url)

        # an Azure ML event about the dev workspace's version: copied out of dev into prod
        params = {"source": "azureml", "source_registry": "aml-dev"}
        ctx = register_context(tmp_path, config, name, dev_version, params, "aml-prod")
        first = RegisterExecutor().execute(ctx)

        prod = _workspace_client(ctx)
        [copy] = prod.search_model_versions(f"name='{name}'")
        assert first.outputs.to_dict()["reused"] is False and first.outputs.to_dict()["model_version"] == copy.version
        assert copy.tags["modelops.source_registry"] == "aml-dev"
        assert copy.tags["modelops.source_version"] == dev_version
        assert MlflowClient(prod_backing.url).get_model_version(name, copy.version).run_id == copy.run_id

        # the files were read from dev's storage through read SAS URLs and written under prod's copy run
        downloads = aml.contract.calls("GET", rf"^/history/v1\.0/.*/workspaces/{DEV}/.*/artifacts/contentinfo$")
        assert downloads and {d["authorization"] for d in downloads} == {f"Bearer {TOKEN}"}
        prefix = f"ExperimentRun/dcid.{copy.run_id}/model/"
        blobs = {b.name[len(prefix) :] for b in aml.contract.container().list_blobs(name_starts_with=prefix)}
        assert {"MLmodel", "input_example.json", "requirements.txt"} <= blobs
        local = tmp_path / "prod-copy"
        for blob in blobs:
            (local / blob).parent.mkdir(parents=True, exist_ok=True)
            (local / blob).write_bytes(aml.contract.container().download_blob(prefix + blob).readall())
        original = mlflow.artifacts.download_artifacts(
            MlflowClient(source_server.url).get_model_version_download_uri(name, version),
            dst_path=str(tmp_path / "o"),
            tracking_uri=source_server.url,
        )
        pd.testing.assert_series_equal(
            pd.Series(mlflow.pyfunc.load_model(str(local)).predict(example)),
            pd.Series(mlflow.pyfunc.load_model(original).predict(example)),
        )

        # once: the same event again reuses the copy
        again = RegisterExecutor().execute(register_context(tmp_path, config, name, dev_version, params, "aml-prod"))
        assert again.outputs.to_dict()["reused"] is True
        assert len(list(prod.search_model_versions(f"name='{name}'"))) == 1

    def test_between_workspaces_the_files_are_copied_inside_blob_storage_not_through_the_process(
        self,
        tmp_path: Path,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        prod_backing: MlflowServer,
        trust_test_ca: TestCA,
    ) -> None:
        """Both workspaces keep their files in blob storage: the storage service copies them (Put Block
        From URL, in blocks), and only requests pass through the copying process."""
        name, dev_version, example, model_dir = _big_dev_model(tmp_path, aml, source_server, "blobcopy")
        weights = (model_dir / "weights.bin").read_bytes()
        params = {"source": "azureml", "source_registry": "aml-dev"}
        ctx = register_context(tmp_path, _config(aml, source_server.url), name, dev_version, params, "aml-prod")
        progress: list[str] = []
        ctx.progress = progress.append
        before = _process_io()
        outputs = RegisterExecutor().execute(ctx).outputs.to_dict()
        moved = {k: v - before[k] for k, v in _process_io().items()}

        assert any("inside blob storage" in line for line in progress), progress
        # 6 MB of weights, and well under 1 MB read or written by this process (requests and answers only)
        assert moved["rchar"] < 1 << 20 and moved["wchar"] < 1 << 20, moved
        prod = _workspace_client(ctx)
        copy = prod.get_model_version(name, outputs["model_version"])
        prefix = f"ExperimentRun/dcid.{copy.run_id}/model/"
        container = aml.contract.container()
        assert container.download_blob(prefix + "weights.bin").readall() == weights
        local = tmp_path / "prod-copy"
        for blob in container.list_blobs(name_starts_with=prefix):
            (local / blob.name[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
            (local / blob.name[len(prefix) :]).write_bytes(container.download_blob(blob.name).readall())
        predicted = mlflow.pyfunc.load_model(str(local)).predict(example)
        assert list(predicted) == list(mlflow.pyfunc.load_model(str(model_dir)).predict(example))

    def test_into_an_azure_ml_registry_the_files_are_copied_inside_blob_storage(
        self,
        tmp_path: Path,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        prod_backing: MlflowServer,
        blob_registry: AmlRegistryContract,
        trust_test_ca: TestCA,
    ) -> None:
        """The registry hands out a temporary SAS container; the storage service fills it from the
        workspace's read SAS URLs, and the version names that folder: nothing is downloaded."""
        name, dev_version, example, model_dir = _big_dev_model(tmp_path, aml, source_server, "blobreg")
        config = _config(aml, source_server.url) + (
            f"  shared:\n    kind: azureml-registry\n    registry_name: {REGISTRY}\n    location: westeurope\n"
            f"    discovery_endpoint: {blob_registry.base_url}\n"
        )
        params = {"source": "azureml", "source_registry": "aml-dev"}
        ctx = register_context(tmp_path, config, name, dev_version, params, "shared")
        progress: list[str] = []
        ctx.progress = progress.append
        # rchar counts files read too: azure-ai-ml's modules (~15 MB) are read on its first use, so before
        RegistryModelsClient(ctx.target(AzureMLSharedRegistry), StaticTokenCredential(TOKEN)).versions(name)
        before = _process_io()
        outputs = RegistryRegisterExecutor(StaticTokenCredential(TOKEN)).execute(ctx).outputs.to_dict()
        moved = {k: v - before[k] for k, v in _process_io().items()}

        assert any("inside blob storage" in line for line in progress), progress
        # a download would read the 6 MB weights from a socket and write them to a file, an upload read
        # and send them again
        assert moved["rchar"] < 3 << 20 and moved["wchar"] < 1 << 20, moved
        assert outputs["model_uri"] == f"azureml://registries/{REGISTRY}/models/{name}/versions/1"
        created = blob_registry.versions[(REGISTRY, name)]["1"]["properties"]
        assert created["modelType"] == "mlflow_model" and "python_function" in created["flavors"]
        assert created["tags"]["modelops.source_registry"] == "aml-dev"
        files = blob_registry.blobs(created["modelUri"])
        assert files["weights.bin"] == (model_dir / "weights.bin").read_bytes()
        local = tmp_path / "registry-copy"
        for path, data in files.items():
            (local / path).parent.mkdir(parents=True, exist_ok=True)
            (local / path).write_bytes(data)
        predicted = mlflow.pyfunc.load_model(str(local)).predict(example)
        assert list(predicted) == list(mlflow.pyfunc.load_model(str(model_dir)).predict(example))

    def test_a_registry_whose_storage_refuses_the_copy_gets_the_files_streamed_and_why_is_logged(
        self,
        tmp_path: Path,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        prod_backing: MlflowServer,
        far_registry: AmlRegistryContract,
        trust_test_ca: TestCA,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """Azurite copies between blobs of one instance only: a registry on another one refuses Put Block
        From URL, as a storage account behind a network rule would, and the copy streams the files."""
        name, dev_version, example, model_dir = _big_dev_model(tmp_path, aml, source_server, "farreg")
        config = _config(aml, source_server.url) + (
            f"  shared:\n    kind: azureml-registry\n    registry_name: {REGISTRY}\n    location: westeurope\n"
            f"    discovery_endpoint: {far_registry.base_url}\n"
        )
        params = {"source": "azureml", "source_registry": "aml-dev"}
        ctx = register_context(tmp_path, config, name, dev_version, params, "shared")
        with caplog.at_level(logging.WARNING):
            RegistryRegisterExecutor(StaticTokenCredential(TOKEN)).execute(ctx)

        assert any("streaming the files: the storage service refused" in r.getMessage() for r in caplog.records)
        created = far_registry.versions[(REGISTRY, name)]["1"]["properties"]
        files = far_registry.blobs(created["modelUri"])
        assert files["weights.bin"] == (model_dir / "weights.bin").read_bytes()

    def test_storage_the_cloud_does_not_name_fails_the_copy_naming_the_setting(
        self,
        tmp_path: Path,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        prod_backing: MlflowServer,
        trust_test_ca: TestCA,
    ) -> None:
        """Without `storage_endpoint`, azureml-mlflow would skip every file and the copy would be empty."""
        name = unique("fraud")
        version, _ = train_and_register(source_server.url, name)
        dev_version = _into_dev(tmp_path, aml, source_server, name, version)

        params = {"source": "azureml", "source_registry": "aml-dev"}
        ctx = register_context(
            tmp_path, _config(aml, source_server.url, storage=False), name, dev_version, params, "aml-prod"
        )
        with pytest.raises(PermanentError, match=r"127\.0\.0\.1.*set `storage_endpoint: <blob endpoint URL>`"):
            RegisterExecutor().execute(ctx)
        assert not list(_workspace_client(ctx).search_model_versions(f"name='{name}'"))


def _process_io() -> dict[str, int]:
    """Bytes this process read and wrote through system calls (sockets and files alike)."""
    lines = Path("/proc/self/io").read_text().splitlines()
    return {k: int(v) for k, v in (line.split(": ") for line in lines) if k in ("rchar", "wchar")}


def test_download_urls_on_the_clouds_blob_hosts_or_the_configured_endpoint_only() -> None:
    def check(url: str, suffix: str = "core.windows.net", endpoint: str | None = None) -> None:
        check_download_url(url, storage_suffix=suffix, storage_endpoint=endpoint, workspace="ws")

    check("https://acct.blob.core.usgovcloudapi.net/c/b?sig=x", "core.usgovcloudapi.net")
    check("https://stack.local/acct/c/b", endpoint="https://stack.local/acct")
    for url, suffix, endpoint in [
        ("https://acct.blob.core.windows.net/c/b?sig=x", "core.usgovcloudapi.net", None),
        ("http://acct.blob.core.windows.net/c/b", "core.windows.net", None),
        ("https://stack.local/acctX/c/b", "core.windows.net", "https://stack.local/acct"),
    ]:
        with pytest.raises(PermanentError, match="storage_endpoint"):
            check(url, suffix, endpoint)
