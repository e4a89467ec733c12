"""Rollback of an AKS web service target through the real azureml-core against the v1 Model
Management Service contract: the kept (older) service is checked Healthy and smoke-tested, then
becomes the target's current one; nothing is deleted; a version whose service is gone is refused."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from shared.adapters.azureml_core_webservices import AzureMLCoreWebservices
from shared.domain.actions import Action
from shared.domain.outputs import RollbackOutputs
from shared.domain.params import ActionParams
from shared.errors import PermanentError
from shared.executors.aml_targets import deployment_name
from shared.executors.base import ActionContext
from shared.executors.rollback_azure import LegacyRollbackExecutor
from tests.contract.aml_mms_server import MmsContract
from tests.contract.credentials import StaticTokenCredential
from tests.deploy.conftest import Registry
from tests.deploy.mms import TOKEN, Mms, deploy, legacy_config, register_in_workspace

MODEL = "churn-rollback-v1"


def rollback(config_dir: Path, mms_server: Mms, registry: Registry, version: str, from_version: str) -> RollbackOutputs:
    config = legacy_config(config_dir, mms_server.url)
    action = Action(
        id=f"act-rollback-{version}",
        key=f"rollback:aks-prod:{MODEL}:{version}:from:{MODEL}:{from_version}",
        kind="rollback",
        target="aks-prod",
        model_name=MODEL,
        model_version=version,
        event_id="evt-1",
        status="running",
        params=ActionParams(
            source="mlflow",
            from_version=from_version,
            source_tracking_uri=registry.tracking_uri,
            source_registry="aml-prod",
        ),
        outputs=RollbackOutputs(),
        attempts=1,
    )
    ctx = ActionContext(action=action, config=config, state_dir=config_dir, upstream=(), log=logging.getLogger("t"))
    sdk = AzureMLCoreWebservices(credential=StaticTokenCredential(TOKEN))
    outputs = LegacyRollbackExecutor(sdk).execute(ctx).outputs
    assert isinstance(outputs, RollbackOutputs)
    return outputs


def test_the_kept_service_is_smoke_tested_and_becomes_current(
    mms: MmsContract, mms_server: Mms, registry: Registry, tmp_path: Path
) -> None:
    import sklearn

    pip = [f"scikit-learn=={sklearn.__version__}", "pandas"]
    v1, v2 = registry.log_sklearn(MODEL, pip=pip), registry.log_sklearn(MODEL, pip=pip)
    for version in (v1, v2):
        register_in_workspace(mms, registry, MODEL, version, tmp_path / "models")
    config = legacy_config(tmp_path, mms_server.url)
    deploy(config, tmp_path, registry, "aks-prod", MODEL, v1)
    second = deploy(config, tmp_path, registry, "aks-prod", MODEL, v2)
    s1 = deployment_name("aks-prod", MODEL, v1)
    assert second["kept"] == [s1]

    out = rollback(tmp_path, mms_server, registry, v1, v2)
    assert out.service == s1 and out.smoke_test == "passed" and out.from_version == v2
    assert out.scoring_uri
    assert {s1, deployment_name("aks-prod", MODEL, v2)} <= set(mms.services)  # nothing deleted

    del mms.services[s1]
    with pytest.raises(PermanentError, match="nothing kept to roll back to"):
        rollback(tmp_path, mms_server, registry, v1, v2)
