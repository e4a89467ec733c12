"""Newest wins on ACI (real azureml-core over HTTPS against the v1 Model Management Service contract):
a deploy whose version stopped holding the alias while its service was built retires nothing, so the
service that served keeps serving; the alias holder's deploy then retires both."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shared.adapters.azureml_core_webservices import AzureMLCoreWebservices
from shared.config.loader import load_config
from shared.errors import Superseded
from shared.executors.aml_targets import deployment_name
from shared.executors.deploy_legacy import LegacyWebserviceExecutor
from shared.ledger.sqlite import SqliteLedger
from shared.service.desired import DesiredState
from tests.contract.aml_mms_server import MmsContract
from tests.contract.credentials import StaticTokenCredential
from tests.deploy.conftest import Registry, make_context
from tests.deploy.mms import TOKEN, Mms, legacy_config, register_in_workspace

MODEL = "churn-newest"


def test_a_deploy_overtaken_by_an_alias_move_retires_nothing(
    mms: MmsContract, mms_server: Mms, registry: Registry, tmp_path: Path
) -> None:
    import sklearn

    legacy_config(tmp_path, mms_server.url)  # the targets; then the source and the rule that deploys on aci-dev
    with (tmp_path / "modelops.yaml").open("a") as file:
        file.write(f'sources:\n  mlflow: {{tracking_uri: "{registry.tracking_uri}"}}\n')
        file.write("rules:\n  - {on: model_version.alias_set, alias: champion, do: [{deploy: aci-dev}]}\n")
    config = load_config(tmp_path / "modelops.yaml", env={})
    desired = DesiredState(config, SqliteLedger(tmp_path / "ledger.db"))
    pip = [f"scikit-learn=={sklearn.__version__}", "pandas"]
    v1, v2, v3 = (registry.log_sklearn(MODEL, pip=pip) for _ in range(3))
    for version in (v1, v2, v3):
        register_in_workspace(mms, registry, MODEL, version, tmp_path / "workspace-models")
    executor = LegacyWebserviceExecutor(AzureMLCoreWebservices(credential=StaticTokenCredential(TOKEN)))

    def deploy(version: str) -> None:
        upstream = {
            "model_uri": f"models:/{MODEL}/{version}",
            "tracking_uri": registry.tracking_uri,
            "registry_uri": None,
            "model_name": MODEL,
            "model_version": version,
            "registry": "aml-prod",
        }
        ctx = make_context(
            config, tmp_path, target="aci-dev", model_name=MODEL, model_version=version, upstream=upstream
        )
        action = replace(ctx.action, params=replace(ctx.action.params, alias="champion", change=f"move-{version}"))

        def check() -> None:
            reason = desired.superseded_by(action)
            if reason:
                raise Superseded(reason)

        executor.execute(replace(ctx, action=action, desired_check=check))

    def services() -> set[str]:
        return set(mms.services)

    client = registry.client()
    client.set_registered_model_alias(MODEL, "champion", v1)
    deploy(v1)
    assert services() == {deployment_name("aci-dev", MODEL, v1)}

    client.set_registered_model_alias(MODEL, "champion", v3)  # v2's move was overtaken while it was built
    with pytest.raises(Superseded, match=f"alias champion of {MODEL} now names v{v3}"):
        deploy(v2)
    assert deployment_name("aci-dev", MODEL, v1) in services()  # retired nothing: v1 still serves

    deploy(v3)  # keep_previous: 0 on aci-dev: the holder's deploy retires the others
    assert services() == {deployment_name("aci-dev", MODEL, v3)}
