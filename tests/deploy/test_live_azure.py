"""Opt-in: deploy a model already registered in a real Azure ML workspace to every AML target kind.

Needs AZURE_SUBSCRIPTION_ID, AZUREML_RESOURCE_GROUP, AZUREML_WORKSPACE and MODELOPS_LIVE_MODEL
(`name:version` of an MLflow model in that workspace, logged with an input example) plus a
credential DefaultAzureCredential can find. AKS needs AZUREML_AKS_COMPUTE, kubernetes-online needs
AZUREML_K8S_COMPUTE. Creates billable resources named `modelops-live-*`; delete them afterwards.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from shared.adapters.registry_uris import registry_uris
from shared.config.loader import load_config
from shared.executors.registry import ExecutorRegistry
from tests.deploy.conftest import make_context

pytestmark = pytest.mark.live
REQUIRED = ("AZURE_SUBSCRIPTION_ID", "AZUREML_RESOURCE_GROUP", "AZUREML_WORKSPACE", "MODELOPS_LIVE_MODEL")
EXTRA = {"managed-online": "", "kubernetes-online": "AZUREML_K8S_COMPUTE", "aci": "", "aks": "AZUREML_AKS_COMPUTE"}


@pytest.mark.parametrize("kind", sorted(EXTRA))
def test_live_deploy(kind: str, tmp_path: Path) -> None:
    missing = [v for v in REQUIRED + ((EXTRA[kind],) if EXTRA[kind] else ()) if not os.environ.get(v)]
    if missing:
        pytest.skip(f"live Azure ML test: set {', '.join(missing)}")
    env = os.environ
    ws = (
        f"    subscription_id: {env['AZURE_SUBSCRIPTION_ID']}\n    resource_group: {env['AZUREML_RESOURCE_GROUP']}\n"
        f"    workspace: {env['AZUREML_WORKSPACE']}\n"
    )
    extra = {
        "managed-online": "    endpoint: modelops-live-mo\n    instance_type: Standard_DS2_v2\n",
        "kubernetes-online": f"    endpoint: modelops-live-k8s\n    compute: {env.get('AZUREML_K8S_COMPUTE')}\n",
        "aci": "",
        "aks": f"    compute_target: {env.get('AZUREML_AKS_COMPUTE')}\n",
    }[kind]
    path = tmp_path / "live.yaml"
    path.write_text(f"registries:\n  aml:\n    kind: azureml\n{ws}deployments:\n  live:\n    kind: {kind}\n{ws}{extra}")
    config = load_config(path, env={})
    name, version = env["MODELOPS_LIVE_MODEL"].rsplit(":", 1)
    tracking_uri, registry_uri = registry_uris(config.registries["aml"])
    upstream = {
        "model_uri": f"models:/{name}/{version}",
        "tracking_uri": tracking_uri,
        "registry_uri": registry_uri,
        "model_name": name,
        "model_version": version,
        "registry": "aml",
    }
    outputs: dict = {}
    executor = ExecutorRegistry().get("deploy", config.deployments["live"])
    deadline = time.monotonic() + 3600
    while True:
        ctx = make_context(
            config, tmp_path, target="live", model_name=name, model_version=version, upstream=upstream, outputs=outputs
        )
        outcome = executor.execute(ctx)
        outputs = outcome.outputs.to_dict()
        if outcome.recheck_after_seconds is None or time.monotonic() > deadline:
            break
        time.sleep(outcome.recheck_after_seconds)
    assert outcome.recheck_after_seconds is None
    assert outputs["smoke_test"] == "passed"
