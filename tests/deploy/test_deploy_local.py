"""The `local` target end to end: real MLflow registry, real `mlflow models serve` processes."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest
import requests

from shared.adapters.local_deployments import LocalDeploymentStore, is_alive
from shared.adapters.local_server import start_server
from shared.config.schema import ReactorConfig
from shared.deployments import list_managed_deployments, undeploy_local
from shared.domain.actions import action_key
from shared.errors import BadRequest, PermanentError
from shared.executors.deploy_local import LocalDeployExecutor
from shared.executors.registry import ExecutorRegistry
from tests.deploy.conftest import Registry, make_context, write_config

pytestmark = pytest.mark.slow

MODEL = "churn-local"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> ReactorConfig:
    path = tmp_path_factory.mktemp("cfg") / "modelops.yaml"
    return write_config(path, "local:\n  kind: local\n  startup_timeout_s: 90\n")


def deploy(registry: Registry, config: ReactorConfig, state_dir: Path, version: str) -> dict:
    ctx = make_context(
        config,
        state_dir,
        target="local",
        model_name=MODEL,
        model_version=version,
        tracking_uri=registry.tracking_uri,
    )
    executor = ExecutorRegistry().get("deploy", config.deployments["local"])
    assert isinstance(executor, LocalDeployExecutor)
    outcome = executor.execute(ctx)
    assert outcome.recheck_after_seconds is None
    return outcome.outputs.to_dict()


def example_payload(registry: Registry) -> dict:
    return {"dataframe_split": registry.features.to_dict(orient="split")}


class TestLocalDeploy:
    def test_served_version_predicts_like_pyfunc(
        self, registry: Registry, config: ReactorConfig, state_dir: Path
    ) -> None:
        import mlflow

        version = registry.log_sklearn(MODEL)
        out = deploy(registry, config, state_dir, version)

        assert out["smoke_test"] == "passed"
        response = requests.post(out["scoring_url"], json=example_payload(registry), timeout=30)
        assert response.status_code == 200, response.text
        expected = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}").predict(registry.features)
        assert response.json()["predictions"] == [int(v) for v in expected]
        served = LocalDeploymentStore(state_dir).get("local")
        assert served is not None and served.model_version == version and served.url == out["endpoint_url"]

    def test_duplicate_returns_the_running_server(
        self, registry: Registry, config: ReactorConfig, state_dir: Path
    ) -> None:
        before = LocalDeploymentStore(state_dir).get("local")
        assert before is not None
        out = deploy(registry, config, state_dir, before.model_version)
        assert out["reused"] is True
        assert out["pid"] == before.pid
        assert [r.pid for r in LocalDeploymentStore(state_dir).list()] == [before.pid]

    def test_failed_smoke_test_keeps_previous_version_serving(
        self, registry: Registry, config: ReactorConfig, state_dir: Path
    ) -> None:
        store = LocalDeploymentStore(state_dir)
        previous = store.get("local")
        assert previous is not None
        broken = registry.log_broken(MODEL)

        with pytest.raises(PermanentError) as failure:
            deploy(registry, config, state_dir, broken)

        assert "smoke test failed" in str(failure.value)
        assert "out of range for this broken model" in str(failure.value)  # the endpoint's answer
        assert store.get("local") == previous
        assert store.find("local", MODEL, broken) is None
        answer = requests.post(previous.url + "/invocations", json=example_payload(registry), timeout=30)
        assert answer.status_code == 200

    def test_a_missing_version_is_refused_at_once_and_the_previous_keeps_serving(
        self, registry: Registry, config: ReactorConfig, state_dir: Path
    ) -> None:
        store = LocalDeploymentStore(state_dir)
        previous = store.get("local")
        assert previous is not None
        started = time.monotonic()
        with pytest.raises(PermanentError, match=f"model {MODEL}/999 not found in "):
            deploy(registry, config, state_dir, "999")
        assert time.monotonic() - started < 5  # no server was started and waited for
        assert store.get("local") == previous and store.find("local", MODEL, "999") is None

    def test_a_server_an_earlier_attempt_never_recorded_is_stopped(
        self, registry: Registry, config: ReactorConfig, state_dir: Path
    ) -> None:
        import psutil

        version = registry.log_sklearn(MODEL)
        # what a worker killed between spawning the server and recording it leaves behind
        stray = start_server(
            model_uri=f"models:/{MODEL}/{version}",
            tracking_uri=registry.tracking_uri,
            registry_uri=None,
            host="127.0.0.1",
            port=None,
            workers=1,
            log_file=state_dir / "stray.log",
            owner=action_key("deploy", "local", MODEL, version),
        )
        out = deploy(registry, config, state_dir, version)
        assert out["pid"] != stray.pid and out["smoke_test"] == "passed"
        deadline = time.monotonic() + 30
        while psutil.pid_exists(stray.pid) and time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(stray.pid, os.WNOHANG)  # it is this test's child: reap it once stopped
            time.sleep(0.2)
        assert not psutil.pid_exists(stray.pid), "the stray scoring server is still running"
        assert [r.pid for r in LocalDeploymentStore(state_dir).list() if r.model_version == version] == [out["pid"]]

    def test_dead_process_is_restarted(self, registry: Registry, config: ReactorConfig, state_dir: Path) -> None:
        store = LocalDeploymentStore(state_dir)
        dead = store.get("local")
        assert dead is not None
        os.killpg(dead.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(dead.pid, 0)  # reap it: a zombie would still look alive
        assert not is_alive(dead)

        out = deploy(registry, config, state_dir, dead.model_version)

        assert out["reused"] is False and out["pid"] != dead.pid
        assert requests.get(out["endpoint_url"] + "/ping", timeout=5).status_code == 200

    def test_new_version_replaces_old_after_it_is_healthy(
        self, registry: Registry, config: ReactorConfig, state_dir: Path
    ) -> None:
        store = LocalDeploymentStore(state_dir)
        old = store.get("local")
        assert old is not None
        version = registry.log_sklearn(MODEL)

        out = deploy(registry, config, state_dir, version)

        assert out["replaced"] == [f"{MODEL}/{old.model_version}"]
        assert not is_alive(old)
        # the replaced one is stopped but kept (retired) for a rollback
        assert [(r.model_version, r.status) for r in store.list()] == [
            (version, "serving"),
            (old.model_version, "retired"),
        ]
        listed = list_managed_deployments(config, state_dir)
        assert [(r["target"], r["model_version"], r["alive"]) for r in listed] == [
            ("local", version, True),
            ("local", old.model_version, False),
        ]

    def test_undeploy_stops_the_server_and_frees_the_port(self, config: ReactorConfig, state_dir: Path) -> None:
        served = LocalDeploymentStore(state_dir).get("local")
        assert served is not None

        result = undeploy_local(config, state_dir, "local")

        assert result["count"] == 2  # the serving one and the retired one kept for rollback
        assert [s["was_running"] for s in result["stopped"]] == [True, False]
        assert not is_alive(served)
        assert LocalDeploymentStore(state_dir).list() == []
        assert not Path(served.log_file).exists()
        with pytest.raises(requests.ConnectionError):
            requests.get(served.url + "/ping", timeout=5)
        with pytest.raises(BadRequest, match="no local deployment target named 'nope'"):
            undeploy_local(config, state_dir, "nope")


def test_model_without_input_example_is_served_with_ping_only(
    registry: Registry, config: ReactorConfig, tmp_path: Path
) -> None:
    name = "no-example"
    version = registry.log_sklearn(name, with_example=False)
    ctx = make_context(
        config, tmp_path, target="local", model_name=name, model_version=version, tracking_uri=registry.tracking_uri
    )
    try:
        out = LocalDeployExecutor().execute(ctx).outputs.to_dict()
        assert out["smoke_test"].startswith("skipped: the model has no input example")
        assert requests.get(out["endpoint_url"] + "/ping", timeout=5).status_code == 200
    finally:
        undeploy_local(config, tmp_path, "local")
