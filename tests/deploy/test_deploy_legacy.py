"""ACI / AKS through azureml-core, tested at its SDK boundary: azureml-core cannot reach anything here,
so the port (`AzureMLCoreWebservices`) is replaced; deploy configurations and InferenceConfig are the real
azureml-core objects, and the generated scoring script really runs (behind HTTPS) on the real model."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.adapters.azureml_core_webservices import TAG_TARGET, AzureMLCoreWebservices
from shared.config.loader import load_config
from shared.config.schema import ReactorConfig
from shared.errors import PermanentError
from shared.executors import deploy_legacy
from shared.executors.aml_targets import deployment_name
from shared.executors.deploy_legacy import LegacyWebserviceExecutor
from tests.contract.https import HttpsServer, TestCA
from tests.deploy.conftest import Registry, make_context

KEY = "aci-primary-key"


class ScoringContainer:
    """What the v1 inference server does with our entry script: init() once, run(raw body) per request."""

    def __init__(self, script: str, model_dir: str, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AZUREML_MODEL_DIR", model_dir)
        self.namespace: dict[str, Any] = {}
        exec(compile(script, "score.py", "exec"), self.namespace)  # noqa: S102 - our generated script
        self.namespace["init"]()
        self.app = FastAPI()

        @self.app.post("/score")
        async def score(request: Request) -> JSONResponse:
            if request.headers.get("authorization") != f"Bearer {KEY}":
                return JSONResponse({"message": "unauthorized"}, status_code=401)
            try:
                return JSONResponse(self.namespace["run"]((await request.body()).decode()))
            except Exception as exc:  # noqa: BLE001 - the inference server answers 502 with the message
                return JSONResponse({"message": str(exc)}, status_code=502)


class FakeService:
    def __init__(
        self, name: str, scoring_uri: str, tags: dict[str, str], created: str, final_state: str = "Healthy"
    ) -> None:
        self.name, self.scoring_uri, self.tags, self.created_time = name, scoring_uri, tags, created
        self.state = "Transitioning"
        self.final_state = final_state
        self.deleted = False

    def wait_for_deployment(self, show_output: bool = False, timeout_sec: float | None = None) -> None:
        self.state = self.final_state

    def get_keys(self) -> tuple[str, str]:
        return KEY, KEY[::-1]

    def get_logs(self) -> str:
        return "ModuleNotFoundError: No module named 'sklearn'"

    def delete(self) -> None:
        self.deleted = True


class RecordingSDK(AzureMLCoreWebservices):
    """Records every azureml-core call; deploys start a real scoring container for the entry script."""

    def __init__(self, registry: Registry, ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        self.registry, self.ca, self.monkeypatch = registry, ca, monkeypatch
        self.calls: list[tuple[str, Any]] = []
        self.services_by_name: dict[str, FakeService] = {}
        self.servers: list[HttpsServer] = []
        self.final_state = "Healthy"

    def workspace(self, cfg: Any) -> Any:
        self.calls.append(("workspace", (cfg.subscription_id, cfg.resource_group, cfg.workspace)))
        return "ws"

    def model(self, ws: Any, name: str, version: str) -> Any:
        self.calls.append(("model", (name, version)))
        return f"model:{name}:{version}"

    def find_service(self, ws: Any, name: str) -> Any | None:
        return self.services_by_name.get(name)

    def services(self, ws: Any, target: str) -> list[Any]:
        return [s for s in self.services_by_name.values() if s.tags.get(TAG_TARGET) == target and not s.deleted]

    def aks_target(self, ws: Any, name: str) -> Any:
        self.calls.append(("aks_target", name))
        return f"aks:{name}"

    def deploy(
        self,
        ws: Any,
        name: str,
        models: list[Any],
        inference_config: Any,
        deployment_config: Any,
        deployment_target: Any,
        overwrite: bool,
    ) -> Any:
        import mlflow

        self.calls.append(
            (
                "deploy",
                {
                    "name": name,
                    "models": models,
                    "inference_config": inference_config,
                    "deployment_config": deployment_config,
                    "target": deployment_target,
                    "overwrite": overwrite,
                },
            )
        )
        version = models[0].rsplit(":", 1)[1]
        model_dir = mlflow.artifacts.download_artifacts(f"models:/{models[0].split(':')[1]}/{version}")
        container = ScoringContainer(Path(inference_config.entry_script).read_text(), model_dir, self.monkeypatch)
        server = HttpsServer(container.app, self.ca).__enter__()
        self.servers.append(server)
        service = FakeService(
            name,
            f"{server.url}/score",
            deployment_config.tags,
            f"2026-01-01T00:00:{len(self.servers):02d}",
            self.final_state,
        )
        self.services_by_name[name] = service
        return service


@pytest.fixture
def sdk(registry: Registry, trust_test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingSDK]:
    recording = RecordingSDK(registry, trust_test_ca, monkeypatch)
    yield recording
    for server in recording.servers:
        server.__exit__(None, None, None)


def legacy_config(tmp_path: Path) -> ReactorConfig:
    ws = "    subscription_id: sub\n    resource_group: rg\n    workspace: ws\n"
    path = tmp_path / "modelops.yaml"
    path.write_text(
        f"registries:\n  aml-prod:\n    kind: azureml\n{ws}"
        f"deployments:\n"
        f"  aci-dev:\n    kind: aci\n{ws}    cpu_cores: 0.5\n    memory_gb: 1.5\n    location: westeurope\n"
        f"    dns_name_label: churn-dev\n    keep_previous: 0\n"
        f"  aks-prod:\n    kind: aks\n{ws}    compute_target: aks-cluster\n    cpu_cores: 2\n    memory_gb: 4\n"
        f"    num_replicas: 3\n    namespace: scoring\n    scoring_timeout_ms: 5000\n    enable_app_insights: true\n"
    )
    return load_config(path, env={})


def deploy(
    config: ReactorConfig, tmp_path: Path, sdk: RecordingSDK, target: str, name: str, version: str
) -> dict[str, Any]:
    upstream = {
        "model_uri": f"models:/{name}/{version}",
        "tracking_uri": sdk.registry.tracking_uri,
        "registry_uri": None,
        "model_name": name,
        "model_version": version,
        "registry": "aml-prod",
    }
    ctx = make_context(config, tmp_path, target=target, model_name=name, model_version=version, upstream=upstream)
    return LegacyWebserviceExecutor(sdk).execute(ctx).outputs.to_dict()


def deploy_calls(sdk: RecordingSDK) -> list[dict[str, Any]]:
    return [args for call, args in sdk.calls if call == "deploy"]


class TestAci:
    def test_model_deploy_gets_the_configured_aci_service(
        self, sdk: RecordingSDK, registry: Registry, tmp_path: Path
    ) -> None:
        import mlflow

        config = legacy_config(tmp_path)
        version = registry.log_sklearn("churn-v1")

        out = deploy(config, tmp_path, sdk, "aci-dev", "churn-v1", version)

        (call,) = deploy_calls(sdk)
        service = deployment_name("aci-dev", "churn-v1", version)
        assert call["name"] == service and call["models"] == [f"model:churn-v1:{version}"]
        assert call["target"] is None and call["overwrite"] is False  # ACI: no compute target
        dc = call["deployment_config"]
        assert type(dc).__name__ == "AciServiceDeploymentConfiguration"
        assert (dc.cpu_cores, dc.memory_gb, dc.auth_enabled, dc.location, dc.dns_name_label) == (
            0.5,
            1.5,
            True,
            "westeurope",
            "churn-dev",
        )
        assert dc.tags == {"modelops.target": "aci-dev", "modelops.model": f"churn-v1:{version}"}
        pip = list(call["inference_config"].environment.python.conda_dependencies.pip_packages)
        assert f"mlflow=={mlflow.__version__}" in pip and any(p.startswith("scikit-learn") for p in pip)
        assert "azureml-inference-server-http" in pip
        assert out["smoke_test"] == "passed" and out["service"] == service
        assert out["legacy"] == "SDK v1 aci; move to managed-online"

    def test_retry_of_a_healthy_service_does_not_deploy_again(
        self, sdk: RecordingSDK, registry: Registry, tmp_path: Path
    ) -> None:
        config = legacy_config(tmp_path)
        version = registry.log_sklearn("churn-v1")
        deploy(config, tmp_path, sdk, "aci-dev", "churn-v1", version)
        deploy(config, tmp_path, sdk, "aci-dev", "churn-v1", version)
        assert len(deploy_calls(sdk)) == 1

    def test_new_version_retires_the_old_service_only_after_its_smoke_test(
        self, sdk: RecordingSDK, registry: Registry, tmp_path: Path
    ) -> None:
        config = legacy_config(tmp_path)
        v1 = registry.log_sklearn("churn-v1")
        deploy(config, tmp_path, sdk, "aci-dev", "churn-v1", v1)
        old = sdk.services_by_name[deployment_name("aci-dev", "churn-v1", v1)]

        broken = registry.log_broken("churn-v1")
        with pytest.raises(PermanentError, match="smoke test failed.*out of range for this broken model"):
            deploy(config, tmp_path, sdk, "aci-dev", "churn-v1", broken)
        assert not old.deleted

        v3 = registry.log_sklearn("churn-v1")
        out = deploy(config, tmp_path, sdk, "aci-dev", "churn-v1", v3)
        assert old.deleted and old.name in out["deleted"]  # keep_previous: 0

    def test_failed_service_reports_its_logs(self, sdk: RecordingSDK, registry: Registry, tmp_path: Path) -> None:
        config = legacy_config(tmp_path)
        sdk.final_state = "Failed"
        with pytest.raises(PermanentError, match="ended in state Failed.*No module named 'sklearn'"):
            deploy(config, tmp_path, sdk, "aci-dev", "churn-v1", registry.log_sklearn("churn-v1"))


def test_aks_deploy_configuration_and_compute_target(sdk: RecordingSDK, registry: Registry, tmp_path: Path) -> None:
    config = legacy_config(tmp_path)
    version = registry.log_sklearn("churn-v1")

    out = deploy(config, tmp_path, sdk, "aks-prod", "churn-v1", version)

    (call,) = deploy_calls(sdk)
    assert ("aks_target", "aks-cluster") in sdk.calls and call["target"] == "aks:aks-cluster"
    dc = call["deployment_config"]
    assert type(dc).__name__ == "AksServiceDeploymentConfiguration"
    assert (dc.cpu_cores, dc.memory_gb, dc.num_replicas, dc.autoscale_enabled, dc.namespace) == (
        2,
        4,
        3,
        False,
        "scoring",
    )
    assert (dc.auth_enabled, dc.token_auth_enabled, dc.scoring_timeout_ms, dc.enable_app_insights) == (
        True,
        False,
        5000,
        True,
    )
    assert dc.compute_target_name == "aks-cluster"
    assert out["smoke_test"] == "passed"


def test_legacy_warning_is_logged_once_per_target(
    sdk: RecordingSDK,
    registry: Registry,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(deploy_legacy, "_warned", set())
    config = legacy_config(tmp_path)
    version = registry.log_sklearn("churn-v1")
    with caplog.at_level(logging.WARNING, logger="modelops.deploy.legacy"):
        deploy(config, tmp_path, sdk, "aci-dev", "churn-v1", version)
        deploy(config, tmp_path, sdk, "aci-dev", "churn-v1", version)
        deploy(config, tmp_path, sdk, "aks-prod", "churn-v1", version)
    warnings = [r.getMessage() for r in caplog.records if "legacy" in r.getMessage()]
    assert len(warnings) == 2
    assert "'aci-dev'" in warnings[0] and "2026-06-30" in warnings[0] and "'managed-online'" in warnings[0]
    assert "'aks-prod'" in warnings[1] and "'kubernetes-online'" in warnings[1]


def test_model_outside_the_workspace_is_refused(sdk: RecordingSDK, registry: Registry, tmp_path: Path) -> None:
    config = legacy_config(tmp_path)
    ctx = make_context(
        config, tmp_path, target="aci-dev", model_name="m", model_version="1", tracking_uri=registry.tracking_uri
    )
    with pytest.raises(PermanentError, match="is not registered in workspace ws"):
        LegacyWebserviceExecutor(sdk).execute(ctx)
    assert sdk.calls == []
