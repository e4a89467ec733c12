"""managed-online / kubernetes-online through the real azure-ai-ml MLClient, over HTTPS, against the
Azure ML online endpoints contract server. Predictions come from the real MLflow models."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.aml_online import cloud_kwargs
from shared.config.deployments import ManagedOnlineDeployment
from shared.config.loader import load_config
from shared.config.schema import ReactorConfig
from shared.errors import PermanentError
from shared.executors.aml_targets import deployment_name
from shared.executors.base import Outcome
from shared.executors.deploy_online import OnlineDeployExecutor
from tests.contract.aml_online_server import AmlOnlineContract
from tests.contract.credentials import StaticTokenCredential
from tests.deploy.conftest import Registry, make_context, write_config

SUB, RG, WS, ENDPOINT = "00000000-1111-2222-3333-444444444444", "test-rg", "my-aml-workspace", "churn-ep"


def online_config(tmp_path: Path, aml: AmlOnlineContract) -> ReactorConfig:
    """aml-prod (where the register step copies models) and an online target in the same workspace."""
    workspace = f"subscription_id: {SUB}\n    resource_group: {RG}\n    workspace: {WS}\n"
    path = tmp_path / "modelops.yaml"
    path.write_text(
        f"registries:\n  aml-prod:\n    kind: azureml\n    {workspace}"
        f"deployments:\n  online:\n    kind: managed-online\n    {workspace}    endpoint: {ENDPOINT}\n"
        f"    arm_endpoint: {aml.base_url}\n    keep_previous: 1\n    wait_s: 30\n    poll_interval_s: 0.2\n"
    )
    return load_config(path, env={})


def upstream(registry: Registry, name: str, version: str) -> dict[str, Any]:
    """What the register step into aml-prod hands over (its copy lives in that workspace)."""
    return {
        "model_uri": f"models:/{name}/{version}",
        "tracking_uri": registry.tracking_uri,
        "registry_uri": None,
        "model_name": name,
        "model_version": version,
        "registry": "aml-prod",
    }


def run(
    config: ReactorConfig,
    tmp_path: Path,
    registry: Registry,
    name: str,
    version: str,
    *,
    outputs: dict[str, Any] | None = None,
    clock: Any = None,
    credential: StaticTokenCredential | None = None,
) -> Outcome:
    ctx = make_context(
        config,
        tmp_path,
        target="online",
        model_name=name,
        model_version=version,
        upstream=upstream(registry, name, version),
        outputs=outputs,
    )
    executor = OnlineDeployExecutor(
        credential=credential or StaticTokenCredential(), **({"clock": clock} if clock else {})
    )
    return executor.execute(ctx)


def puts_of(aml: AmlOnlineContract, deployment: str) -> int:
    return sum(1 for method, path in aml.log if method == "PUT" and path.endswith(f"/deployments/{deployment}"))


class TestBlueGreen:
    def test_deploys_smoke_tests_then_moves_traffic_and_retires_old(
        self, aml: AmlOnlineContract, registry: Registry, tmp_path: Path
    ) -> None:
        config = online_config(tmp_path, aml)
        credential = StaticTokenCredential()
        v1, v2, v3 = (registry.log_sklearn("churn-aml") for _ in range(3))
        d1, d2, d3 = (deployment_name("online", "churn-aml", v) for v in (v1, v2, v3))

        first = run(config, tmp_path, registry, "churn-aml", v1, credential=credential)

        assert first.recheck_after_seconds is None
        assert first.outputs.to_dict()["smoke_test"] == "passed"
        assert aml.traffic(ENDPOINT) == {d1: 100}
        assert aml.scored[0]["deployment"] == d1  # smoke test went to the new deployment itself
        deployed = aml.deployments[ENDPOINT][d1]["properties"]
        assert deployed["model"].endswith(f"/workspaces/{WS}/models/churn-aml/versions/{v1}")
        assert deployed["instanceType"] == "Standard_DS3_v2" and "environmentId" not in deployed
        assert first.outputs.to_dict()["scoring_uri"] == f"{aml.base_url}/score/{ENDPOINT}"
        assert credential.scopes and all(s[0].endswith("/.default") for s in credential.scopes)

        run(config, tmp_path, registry, "churn-aml", v2)
        assert aml.traffic(ENDPOINT) == {d2: 100}
        assert set(aml.deployments[ENDPOINT]) == {d1, d2}  # v1 kept at 0% for rollback

        third = run(config, tmp_path, registry, "churn-aml", v3)
        assert aml.traffic(ENDPOINT) == {d3: 100}
        assert third.outputs.to_dict()["deleted"] == [d1] and third.outputs.to_dict()["kept"] == [d2]
        deletes = [path.rsplit("/", 1)[1] for method, path in aml.log if method == "DELETE"]
        assert deletes == [d1]  # started as a long-running delete; v2 stays for rollback

        again = run(config, tmp_path, registry, "churn-aml", v3, outputs=third.outputs.to_dict())
        assert again.recheck_after_seconds is None
        assert puts_of(aml, d3) == 1  # a retry never creates (or re-creates) the deployment

    def test_failed_smoke_test_leaves_traffic_on_the_old_deployment(
        self, aml: AmlOnlineContract, registry: Registry, tmp_path: Path
    ) -> None:
        config = online_config(tmp_path, aml)
        good = registry.log_sklearn("churn-aml")
        run(config, tmp_path, registry, "churn-aml", good)
        before = aml.traffic(ENDPOINT)
        broken = registry.log_broken("churn-aml")

        with pytest.raises(PermanentError) as failure:
            run(config, tmp_path, registry, "churn-aml", broken)

        assert "smoke test failed" in str(failure.value) and "424 (the model answered 500)" in str(failure.value)
        assert "out of range for this broken model" in str(failure.value)
        assert aml.traffic(ENDPOINT) == before


class TestFailures:
    @pytest.fixture
    def live_v1(self, aml: AmlOnlineContract, registry: Registry, tmp_path: Path) -> tuple[ReactorConfig, str]:
        config = online_config(tmp_path, aml)
        v1 = registry.log_sklearn("churn-fail")
        run(config, tmp_path, registry, "churn-fail", v1)
        return config, deployment_name("online", "churn-fail", v1)

    def test_quota_error_is_permanent_and_names_the_fix(
        self, aml: AmlOnlineContract, registry: Registry, tmp_path: Path, live_v1: tuple[ReactorConfig, str]
    ) -> None:
        config, d1 = live_v1
        aml.deployment_outcome = "quota"
        with pytest.raises(PermanentError) as failure:
            run(config, tmp_path, registry, "churn-fail", registry.log_sklearn("churn-fail"))
        message = str(failure.value)
        assert "QuotaExceeded" in message and "request more quota" in message
        assert aml.traffic(ENDPOINT) == {d1: 100}

    def test_deployment_that_ends_failed_is_permanent(
        self, aml: AmlOnlineContract, registry: Registry, tmp_path: Path, live_v1: tuple[ReactorConfig, str]
    ) -> None:
        config, d1 = live_v1
        aml.deployment_outcome = "failed"
        with pytest.raises(PermanentError) as failure:
            run(config, tmp_path, registry, "churn-fail", registry.log_sklearn("churn-fail"))
        assert "ResourceNotReady" in str(failure.value) and "liveness probe failed" in str(failure.value)
        assert aml.traffic(ENDPOINT) == {d1: 100}

    def test_provisioning_that_never_ends_waits_then_times_out(
        self, aml: AmlOnlineContract, registry: Registry, tmp_path: Path, live_v1: tuple[ReactorConfig, str]
    ) -> None:
        _, d1 = live_v1
        config = online_config(tmp_path, aml)
        short = config.model_copy(
            update={"deployments": {"online": config.deployments["online"].model_copy(update={"wait_s": 1.5})}}
        )
        aml.deployment_outcome = "stuck"
        version = registry.log_sklearn("churn-fail")

        waiting = run(short, tmp_path, registry, "churn-fail", version, clock=lambda: 1000.0)

        assert waiting.recheck_after_seconds is not None and waiting.outputs.to_dict()["phase"] == "provisioning"
        assert waiting.outputs.to_dict()["submitted_at"] == 1000.0
        target = short.deployments["online"]
        assert isinstance(target, ManagedOnlineDeployment)
        later = 1000.0 + target.provisioning_timeout_s + 1
        with pytest.raises(PermanentError, match="still provisioning after"):
            run(
                short, tmp_path, registry, "churn-fail", version, outputs=waiting.outputs.to_dict(), clock=lambda: later
            )
        assert aml.traffic(ENDPOINT) == {d1: 100}
        assert puts_of(aml, deployment_name("online", "churn-fail", version)) == 1


def test_model_outside_the_workspace_is_refused_with_the_fix(
    aml: AmlOnlineContract, registry: Registry, tmp_path: Path
) -> None:
    config = online_config(tmp_path, aml)
    ctx = make_context(
        config, tmp_path, target="online", model_name="m", model_version="1", tracking_uri=registry.tracking_uri
    )
    with pytest.raises(PermanentError, match=r"Add a step `\{register: <an azureml registry"):
        OnlineDeployExecutor(credential=StaticTokenCredential()).execute(ctx)
    assert not any(method == "PUT" and "/deployments/" in path for method, path in aml.log)


def test_kubernetes_endpoint_is_created_on_the_attached_compute(
    aml: AmlOnlineContract, registry: Registry, tmp_path: Path
) -> None:
    config = online_config(tmp_path, aml)
    k8s = write_config(
        tmp_path / "k8s.yaml",
        f"online:\n  kind: kubernetes-online\n  subscription_id: {SUB}\n  resource_group: {RG}\n"
        f"  workspace: {WS}\n  endpoint: k8s-ep\n  compute: aks-attached\n  arm_endpoint: {aml.base_url}\n"
        "  poll_interval_s: 0.2\n",
    )
    config = config.model_copy(update={"deployments": k8s.deployments})
    version = registry.log_sklearn("churn-k8s")

    out = run(config, tmp_path, registry, "churn-k8s", version).outputs.to_dict()

    endpoint = aml.endpoints["k8s-ep"]["properties"]
    assert endpoint["compute"].endswith(f"/workspaces/{WS}/computes/aks-attached")
    assert aml.deployments["k8s-ep"][out["deployment"]]["properties"]["endpointComputeType"] == "Kubernetes"
    assert aml.traffic("k8s-ep") == {out["deployment"]: 100}


def test_deployment_names_are_valid_deterministic_and_per_target() -> None:
    name = deployment_name("aks-prod", "Customer Churn: gradient-boosted model (EU)", "1234567")
    assert re.fullmatch(r"[a-z][a-z0-9-]{1,30}[a-z0-9]", name) and len(name) <= 32
    assert name == deployment_name("aks-prod", "Customer Churn: gradient-boosted model (EU)", "1234567")
    assert name != deployment_name("other", "Customer Churn: gradient-boosted model (EU)", "1234567")
    assert deployment_name("t", "42-model", "3").startswith("m42-model-v3-")


def test_sovereign_clouds_and_private_arm_endpoints(tmp_path: Path) -> None:
    gov = write_config(
        tmp_path / "gov.yaml",
        "gov:\n  kind: managed-online\n  subscription_id: s\n  resource_group: r\n  workspace: w\n"
        "  endpoint: ep-gov\n  cloud: AzureUSGovernment\n"
        "gov-private:\n  kind: managed-online\n  subscription_id: s\n  resource_group: r\n  workspace: w\n"
        "  endpoint: ep-gov\n  cloud: AzureUSGovernment\n  arm_endpoint: https://arm.contoso.example\n",
    )
    public_arm, private_arm = gov.deployments["gov"], gov.deployments["gov-private"]
    assert isinstance(public_arm, ManagedOnlineDeployment) and isinstance(private_arm, ManagedOnlineDeployment)
    assert cloud_kwargs(public_arm) == {"cloud": "AzureUSGovernment"}
    private = cloud_kwargs(private_arm)
    assert private["cloud_metadata"]["resource_manager"] == "https://arm.contoso.example/"
    assert private["cloud_metadata"]["active_directory"] == "https://login.microsoftonline.us/"
    assert private["cloud_metadata"]["aml_resource_id"] == "https://ml.azure.us/"
