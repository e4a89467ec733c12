"""Newest wins on a managed online endpoint (real azure-ai-ml over HTTPS against the online endpoints
contract server): a deploy whose version stopped holding the alias while it provisioned moves no traffic
and is superseded; the alias holder's deploy then takes the traffic."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shared.config.loader import load_config
from shared.errors import Superseded
from shared.executors.aml_targets import deployment_name
from shared.executors.deploy_online import OnlineDeployExecutor
from shared.ledger.sqlite import SqliteLedger
from shared.service.desired import DesiredState
from tests.contract.aml_online_server import AmlOnlineContract
from tests.contract.credentials import StaticTokenCredential
from tests.deploy.conftest import Registry, make_context
from tests.deploy.test_deploy_online import ENDPOINT, RG, SUB, WS, upstream


def test_a_deploy_overtaken_by_an_alias_move_switches_no_traffic(
    aml: AmlOnlineContract, registry: Registry, tmp_path: Path
) -> None:
    workspace = f"subscription_id: {SUB}\n    resource_group: {RG}\n    workspace: {WS}\n"
    (tmp_path / "modelops.yaml").write_text(
        f'sources:\n  mlflow: {{tracking_uri: "{registry.tracking_uri}"}}\n'
        f"registries:\n  aml-prod:\n    kind: azureml\n    {workspace}"
        f"deployments:\n  online:\n    kind: managed-online\n    {workspace}    endpoint: {ENDPOINT}\n"
        f"    arm_endpoint: {aml.base_url}\n    keep_previous: 2\n    wait_s: 30\n    poll_interval_s: 0.2\n"
        "rules:\n  - {on: model_version.alias_set, alias: champion, do: [{deploy: online}]}\n"
    )
    config = load_config(tmp_path / "modelops.yaml", env={})
    desired = DesiredState(config, SqliteLedger(tmp_path / "ledger.db"))
    executor = OnlineDeployExecutor(credential=StaticTokenCredential())
    name = "churn-newest"
    v1, v2, v3 = (registry.log_sklearn(name, pip=["scikit-learn", "pandas"]) for _ in range(3))

    def deploy(version: str) -> None:
        ctx = make_context(
            config,
            tmp_path,
            target="online",
            model_name=name,
            model_version=version,
            upstream=upstream(registry, name, version),
        )
        action = replace(ctx.action, params=replace(ctx.action.params, alias="champion", change=f"move-{version}"))

        def check() -> None:
            reason = desired.superseded_by(action)
            if reason:
                raise Superseded(reason)

        outcome = executor.execute(replace(ctx, action=action, desired_check=check))
        while outcome.recheck_after_seconds is not None:  # provisioning outlasted wait_s: the worker calls again
            action = replace(action, outputs=outcome.outputs)
            outcome = executor.execute(replace(ctx, action=action, desired_check=check))

    client = registry.client()
    client.set_registered_model_alias(name, "champion", v1)
    deploy(v1)
    assert aml.traffic(ENDPOINT) == {deployment_name("online", name, v1): 100}

    client.set_registered_model_alias(name, "champion", v3)  # v2's move was overtaken before its deploy switched
    with pytest.raises(Superseded, match=f"alias champion of {name} now names v{v3}"):
        deploy(v2)
    assert aml.traffic(ENDPOINT) == {deployment_name("online", name, v1): 100}  # nothing moved

    deploy(v3)
    assert aml.traffic(ENDPOINT) == {deployment_name("online", name, v3): 100}
