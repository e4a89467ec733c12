"""Register into an Azure ML registry through the real azure-ai-ml `MLClient(registry_name=...)`, over
HTTPS, against the registry contract (discovery, model containers/versions, temporary SAS upload) with
the blobs in a real Azurite over HTTPS."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest

from shared.errors import PermanentError
from shared.executors.register_aml_registry import RegistryRegisterExecutor
from shared.executors.registry import ExecutorRegistry
from shared.local.mlflow_server import MlflowServer
from tests.contract.aml_registry_server import AmlRegistryContract
from tests.contract.azurite import Azurite
from tests.contract.credentials import StaticTokenCredential
from tests.contract.https import HttpsServer, TestCA
from tests.registries.conftest import SUB, TENANT, TOKEN, register_context
from tests.support import train_and_register, unique

REGISTRY = "contoso-shared"
RG = "rg-registries"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[AmlRegistryContract]:
    with Azurite(tmp_path_factory.mktemp("registry-blobs"), cert=test_ca.cert, key=test_ca.key) as storage:
        contract = AmlRegistryContract(token=TOKEN, tenant_id=TENANT, azurite=storage)
        contract.add_registry(REGISTRY, SUB, RG, "westeurope")
        with HttpsServer(contract.app, test_ca) as server:
            contract.base_url = server.url
            yield contract


def _config(source: MlflowServer, registry: AmlRegistryContract, name: str = REGISTRY) -> str:
    return (
        f'sources:\n  mlflow: {{tracking_uri: "{source.url}"}}\nregistries:\n'
        f"  shared:\n    kind: azureml-registry\n    registry_name: {name}\n    location: westeurope\n"
        f"    discovery_endpoint: {registry.base_url}\n"
    )


def _params(source: MlflowServer) -> dict[str, str]:
    return {"source": "mlflow", "source_tracking_uri": source.url}


def _versions(registry: AmlRegistryContract, name: str) -> dict[str, dict[str, Any]]:
    return registry.versions.get((REGISTRY, name), {})


class TestRegisterIntoAnAzureMLRegistry:
    def test_a_version_is_created_from_the_source_files_once_and_reused_after(
        self, tmp_path: Path, source_server: MlflowServer, registry: AmlRegistryContract, trust_test_ca: TestCA
    ) -> None:
        name = unique("churn")
        version, example = train_and_register(source_server.url, name)
        ctx = register_context(
            tmp_path, _config(source_server, registry), name, version, _params(source_server), target="shared"
        )
        assert isinstance(ExecutorRegistry().get("register", ctx.target_config()), RegistryRegisterExecutor)
        credential = StaticTokenCredential(TOKEN)

        first = RegistryRegisterExecutor(credential).execute(ctx).outputs.to_dict()

        assert first["reused"] is False and first["model_version"] == "1" and first["registry"] == "shared"
        assert first["model_uri"] == f"azureml://registries/{REGISTRY}/models/{name}/versions/1"
        created = _versions(registry, name)["1"]["properties"]
        assert created["modelType"] == "mlflow_model"
        assert created["tags"]["modelops.source_name"] == name
        assert created["tags"]["modelops.source_version"] == version
        assert created["tags"]["modelops.source_registry"] == source_server.url
        assert "python_function" in created["flavors"]

        # the files went up through the temporary SAS the registry handed out, and load as the source model
        files = registry.blobs(str(created["modelUri"]))
        assert {"MLmodel", "input_example.json", "requirements.txt"} <= set(files)
        local = tmp_path / "from-registry"
        for path, content in files.items():
            (local / path).parent.mkdir(parents=True, exist_ok=True)
            (local / path).write_bytes(content)
        source_uri = mlflow.MlflowClient(source_server.url).get_model_version_download_uri(name, version)
        original = mlflow.artifacts.download_artifacts(
            source_uri, dst_path=str(tmp_path / "o"), tracking_uri=source_server.url
        )
        pd.testing.assert_series_equal(
            pd.Series(mlflow.pyfunc.load_model(str(local)).predict(example)),
            pd.Series(mlflow.pyfunc.load_model(original).predict(example)),
        )

        # a second request for the same source version (another event) finds the copy by its lineage
        again = RegistryRegisterExecutor(credential).execute(
            register_context(
                tmp_path,
                _config(source_server, registry),
                name,
                version,
                _params(source_server),
                target="shared",
                event_id="evt_second",
            )
        )
        assert again.outputs.to_dict()["reused"] is True and again.outputs.to_dict()["model_version"] == "1"
        assert list(_versions(registry, name)) == ["1"]
        uploads = registry.calls("PUT", rf"/registries/{REGISTRY}/tempdatarefs/{name}/versions/")
        assert len(uploads) == 1

        # a new source version becomes the next registry version
        v2, _ = train_and_register(source_server.url, name, bias=1.0)
        newer = RegistryRegisterExecutor(credential).execute(
            register_context(tmp_path, _config(source_server, registry), name, v2, _params(source_server), "shared")
        )
        assert newer.outputs.to_dict()["model_version"] == "2" and newer.outputs.to_dict()["reused"] is False
        sources = {v: b["properties"]["tags"]["modelops.source_version"] for v, b in _versions(registry, name).items()}
        assert sources == {"1": version, "2": v2}

        # discovery, reads, the upload grant and the create all carried the identity's token
        mine = [r for r in registry.requests if name in r["path"] or r["path"].endswith("/discovery")]
        assert mine and {r["authorization"] for r in mine} == {f"Bearer {TOKEN}"}
        assert {r["query"].get("api-version") for r in mine if "/mferp/" in r["path"]} == {
            "2021-10-01-dataplanepreview"
        }

    def test_an_unknown_registry_is_a_permanent_error_naming_it(
        self, tmp_path: Path, source_server: MlflowServer, registry: AmlRegistryContract, trust_test_ca: TestCA
    ) -> None:
        missing = "no-such-" + uuid.uuid4().hex[:6]
        ctx = register_context(
            tmp_path, _config(source_server, registry, missing), "m", "1", _params(source_server), target="shared"
        )
        with pytest.raises(PermanentError, match=missing) as failed:
            RegistryRegisterExecutor(StaticTokenCredential(TOKEN)).execute(ctx)
        assert failed.value.retryable is False
        assert len(registry.calls("GET", rf"/registries/{missing}/discovery$")) == 1  # a 404 is not retried
        assert not registry.calls("PUT", rf"/registries/{missing}/")


class TestRegistryConfig:
    def test_the_readme_example_validates_and_bad_values_name_key_and_fix(self, tmp_path: Path) -> None:
        from shared.config.loader import load_config
        from shared.config.registries import AzureMLSharedRegistry
        from shared.errors import ConfigError

        good = tmp_path / "good.yaml"
        good.write_text(
            "registries:\n"
            "  shared: {kind: azureml-registry, registry_name: contoso-ml-registry, location: westeurope}\n"
            "rules:\n  - {on: model_version.alias_set, alias: champion, do: [{register: shared}]}\n"
        )
        cfg = load_config(good, env={}).registries["shared"]
        assert isinstance(cfg, AzureMLSharedRegistry) and cfg.cloud == "AzureCloud"

        bad = tmp_path / "bad.yaml"
        bad.write_text(
            "registries:\n  shared: {kind: azureml-registry, registry_name: contoso, location: West Europe,"
            " discovery_endpoint: 'http://x'}\n"
        )
        with pytest.raises(ConfigError) as refused:
            load_config(bad, env={})
        text = str(refused.value)
        assert "registries.shared.azureml-registry.location" in text or "registries.shared" in text
        assert "Azure region name such as westeurope" in text and "must be an https:// URL" in text
