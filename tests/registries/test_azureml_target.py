"""Register into an Azure ML workspace through the real azureml-core / azureml-mlflow code, over HTTPS,
against the workspace contract (ARM, discovery, MLflow REST on a real MLflow server, artifacts in Azurite)."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient

from shared.adapters.azureml_workspace import mlflow_tracking_uri
from shared.config.registries import AzureMLRegistry
from shared.errors import PermanentError
from shared.executors.register import RegisterExecutor
from shared.local.mlflow_server import MlflowServer
from tests.contract.credentials import StaticTokenCredential
from tests.contract.https import TestCA
from tests.registries.conftest import TOKEN, AmlWorkspace, aml_registry_yaml, register_context
from tests.support import train_and_register, unique


def _config(source: MlflowServer, aml: AmlWorkspace, workspace: str | None = None, rule_name: str = "") -> str:
    return f'sources:\n  mlflow: {{tracking_uri: "{source.url}"}}\nregistries:\n' + aml_registry_yaml(
        aml.url, **({"workspace": workspace} if workspace else {})
    )


def _params(source: MlflowServer, **extra: str) -> dict[str, str]:
    return {"source": "mlflow", "source_tracking_uri": source.url, **extra}


class TestRegisterIntoAzureML:
    def test_a_version_is_copied_once_with_lineage_and_reused_after(
        self,
        tmp_path: Path,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        credential: StaticTokenCredential,
        trust_test_ca: TestCA,
    ) -> None:
        name = unique("churn")
        version, example = train_and_register(source_server.url, name)
        ctx = register_context(tmp_path, _config(source_server, aml), name, version, _params(source_server))
        uri = mlflow_tracking_uri(ctx.target(AzureMLRegistry), credential=credential)
        assert uri.startswith("azureml://127.0.0.1:") and f"/workspaces/{ctx.target(AzureMLRegistry).workspace}" in uri

        first = RegisterExecutor().execute(ctx)

        workspace = MlflowClient(tracking_uri=uri, registry_uri=uri)
        copies = list(workspace.search_model_versions(f"name='{name}'"))
        assert len(copies) == 1
        copy = copies[0]
        assert first.outputs.to_dict()["reused"] is False and first.outputs.to_dict()["model_version"] == str(
            copy.version
        )
        assert copy.tags["modelops.source_name"] == name
        assert copy.tags["modelops.source_version"] == version
        assert copy.tags["modelops.source_registry"] == source_server.url
        assert (
            copy.tags["modelops.source_run_id"]
            == MlflowClient(source_server.url).get_model_version(name, version).run_id
        )
        assert copy.source is not None and copy.source.startswith("azureml://experiments/modelops-reactor-copies/runs/")

        # the artifacts went through the Azure ML artifact service into the workspace's blob storage
        prefix = f"ExperimentRun/dcid.{copy.run_id}/model/"
        blobs = {b.name[len(prefix) :] for b in aml.contract.container().list_blobs(name_starts_with=prefix)}
        assert {"MLmodel", "input_example.json", "requirements.txt"} <= blobs
        local = tmp_path / "downloaded"
        for blob in blobs:
            target = local / blob
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(aml.contract.container().download_blob(prefix + blob).readall())
        copied = mlflow.pyfunc.load_model(str(local))
        original = mlflow.pyfunc.load_model(
            mlflow.artifacts.download_artifacts(
                MlflowClient(source_server.url).get_model_version_download_uri(name, version),
                dst_path=str(tmp_path / "o"),
                tracking_uri=source_server.url,
            )
        )
        pd.testing.assert_series_equal(pd.Series(copied.predict(example)), pd.Series(original.predict(example)))

        # a second run of the same action (a redelivery, a retry) finds the copy by its lineage
        again = RegisterExecutor().execute(
            register_context(tmp_path, _config(source_server, aml), name, version, _params(source_server))
        )
        assert again.outputs.to_dict()["reused"] is True and again.outputs.to_dict()["model_version"] == str(
            copy.version
        )
        assert len(list(workspace.search_model_versions(f"name='{name}'"))) == 1

        # every MLflow and artifact call carried the identity's bearer token
        mlflow_calls = aml.contract.calls("POST", r"^/mlflow/v2\.0/.*/model-versions/create$")
        artifact_calls = aml.contract.calls("POST", r"^/history/v1\.0/.*/artifacts/batch/metadata$")
        assert mlflow_calls and artifact_calls
        assert {c["authorization"] for c in mlflow_calls + artifact_calls} == {f"Bearer {TOKEN}"}

    def test_a_name_azure_ml_refuses_fails_permanently_with_the_fix(
        self,
        tmp_path: Path,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        credential: StaticTokenCredential,
        trust_test_ca: TestCA,
    ) -> None:
        name = unique("churn model")  # a space: fine for MLflow, refused by Azure ML
        version, _ = train_and_register(source_server.url, name)
        ctx = register_context(tmp_path, _config(source_server, aml), name, version, _params(source_server))
        mlflow_tracking_uri(ctx.target(AzureMLRegistry), credential=credential)
        before = len(aml.contract.requests)

        with pytest.raises(PermanentError, match=r"Set `name:` on the register step.*churn-model-") as failed:
            RegisterExecutor().execute(ctx)
        assert failed.value.retryable is False
        assert len(aml.contract.requests) == before  # refused before anything reached the workspace

    def test_the_workspace_refuses_a_bad_name_too_and_it_is_permanent(
        self,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        credential: StaticTokenCredential,
        trust_test_ca: TestCA,
        tmp_path: Path,
    ) -> None:
        """What happens if the check is bypassed: the workspace's own 400 is classified permanent."""
        from shared.adapters.mlflow_http import classify as _classify

        ctx = register_context(tmp_path, _config(source_server, aml), "x", "1", _params(source_server))
        uri = mlflow_tracking_uri(ctx.target(AzureMLRegistry), credential=credential)
        with pytest.raises(mlflow.exceptions.MlflowException) as refused:
            MlflowClient(tracking_uri=uri, registry_uri=uri).create_registered_model("bad name/with slash")
        assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
        assert isinstance(_classify(refused.value, "create"), PermanentError)


class TestWorkspaceResolution:
    def test_the_tracking_uri_is_resolved_once_per_workspace(
        self,
        aml: AmlWorkspace,
        credential: StaticTokenCredential,
        trust_test_ca: TestCA,
        tmp_path: Path,
        source_server: MlflowServer,
    ) -> None:
        workspace = unique("ws-cache")
        aml.contract.add_workspace("rg-modelops", workspace, "ws-id-" + workspace)
        ctx = register_context(tmp_path, _config(source_server, aml, workspace), "m", "1", _params(source_server))
        gets = lambda: aml.contract.calls("GET", rf"/workspaces/{workspace}$")  # noqa: E731

        first = mlflow_tracking_uri(ctx.target(AzureMLRegistry), credential=credential)
        second = mlflow_tracking_uri(ctx.target(AzureMLRegistry), credential=StaticTokenCredential("not-used"))

        assert first == second and len(gets()) == 1
        assert gets()[0]["authorization"] == f"Bearer {TOKEN}"
        assert credential.scopes and all(s[0].endswith("/.default") for s in credential.scopes)

    def test_an_unknown_workspace_is_a_permanent_error_naming_the_fix(
        self,
        aml: AmlWorkspace,
        credential: StaticTokenCredential,
        trust_test_ca: TestCA,
        tmp_path: Path,
        source_server: MlflowServer,
    ) -> None:
        ctx = register_context(tmp_path, _config(source_server, aml, "no-such-ws"), "m", "1", _params(source_server))
        with pytest.raises(PermanentError, match="check subscription_id, resource_group and workspace"):
            mlflow_tracking_uri(ctx.target(AzureMLRegistry), credential=credential)
