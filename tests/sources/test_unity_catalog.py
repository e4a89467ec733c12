"""Unity Catalog as a source: the poller turns a new UC version and an alias into one event each, and the
register action copies the version into an Azure ML workspace with its files, read the way MLflow's UC client
reads them (temporary model-version credentials, then the storage they grant).

Over HTTPS: MLflow's real `UcModelRegistryStore` against the UC contract server
(tests/contract/databricks_uc_server.py), the files in Azurite behind a real SAS, and the Azure ML
workspace contract (real azureml-mlflow) as the target.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from shared.adapters.azureml_workspace import mlflow_tracking_uri
from shared.adapters.registry_uris import registry_uris
from shared.adapters.uc_artifacts import blob_location
from shared.config.loader import load_config
from shared.config.registries import AzureMLRegistry
from shared.errors import ConfigError, PermanentError
from shared.service.reactor import Reactor
from shared.service.reconcile import reconcile_sources as poll_sources
from tests.contract.databricks_uc_server import UnityCatalogContract
from tests.contract.https import HttpsServer, TestCA
from tests.registries.conftest import TOKEN, AmlWorkspace, aml_registry_yaml
from tests.spine.apptest import make_app
from tests.support import doc, unique, write_config

PAT = "dapi-uc-contract-0123456789"

CONFIG = """
sources:
  uc: {kind: databricks-uc, registry: uc-main, poll: true}
registries:
  uc-main:
    kind: databricks-uc
    host: "%(uc)s"
    auth: token
    token_setting: UC_TOKEN
    storage_endpoint: "%(blob)s"
%(aml)s
rules:
  - name: new-uc-versions
    on: model_version.created
    source: uc
    do: [{register: aml-prod}]
  - name: champion
    on: model_version.alias_set
    alias: champion
    do: [{register: aml-prod}]
worker: {poll_interval_seconds: 0.2, backoff_base_seconds: 0.2}
"""


@dataclass
class Catalog:
    contract: UnityCatalogContract
    url: str


@pytest.fixture(scope="module")
def uc(aml: AmlWorkspace, test_ca: TestCA) -> Iterator[Catalog]:
    """The UC registry, its files in the workspace contract's Azurite (one emulator for both)."""
    contract = UnityCatalogContract(token=PAT, azurite=aml.azurite)
    with HttpsServer(contract.app, test_ca) as server:
        yield Catalog(contract, server.url)


@pytest.fixture
def catalog(uc: Catalog) -> Catalog:
    """The shared UC registry, emptied: each test's poller sees only that test's models."""
    uc.contract.forget_models()
    return uc


@pytest.fixture
def uc_env(monkeypatch: pytest.MonkeyPatch, trust_test_ca: TestCA) -> pytest.MonkeyPatch:
    """Only the registry entry's profile may authenticate: no ambient Databricks or MLflow settings."""
    for name in (
        "DATABRICKS_HOST",
        "DATABRICKS_TOKEN",
        "DATABRICKS_CONFIG_PROFILE",
        "DATABRICKS_CONFIG_FILE",
        "MLFLOW_TRACKING_URI",
        "MLFLOW_REGISTRY_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UC_TOKEN", PAT)
    return monkeypatch


def _model_folder(root: Path, bias: float = 0.0) -> tuple[Path, pd.DataFrame]:
    """A small MLflow model folder, as a UC version's storage holds one."""
    import numpy as np
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(11)
    x = pd.DataFrame(rng.normal(size=(32, 3)), columns=["a", "b", "c"])
    model = LinearRegression().fit(x, x["a"] * 3 - x["c"] + bias)
    folder = root / "uc-model"
    mlflow.sklearn.save_model(
        model,
        str(folder),
        signature=infer_signature(x, model.predict(x)),
        input_example=x.head(3),
        pip_requirements=["scikit-learn"],
    )
    return folder, x.head(5)


def _app(tmp_path: Path, uc: Catalog, aml: AmlWorkspace) -> Reactor:
    config = CONFIG % {"uc": uc.url, "blob": aml.azurite.blob_url, "aml": aml_registry_yaml(aml.url).rstrip("\n")}
    _, reactor = make_app(tmp_path, config=config.replace("%", "%%"))
    from tests.contract.credentials import StaticTokenCredential

    # resolve the workspace with the contract's token (the app's managed identity in Azure)
    mlflow_tracking_uri(reactor.config.registries["aml-prod"], credential=StaticTokenCredential(TOKEN))  # type: ignore[arg-type]
    return reactor


def _run(reactor: Reactor, model: str) -> list[Any]:
    actions = reactor.ledger.list_actions(model=model)
    return reactor.worker().run_until_done([a.id for a in actions], timeout=240)


def _workspace(reactor: Reactor) -> MlflowClient:
    cfg = reactor.config.registries["aml-prod"]
    assert isinstance(cfg, AzureMLRegistry)
    uri = mlflow_tracking_uri(cfg)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


class TestUnityCatalogSource:
    def test_a_new_version_and_an_alias_are_polled_once_and_the_version_copied_with_its_files(
        self,
        tmp_path: Path,
        catalog: Catalog,
        aml: AmlWorkspace,
        uc_env: pytest.MonkeyPatch,
    ) -> None:
        name = f"main.ml.{unique('churn')}"
        folder, example = _model_folder(tmp_path)
        version = catalog.contract.add_version(name, folder, run_id="run-" + unique("uc"), tags={"team": "risk"})
        reactor = _app(tmp_path, catalog, aml)
        before = len(catalog.contract.requests)

        first = poll_sources(reactor)["uc"]
        assert (first["versions"], first["aliases"], first["accepted"]) == (1, 0, 1), first
        [done] = _run(reactor, name)
        assert done.status == "succeeded", done.error

        workspace = _workspace(reactor)
        [copy] = workspace.search_model_versions(f"name='{name}'")
        assert done.outputs.to_dict()["model_version"] == copy.version
        assert copy.tags["modelops.source"] == "uc" and copy.tags["modelops.source_registry"] == "uc-main"
        assert copy.tags["modelops.source_version"] == version and copy.tags["team"] == "risk"

        # the files came through MLflow's UC store: the storage location, READ credentials, then blob reads
        seen = catalog.contract.requests[before:]
        assert {r["authorization"] for r in seen if r["path"].startswith("/api/")} == {f"Bearer {PAT}"}
        [grant] = [r for r in seen if r["path"].endswith("/model-versions/generate-temporary-credentials")]
        assert '"MODEL_VERSION_OPERATION_READ"' in grant["body"] and name in grant["body"]
        assert any(r["path"].endswith("/model-versions/get-download-uri") for r in seen)

        # the copy in the workspace's blob storage is a working model with the original's predictions
        prefix = f"ExperimentRun/dcid.{copy.run_id}/model/"
        blobs = {b.name[len(prefix) :] for b in aml.contract.container().list_blobs(name_starts_with=prefix)}
        assert blobs == {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
        assert "MLmodel" in blobs
        local = tmp_path / "copied"
        for blob in blobs:
            (local / blob).parent.mkdir(parents=True, exist_ok=True)
            (local / blob).write_bytes(aml.contract.container().download_blob(prefix + blob).readall())
        pd.testing.assert_series_equal(
            pd.Series(mlflow.pyfunc.load_model(str(local)).predict(example)),
            pd.Series(mlflow.pyfunc.load_model(str(folder)).predict(example)),
        )

        # an alias set on that version: one alias event; its register step is the same action, run once
        catalog.contract.set_alias(name, "champion", version)
        second = poll_sources(reactor)["uc"]
        assert (second["versions"], second["aliases"], second["accepted"]) == (0, 1, 1), second
        assert [a.id for a in reactor.ledger.list_actions(model=name)] == [done.id]
        # ...and MLflow's own UC client resolves the alias the event names
        _, registry_uri = registry_uris(reactor.config.registries["uc-main"])  # type: ignore[arg-type]
        assert MlflowClient(registry_uri=registry_uri).get_model_version_by_alias(name, "champion").version == version

        # polling again finds nothing new
        third = poll_sources(reactor)["uc"]
        assert (third["versions"], third["aliases"], third["accepted"]) == (0, 0, 0), third

        # an operator's second request (`modelops register --force`) reuses the copy
        again = reactor.request_action(
            kind="register", target="aml-prod", model_name=name, model_version=version, source="uc", force=True
        )
        [rerun] = reactor.worker().run_until_done(again.action_ids, timeout=120)
        assert rerun.status == "succeeded" and rerun.outputs.to_dict()["reused"] is True, rerun.error
        assert len(list(workspace.search_model_versions(f"name='{name}'"))) == 1

    def test_a_version_from_a_logged_model_without_a_run_brings_the_params_and_metrics_it_holds(
        self, tmp_path: Path, catalog: Catalog, aml: AmlWorkspace, uc_env: pytest.MonkeyPatch
    ) -> None:
        """An MLflow 3 version in UC: `run_id` empty, the logged model's params and metrics on the version itself
        (the workspace's tracking service holds no run for it). Into Azure ML, which has no logged models of its
        own, they land on the copy's run."""
        name = f"main.ml.{unique('lm')}"
        folder, _ = _model_folder(tmp_path)
        model_id = "m-" + uuid.uuid4().hex
        metric = {"key": "rmse", "value": 0.25, "timestamp": 1_780_000_000_000, "step": 0, "model_id": model_id}
        logged_model = {
            "model_id": model_id,
            "model_params": [{"name": "alpha", "value": "0.1"}, {"name": "solver", "value": "lsqr"}],
            "model_metrics": [{**metric, "dataset_name": "holdout", "dataset_digest": "h0"}],
        }
        catalog.contract.add_version(name, folder, logged_model=logged_model)
        reactor = _app(tmp_path, catalog, aml)
        before = len(catalog.contract.requests)

        assert poll_sources(reactor)["uc"]["accepted"] == 1
        [done] = _run(reactor, name)

        assert done.status == "succeeded", done.error
        outputs = done.outputs.to_dict()
        assert (outputs["params_copied"], outputs["metrics_copied"], outputs["metric_points_copied"]) == (2, 1, 1)
        [copy] = _workspace(reactor).search_model_versions(f"name='{name}'")
        assert copy.tags["modelops.source_model_id"] == model_id and "modelops.source_run_id" not in copy.tags
        run = _workspace(reactor).get_run(str(copy.run_id))
        assert run.data.params == {"alpha": "0.1", "solver": "lsqr"} and run.data.metrics == {"rmse": 0.25}
        asked = [r["path"] for r in catalog.contract.requests[before:]]
        assert not [p for p in asked if re.search(r"/mlflow/(runs|logged-models)/get", p)]  # the version held it all

    def test_an_expired_sas_fails_the_copy_permanently_saying_storage_refused_it(
        self,
        tmp_path: Path,
        catalog: Catalog,
        aml: AmlWorkspace,
        uc_env: pytest.MonkeyPatch,
    ) -> None:
        name = f"main.ml.{unique('expired')}"
        folder, _ = _model_folder(tmp_path)
        catalog.contract.add_version(name, folder)
        reactor = _app(tmp_path, catalog, aml)
        catalog.contract.sas_lifetime = -600  # Azurite itself refuses the expired signature (403)
        try:
            poll_sources(reactor)
            [failed] = _run(reactor, name)
        finally:
            catalog.contract.sas_lifetime = 3600
        assert failed.status == "failed" and failed.attempts == 1, failed
        assert "storage refused the temporary credential Unity Catalog issued" in str(failed.error)
        assert "HTTP 403" in str(failed.error) and "sig=" not in str(failed.error)
        grants = [r for r in catalog.contract.requests if r["path"].endswith("/generate-temporary-credentials")]
        assert sum(name in r["body"] for r in grants) == 2  # refreshed once, then given up
        assert not list(_workspace(reactor).search_model_versions(f"name='{name}'"))

    def test_a_sas_storage_refuses_is_replaced_once_by_fresh_credentials(
        self,
        tmp_path: Path,
        catalog: Catalog,
        aml: AmlWorkspace,
        uc_env: pytest.MonkeyPatch,
    ) -> None:
        name = f"main.ml.{unique('forged')}"
        folder, _ = _model_folder(tmp_path)
        catalog.contract.add_version(name, folder)
        reactor = _app(tmp_path, catalog, aml)
        catalog.contract.forged_grants = 1  # the first SAS's signature is wrong: Azurite answers 403
        poll_sources(reactor)
        [done] = _run(reactor, name)
        assert done.status == "succeeded" and done.attempts == 1, done.error
        grants = [r for r in catalog.contract.requests if r["path"].endswith("/generate-temporary-credentials")]
        assert sum(name in r["body"] for r in grants) == 2
        assert len(list(_workspace(reactor).search_model_versions(f"name='{name}'"))) == 1

    def test_a_wrong_token_fails_the_copy_naming_the_refusal(
        self,
        tmp_path: Path,
        catalog: Catalog,
        aml: AmlWorkspace,
        uc_env: pytest.MonkeyPatch,
    ) -> None:
        name = f"main.ml.{unique('denied')}"
        folder, _ = _model_folder(tmp_path)
        version = catalog.contract.add_version(name, folder)
        reactor = _app(tmp_path, catalog, aml)
        poll_sources(reactor)
        uc_env.setenv("UC_TOKEN", "dapi-revoked")  # revoked between the poll and the copy
        [failed] = _run(reactor, name)
        assert failed.status == "failed" and failed.attempts == 1, failed
        assert f"cannot read source model version {name}/{version}" in str(failed.error)
        assert "Invalid access token" in str(failed.error) and "dapi-revoked" not in str(failed.error)


def test_abfss_locations_map_to_the_blob_endpoint_of_their_account() -> None:
    where = blob_location("abfss://models@acct.dfs.core.usgovcloudapi.net/ms-1/models/m/versions/v")
    assert (where.account_url, where.container, where.prefix) == (
        "https://acct.blob.core.usgovcloudapi.net",
        "models",
        "ms-1/models/m/versions/v",
    )
    assert blob_location("abfss://c@a.dfs.core.windows.net/p/", "http://127.0.0.1:10000/a/").account_url == (
        "http://127.0.0.1:10000/a"
    )
    for location in ("s3://bucket/p", "abfss://a.dfs.core.windows.net/p", "https://a.blob.core.windows.net/c/p"):
        with pytest.raises(PermanentError, match="only Azure storage is read"):
            blob_location(location)


def test_credentials_for_other_clouds_are_refused_naming_what_is_unsupported() -> None:
    from mlflow.protos.databricks_uc_registry_messages_pb2 import AwsCredentials, StorageMode, TemporaryCredentials

    from shared.adapters.uc_artifacts import _sas_token

    aws = TemporaryCredentials(aws_temp_credentials=AwsCredentials(access_key_id="AKIA", secret_access_key="s"))
    with pytest.raises(PermanentError, match=r"aws_temp_credentials credentials for m v1.*AWS, GCS and R2"):
        _sas_token(aws, "m", "1")
    default = TemporaryCredentials(storage_mode=StorageMode.DEFAULT_STORAGE)
    with pytest.raises(PermanentError, match="Databricks default storage"):
        _sas_token(default, "m", "1")


def test_the_docs_unity_catalog_example_validates(tmp_path: Path) -> None:
    text = doc("sources.md")
    block = text.split("**Unity Catalog as a source.**", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    config = load_config(write_config(tmp_path / "uc.yaml", block.replace("<sub>", "s1")), env={})
    assert config.sources["uc"].kind == "databricks-uc" and config.sources["uc"].poll
    assert config.rules[0].source == ["uc"] and config.rules[0].do[0].target == "aml-prod"
    with pytest.raises(ConfigError, match="storage_endpoint.*databricks-uc"):
        load_config(
            write_config(
                tmp_path / "bad.yaml",
                'registries:\n  dbx: {kind: databricks, host: "https://x", storage_endpoint: "https://y"}\n',
            ),
            env={},
        )
