"""ACI / AKS web services through the real azureml-core against the v1 Model Management Service
contract over HTTPS (tests/contract/aml_mms_server.py): workspace, model lookup, the entry script
upload, service create and operation polling, get/list by tag, keys, logs, delete, AKS compute.
The container runs the entry script azureml-core uploaded, on the real model."""

from __future__ import annotations

import json
import logging
import sys
from importlib.resources import files
from pathlib import Path

import pytest
import requests

from shared.errors import PermanentError, RetryableError
from shared.executors import deploy_legacy
from shared.executors.aml_targets import deployment_name
from tests.contract.aml_mms_server import Fault, MmsContract
from tests.deploy.conftest import Registry, make_context
from tests.deploy.mms import Mms, deploy, legacy_config, register_in_workspace

MODEL = "churn-v1"


@pytest.fixture(scope="module")
def versions(mms_server: Mms, registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Versions of one model, logged once for the module and registered in the workspace: two that
    serve, one whose loading fails (init() crashes), one whose predictions fail (smoke test)."""
    import sklearn

    pip = [f"scikit-learn=={sklearn.__version__}", "pandas"]  # given, not inferred: inference costs seconds
    logged = {
        "good": registry.log_sklearn(MODEL, pip=pip),
        "newer": registry.log_sklearn(MODEL, pip=pip),
        "init": registry.log_unloadable(MODEL, pip=pip),
        "predict": registry.log_broken(MODEL, pip=pip),
    }
    dest = tmp_path_factory.mktemp("workspace-models")
    for version in logged.values():
        register_in_workspace(mms_server.contract, registry, MODEL, version, dest)
    return logged


def creates(mms: MmsContract) -> list[str]:
    return mms.calls("POST", r"/services$")


def scores(uri: str, key: str) -> int:
    body = {"input_data": {"columns": ["a", "b"], "index": [0], "data": [[0.9, 0.8]]}}
    return requests.post(uri, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30).status_code


class TestAci:
    def test_the_configured_service_is_built_started_and_smoke_tested_and_its_keys_are_not_kept(
        self,
        mms: MmsContract,
        mms_server: Mms,
        registry: Registry,
        versions: dict[str, str],
        tmp_path: Path,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        import mlflow

        version = versions["good"]
        mms.build_steps.append(("Running", "BuildEnvironment"))  # one image-build poll (azureml-core waits 5 s)
        with caplog.at_level(logging.DEBUG):
            out = deploy(legacy_config(tmp_path, mms_server.url), tmp_path, registry, "aci-dev", MODEL, version)

        name = deployment_name("aci-dev", MODEL, version)
        [service] = mms.services.values()
        payload = service.payload
        assert payload["name"] == name and payload["computeType"] == "ACI" and len(creates(mms)) == 1
        assert payload["containerResourceRequirements"]["cpu"] == 0.5
        assert payload["containerResourceRequirements"]["memoryInGB"] == 1.5
        assert (payload["location"], payload["dnsNameLabel"], payload["authEnabled"]) == (
            "westeurope",
            "churn-dev",
            True,
        )
        assert payload["kvTags"] == {"modelops.target": "aci-dev", "modelops.model": f"{MODEL}:{version}"}
        request = payload["environmentImageRequest"]
        assert request["modelIds"] == [f"{MODEL}:{version}"]
        conda = request["environment"]["python"]["condaDependencies"]["dependencies"]
        [pip] = [d["pip"] for d in conda if isinstance(d, dict)]
        assert f"python={sys.version_info.major}.{sys.version_info.minor}" in "".join(
            c for c in conda if isinstance(c, str)
        )
        assert f"mlflow=={mlflow.__version__}" in pip and any(p.startswith("scikit-learn") for p in pip)
        uploaded = [body.decode() for path, body in mms.blobs.items() if path.endswith("/score.py")]
        assert files("shared.jobs").joinpath("azureml_score.py").read_text() in uploaded  # what the container ran

        assert out["service"] == name and out["smoke_test"] == "passed" and service.container is not None
        assert out["scoring_uri"] == service.container.scoring_uri and service.container.requests == 1
        assert mms.calls("POST", rf"/services/{name}/listkeys$")
        text = json.dumps(out) + caplog.text
        assert service.keys[0] not in text and service.keys[1] not in text

    def test_a_duplicate_finds_the_same_service(
        self, mms: MmsContract, mms_server: Mms, registry: Registry, versions: dict[str, str], tmp_path: Path
    ) -> None:
        config = legacy_config(tmp_path, mms_server.url)
        version = versions["good"]
        first = deploy(config, tmp_path, registry, "aci-dev", MODEL, version)
        second = deploy(config, tmp_path, registry, "aci-dev", MODEL, version)
        assert len(creates(mms)) == 1 and first["scoring_uri"] == second["scoring_uri"]

    def test_a_failed_deployment_keeps_the_old_service_serving_and_fails_with_the_operations_error_and_logs(
        self, mms: MmsContract, mms_server: Mms, registry: Registry, versions: dict[str, str], tmp_path: Path
    ) -> None:
        config = legacy_config(tmp_path, mms_server.url)
        old = deploy(config, tmp_path, registry, "aci-dev", MODEL, versions["good"])
        old_service = mms.services[old["service"]]

        crashing = versions["init"]
        with pytest.raises(PermanentError) as failed:
            deploy(config, tmp_path, registry, "aci-dev", MODEL, crashing)
        text = str(failed.value)
        assert "ended in state Failed: AciDeploymentFailed: Aci Deployment failed with exception" in text
        assert "Your container application crashed" in text and "(CrashLoopBackOff)" in text
        assert "the previous service keeps serving" in text
        assert "User's init function failed" in text and "this model cannot be loaded" in text  # the log tail
        assert old["service"] in mms.services and old_service.state == "Healthy"
        assert scores(old["scoring_uri"], old_service.keys[0]) == 200

        with pytest.raises(PermanentError, match=r"smoke test failed.*out of range for this broken model"):
            deploy(config, tmp_path, registry, "aci-dev", MODEL, versions["predict"])
        assert old["service"] in mms.services  # still serving: a new version replaces it only once it answers

        newer = deploy(config, tmp_path, registry, "aci-dev", MODEL, versions["newer"])
        assert old["service"] not in mms.services and old["service"] in newer["deleted"]  # keep_previous: 0
        assert mms.calls("DELETE", rf"/services/{old['service']}$")

    def test_a_retry_after_an_attempt_ended_mid_deployment_creates_no_second_service(
        self, mms: MmsContract, mms_server: Mms, registry: Registry, versions: dict[str, str], tmp_path: Path
    ) -> None:
        config = legacy_config(tmp_path, mms_server.url, timeout_s=1)
        version = versions["good"]
        mms.hold.set()  # the container is still starting when the attempt gives up (or its worker dies)
        with pytest.raises(RetryableError, match="still deploying after 1s"):
            deploy(config, tmp_path, registry, "aci-dev", MODEL, version)
        mms.hold.clear()
        out = deploy(config, tmp_path, registry, "aci-dev", MODEL, version)
        assert len(creates(mms)) == 1 and out["smoke_test"] == "passed"


class TestServiceErrors:
    def test_429_is_retried_by_azureml_core_then_kept_with_its_retry_after(
        self,
        mms: MmsContract,
        mms_server: Mms,
        registry: Registry,
        versions: dict[str, str],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        from azureml._restclient import clientbase

        monkeypatch.setattr(clientbase, "DEFAULT_BACKOFF", 0.05)  # what AZUREML_DEFAULT_BACKOFF sets (32 s)
        version = versions["good"]
        mms.faults.append(Fault("POST", r"/services$", 429, "TooManyRequests", "Rate limit exceeded.",
                                {"Retry-After": "7"}, times=10))  # fmt: skip
        with pytest.raises(RetryableError) as throttled:
            deploy(legacy_config(tmp_path, mms_server.url), tmp_path, registry, "aci-dev", MODEL, version)
        assert "429" in str(throttled.value) and throttled.value.retry_after == 7
        assert len(creates(mms)) == 4 and mms.services == {}  # azureml-core's 3 retries, then ours

    def test_5xx_is_retryable_and_409_operation_in_progress_is_retryable(
        self, mms: MmsContract, mms_server: Mms, registry: Registry, versions: dict[str, str], tmp_path: Path
    ) -> None:
        config = legacy_config(tmp_path, mms_server.url)
        version = versions["good"]
        mms.faults.append(Fault("GET", r"/services/[^/]+$", 502, "BadGateway", "Upstream unavailable.", times=10))
        with pytest.raises(RetryableError, match="502"):
            deploy(config, tmp_path, registry, "aci-dev", MODEL, version)
        mms.faults.clear()
        mms.faults.append(Fault("POST", r"/services$", 409, "Conflict", "Another operation is in progress."))
        with pytest.raises(RetryableError, match="409.*in progress"):
            deploy(config, tmp_path, registry, "aci-dev", MODEL, version)
        assert mms.services == {}
        assert deploy(config, tmp_path, registry, "aci-dev", MODEL, version)["smoke_test"] == "passed"


class TestAks:
    def test_the_aks_service_on_the_workspace_compute(
        self, mms: MmsContract, mms_server: Mms, registry: Registry, versions: dict[str, str], tmp_path: Path
    ) -> None:
        version = versions["good"]
        out = deploy(legacy_config(tmp_path, mms_server.url), tmp_path, registry, "aks-prod", MODEL, version)
        assert mms.calls("GET", r"/computes/aks-cluster$")
        [service] = mms.services.values()
        payload = service.payload
        assert payload["computeType"] == "AKS" and payload["computeName"] == "aks-cluster"
        assert (payload["numReplicas"], payload["namespace"], payload["scoringTimeoutMs"]) == (3, "scoring", 5000)
        assert payload["autoScaler"]["autoscaleEnabled"] is False and payload["appInsightsEnabled"] is True
        assert payload["containerResourceRequirements"]["cpu"] == 2 and out["smoke_test"] == "passed"

    def test_a_crashing_aks_deployment_fails_with_the_operations_code_and_the_logs(
        self, mms: MmsContract, mms_server: Mms, registry: Registry, versions: dict[str, str], tmp_path: Path
    ) -> None:
        config = legacy_config(tmp_path, mms_server.url)
        with pytest.raises(PermanentError) as failed:
            deploy(config, tmp_path, registry, "aks-prod", MODEL, versions["init"])
        text = str(failed.value)
        assert "ended in state Failed: AKSDeploymentFailed: Kubernetes Deployment failed" in text
        assert "(CrashLoopBackOff)" in text and "this model cannot be loaded" in text
        [service] = mms.services.values()
        assert service.state == "Failed" and service.container is None

    def test_a_missing_compute_is_named(
        self, mms: MmsContract, mms_server: Mms, registry: Registry, versions: dict[str, str], tmp_path: Path
    ) -> None:
        config = legacy_config(tmp_path, mms_server.url)
        mms.computes.pop("aks-cluster")
        try:
            with pytest.raises(PermanentError, match="aks-cluster"):
                deploy(config, tmp_path, registry, "aks-prod", MODEL, versions["good"])
        finally:
            mms.computes["aks-cluster"] = "aks-cluster-dns.westeurope.cloudapp.azure.com"
        assert mms.services == {}


def test_the_legacy_warning_is_logged_once_per_target(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deploy_legacy, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="modelops.deploy.legacy"):
        assert deploy_legacy.warn_legacy_once("aci-dev", "aci") and not deploy_legacy.warn_legacy_once("aci-dev", "aci")
        assert deploy_legacy.warn_legacy_once("aks-prod", "aks")
    [aci, aks] = [r.getMessage() for r in caplog.records]
    assert "'aci-dev'" in aci and "2026-06-30" in aci and "'managed-online'" in aci
    assert "'aks-prod'" in aks and "'kubernetes-online'" in aks


def test_a_model_outside_the_workspace_is_refused_before_any_call(
    mms: MmsContract, mms_server: Mms, registry: Registry, versions: dict[str, str], tmp_path: Path
) -> None:
    config = legacy_config(tmp_path, mms_server.url)
    ctx = make_context(
        config, tmp_path, target="aci-dev", model_name="m", model_version="1", tracking_uri=registry.tracking_uri
    )
    with pytest.raises(PermanentError, match="is not registered in workspace"):
        deploy_legacy.LegacyWebserviceExecutor().execute(ctx)
    assert mms.requests == []
