"""Opt-in: the same register flow against a real Azure ML workspace (and a real Databricks workspace).

Run with `pytest -m live tests/registries` after `az login` (or with a managed identity / AZURE_* service
principal) and AZURE_SUBSCRIPTION_ID, AZUREML_RESOURCE_GROUP, AZUREML_WORKSPACE set; DATABRICKS_HOST
(and DATABRICKS_TOKEN for token auth) for the Databricks test. Skipped otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mlflow import MlflowClient

from shared.adapters.azureml_workspace import mlflow_tracking_uri
from shared.adapters.registry_uris import registry_uris
from shared.config.registries import AzureMLRegistry
from shared.executors.register import RegisterExecutor
from shared.local.mlflow_server import MlflowServer
from tests.registries.conftest import register_context
from tests.support import train_and_register, unique

AML = ("AZURE_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP", "AZUREML_WORKSPACE")
pytestmark = pytest.mark.live


def _aml_yaml(source: MlflowServer) -> str:
    env = os.environ
    return (
        f'sources:\n  mlflow: {{tracking_uri: "{source.url}"}}\nregistries:\n  aml-prod:\n    kind: azureml\n'
        f'    subscription_id: "{env["AZURE_SUBSCRIPTION_ID"]}"\n    resource_group: {env["AZUREML_RESOURCE_GROUP"]}\n'
        f"    workspace: {env['AZUREML_WORKSPACE']}\n"
    )


@pytest.mark.skipif(not all(os.environ.get(k) for k in AML), reason="set " + ", ".join(AML) + " to run")
def test_register_into_a_real_workspace(tmp_path: Path, source_server: MlflowServer) -> None:
    name = unique("modelops-live")
    version, _ = train_and_register(source_server.url, name)
    params = {"source": "mlflow", "source_tracking_uri": source_server.url}
    ctx = register_context(tmp_path, _aml_yaml(source_server), name, version, params)
    first = RegisterExecutor().execute(ctx)
    again = RegisterExecutor().execute(register_context(tmp_path, _aml_yaml(source_server), name, version, params))
    uri = mlflow_tracking_uri(ctx.target(AzureMLRegistry))
    copy = MlflowClient(tracking_uri=uri, registry_uri=uri).get_model_version(
        name, first.outputs.to_dict()["model_version"]
    )
    assert copy.tags["modelops.source_name"] == name and again.outputs.to_dict()["reused"] is True


@pytest.mark.skipif(not os.environ.get("DATABRICKS_HOST"), reason="set DATABRICKS_HOST (and auth) to run")
def test_a_real_databricks_registry_is_readable(tmp_path: Path) -> None:
    auth = "    auth: token\n    token_setting: DATABRICKS_TOKEN\n" if os.environ.get("DATABRICKS_TOKEN") else ""
    config = f"registries:\n  dbx:\n    kind: databricks\n    host: {os.environ['DATABRICKS_HOST']}\n{auth}"
    ctx = register_context(tmp_path, config, "m", "1", {}, target="dbx")
    tracking_uri, registry_uri = registry_uris(ctx.target(AzureMLRegistry))
    MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri).search_registered_models(max_results=1)
