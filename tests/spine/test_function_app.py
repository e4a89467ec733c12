"""The Functions app as the host sees it: indexing, bindings, and a light import."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT, doc, indexed_functions

HEAVY = ("mlflow", "azure.ai.ml", "azureml.core", "databricks.sdk", "pyspark", "pandas", "sklearn")


def _functions() -> dict[str, dict]:
    return {name: json.loads(f.get_function_json()) for name, f in indexed_functions().items()}


class TestIndexing:
    def test_every_trigger_is_indexed_with_its_bindings(self) -> None:
        functions = _functions()
        assert set(functions) == {
            "http_api",
            "aml_events",
            "run_action",
            "poisoned_action",
            "cleanup_timer",
            "registry_poller",
            "retention_timer",
        }
        [http] = [b for b in functions["http_api"]["bindings"] if b["direction"] == "IN"]
        assert http["type"] == "httpTrigger" and http["authLevel"] == "FUNCTION" and http["route"] == "/{*route}"
        assert {"POST", "GET", "HEAD", "OPTIONS"} <= set(http["methods"])
        assert functions["aml_events"]["bindings"] == [{"direction": "IN", "type": "eventGridTrigger", "name": "event"}]
        [queue] = functions["run_action"]["bindings"]
        assert queue["type"] == "queueTrigger"
        assert queue["queueName"] == "%MODELOPS_ACTIONS_QUEUE%" and queue["connection"] == "AzureWebJobsStorage"
        for name, setting in (
            ("cleanup_timer", "%MODELOPS_CLEANUP_SCHEDULE%"),
            ("registry_poller", "%MODELOPS_POLL_SCHEDULE%"),
            ("retention_timer", "%MODELOPS_RETENTION_SCHEDULE%"),
        ):
            [timer] = functions[name]["bindings"]
            assert timer["type"] == "timerTrigger" and timer["schedule"] == setting and timer["runOnStartup"] is False

    def test_head_health_through_the_http_function_answers_200_without_a_body(self) -> None:
        import asyncio

        import azure.functions as func

        http_api = indexed_functions()["http_api"].get_user_function()
        for method in ("GET", "HEAD"):
            request = func.HttpRequest(method=method, url="http://localhost/api/health", body=b"", headers={})
            response = asyncio.run(http_api(request, None))
            assert response.status_code == 200, (method, response.get_body())
            assert (response.get_body() == b"") == (method == "HEAD")

    def test_every_app_setting_a_binding_names_is_in_the_sample_settings(self) -> None:
        sample = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
        for function in _functions().values():
            for binding in function["bindings"]:
                for value in binding.values():
                    if isinstance(value, str) and value.startswith("%") and value.endswith("%"):
                        assert value.strip("%") in sample, value


class TestColdStart:
    def test_importing_the_app_loads_no_heavy_sdk(self) -> None:
        code = f"import sys, function_app; print([m for m in {HEAVY!r} if m in sys.modules])"
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "[]", out.stdout + out.stderr

    def test_an_invalid_config_is_refused_at_start(self, tmp_path) -> None:  # type: ignore[no-untyped-def]
        bad = tmp_path / "bad.yaml"
        bad.write_text("rules:\n  - on: model_version.created\n    do: [{deploy: nowhere}]\n")
        out = subprocess.run(
            [sys.executable, "-c", "import function_app"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={"PATH": "/usr/bin:/bin", "MODELOPS_CONFIG": str(bad)},
        )
        assert out.returncode != 0
        assert str(bad) in out.stderr and "rules[0].do[0].deploy" in out.stderr and "fix:" in out.stderr

    def test_in_azure_a_missing_config_is_refused_at_indexing_naming_the_setting_and_the_fix(
        self, tmp_path: Path
    ) -> None:
        for azure_setting in ("WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME"):
            env = {"PATH": "/usr/bin:/bin", azure_setting: "x1", "FUNCTIONS_WORKER_RUNTIME": "python"}
            env["MODELOPS_STATE_DIR"] = str(tmp_path / "state")
            out = subprocess.run(
                [sys.executable, "-c", "import function_app"], cwd=ROOT, capture_output=True, text=True, env=env
            )
            assert out.returncode != 0
            assert "MODELOPS_CONFIG" in out.stderr and "modelops config init --azure" in out.stderr, out.stderr
        env["MODELOPS_CONFIG"] = "shared/config/default.yaml"  # the local default named explicitly: refused too
        out = subprocess.run(
            [sys.executable, "-c", "import function_app"], cwd=ROOT, capture_output=True, text=True, env=env
        )
        assert out.returncode != 0 and "embedded local default" in out.stderr, out.stderr

    def test_in_azure_with_a_config_it_indexes(self, tmp_path: Path) -> None:
        config = tmp_path / "modelops.yaml"
        config.write_text((ROOT / "shared/config/default.yaml").read_text())
        env = {"PATH": "/usr/bin:/bin", "WEBSITE_INSTANCE_ID": "x1", "MODELOPS_CONFIG": str(config)}
        env["MODELOPS_STATE_DIR"] = str(tmp_path / "state")
        code = "import function_app; print(len(function_app.app.get_functions()))"
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr[-3000:]
        assert int(out.stdout.strip().splitlines()[-1]) == 7

    def test_locally_func_start_settings_alone_keep_the_embedded_default(self, tmp_path: Path) -> None:
        env = {"PATH": "/usr/bin:/bin", "FUNCTIONS_WORKER_RUNTIME": "python"}
        env["MODELOPS_STATE_DIR"] = str(tmp_path / "state")
        out = subprocess.run(
            [sys.executable, "-c", "import function_app"], cwd=ROOT, capture_output=True, text=True, env=env
        )
        assert out.returncode == 0, out.stderr[-3000:]

    def test_a_cold_webhook_builds_the_webhook_routes_alone_and_refuses_in_the_one_error_shape(
        self, tmp_path: Path
    ) -> None:
        env = {"PATH": "/usr/bin:/bin", "MODELOPS_STATE_DIR": str(tmp_path / "state"), "MLFLOW_WEBHOOK_SECRET": "s"}
        out = subprocess.run(
            [sys.executable, "-c", COLD_WEBHOOK_PROBE], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
        )
        assert out.returncode == 0, out.stderr[-3000:]
        probe = json.loads(out.stdout.strip().splitlines()[-1])
        status, body = probe["forged"]
        assert status == 401 and set(body) == {"error", "problems"} and "X-MLflow" in body["error"], body
        assert probe["fastapi_built_whole"] is False  # no ops API, audit page or OpenAPI for a webhook
        assert probe["health"] == 200 and probe["then_whole"] is True


COLD_WEBHOOK_PROBE = """
import asyncio, json, sys
import azure.functions as func
import function_app
http = {f.get_function_name(): f for f in function_app.app.get_functions()}["http_api"].get_user_function()
headers = {"Content-Type": "application/json", "X-MLflow-Delivery-Id": "d1", "X-MLflow-Timestamp": "1765065600",
           "X-MLflow-Signature": "v1,AAAA"}
forged = func.HttpRequest(method="POST", url="http://localhost/api/hooks/mlflow", body=b"{}", headers=headers)
answer = asyncio.run(http(forged, None))
whole = "shared.api.ui.routes" in sys.modules or "shared.api.ops" in sys.modules
health = asyncio.run(http(func.HttpRequest(method="GET", url="http://localhost/api/health", body=b""), None))
print(json.dumps({"forged": [answer.status_code, json.loads(answer.get_body())],
                  "fastapi_built_whole": whole, "health": health.status_code,
                  "then_whole": "shared.api.ui.routes" in sys.modules}))
"""


WIRING_PROBE = """
import json, sys
import shared.config.loader as loader
import shared.bootstrap as bootstrap

loads, built = [], []
real_load = loader.load_config
def counting_load(*args, **kwargs):
    loads.append(args)
    return real_load(*args, **kwargs)
bootstrap.load_config = counting_load

class CountingReactor(bootstrap.Reactor):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        built.append(self)
bootstrap.Reactor = CountingReactor

import function_app
indexed = len(loads)
from fastapi.testclient import TestClient
health = TestClient(function_app.container.http_app()).get("/api/health").status_code
functions = {f.get_function_name(): f for f in function_app.app.get_functions()}
import azure.functions as func
functions["aml_events"].get_user_function()(func.EventGridEvent(
    id="w1", data={"ModelName": "churn", "ModelVersion": 1}, topic="/subscriptions/s/x",
    subject="models/churn:1", event_type="Microsoft.MachineLearningServices.ModelRegistered",
    event_time=None, data_version="2"))
events = TestClient(function_app.container.http_app()).get("/api/events").json()
print(json.dumps({"loads": indexed, "after": len(loads), "reactors": len(built), "health": health,
                  "events": [e["id"] for e in events["events"]]}))
"""


class TestWiring:
    def test_indexing_loads_the_config_once_and_every_function_shares_one_reactor(self, tmp_path: Path) -> None:
        env = {"PATH": "/usr/bin:/bin", "MODELOPS_STATE_DIR": str(tmp_path / "state")}
        out = subprocess.run(
            [sys.executable, "-c", WIRING_PROBE], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
        )
        assert out.returncode == 0, out.stderr[-3000:]
        probe = json.loads(out.stdout.strip().splitlines()[-1])
        assert probe["loads"] == 1 and probe["after"] == 1  # validated once, at indexing; never again
        assert probe["reactors"] == 1  # the HTTP app and the Event Grid function use the same reactor
        assert probe["health"] == 200 and len(probe["events"]) == 1  # what the trigger recorded, the API shows


class TestPackaging:
    def test_ignore_files_keep_local_artifacts_out_of_git_and_the_package(self) -> None:
        funcignore = (ROOT / ".funcignore").read_text().split()
        gitignore = (ROOT / ".gitignore").read_text().split()
        for local in ("mlartifacts", ".schemathesis", ".hypothesis"):
            assert local in funcignore and f"{local}/" in gitignore, local
        for dev_only in (".ci", "requirements*.in", "tests", "benchmarks"):
            assert dev_only in funcignore, dev_only

    def test_the_documented_compile_ships_the_bytecode_every_module_of_the_app_loads_from(self, tmp_path: Path) -> None:
        """The package runs read-only in Azure: each module must load from a shipped .pyc, none compiled."""
        [command] = [line for line in doc("azure.md").splitlines() if line.startswith("python -m compileall")]
        assert not {"__pycache__", "*.pyc"} & set((ROOT / ".funcignore").read_text().split())
        package = tmp_path / "package"
        package.mkdir()
        shutil.copy(ROOT / "function_app.py", package)
        for tree in ("functions", "shared"):
            shutil.copytree(ROOT / tree, package / tree, ignore=shutil.ignore_patterns("__pycache__"))
        subprocess.run([sys.executable, *shlex.split(command)[1:]], cwd=package, check=True)
        env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "MODELOPS_STATE_DIR": str(tmp_path / "state")}
        code = "import function_app; function_app.container.hooks_app(); function_app.container.http_app()"
        out = subprocess.run([sys.executable, "-v", "-c", code], cwd=package, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr[-3000:]
        loaded = re.findall(r"^# code object from (.+)$", out.stderr, flags=re.M)
        ours = [path.strip("'") for path in loaded if str(package) in path]
        compiled = [path for path in ours if path.endswith(".py")]
        assert compiled == [] and len(ours) > 50, (compiled, len(ours))
