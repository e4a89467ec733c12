"""`func start` with local.settings.sample.json: a signed MLflow webhook through the HTTP-triggered
function becomes an executed action through the queue-triggered one, on Azurite.

The host (Core Tools cannot run here) is reproduced as in test_full_path.py: the functions are
indexed from the app built over the sample's settings and called as the host calls them, the
queue loop is tests/azure_state/host_queue.py against the real queue. Only what cannot be taken
literally is changed, each named below.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import azure.functions as func
import pytest

from functions.queue_worker import max_dequeue_count
from shared.adapters.azure_storage import StorageAccount
from shared.bootstrap import Container
from shared.settings import Settings
from tests.azure_state.host_queue import deliver
from tests.contract.azurite import ACCOUNT, Azurite
from tests.support import ROOT, indexed_functions, mlflow_delivery, train_and_register, unique

SAMPLE = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
SECRET = "sample-settings-webhook-secret"
HOOK = "http://localhost:7071/api/hooks/mlflow"  # func start's default port


def sample_env(tmp_path: Path, azurite: Azurite) -> dict[str, str]:
    env = dict(SAMPLE)
    # UseDevelopmentStorage=true is Azurite's account on the fixed ports 10000-10002; the session's
    # Azurite serves the same account on free ports (other sessions share this machine)
    env["AzureWebJobsStorage"] = azurite.connection_string
    env["MLFLOW_WEBHOOK_SECRET"] = SECRET  # empty in the sample: the user sets their own
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path}/source.db"  # the sample's 127.0.0.1:5000, here a file
    env["MODELOPS_STATE_DIR"] = str(tmp_path / "state")  # the sample's .modelops, relative to the project
    return env


class TestSampleSettingsUnderTheHost:
    def test_the_sample_uses_the_queue_worker_on_azurite(self) -> None:
        assert SAMPLE["MODELOPS_STATE_BACKEND"] == "azure"
        assert SAMPLE["AzureWebJobsStorage"] == "UseDevelopmentStorage=true"
        account = StorageAccount.from_settings(Settings.from_env(SAMPLE).storage)
        queue = account.queue_client(SAMPLE["MODELOPS_ACTIONS_QUEUE"])
        assert queue.url.startswith(f"http://127.0.0.1:10001/{ACCOUNT}/")  # what the SDK makes of the shorthand
        assert account.table_client(SAMPLE["MODELOPS_LEDGER_TABLE"]).url.startswith(f"http://127.0.0.1:10002/{ACCOUNT}")

    def test_a_signed_webhook_becomes_an_executed_action_through_the_queue_triggered_function(
        self, tmp_path: Path, azurite: Azurite, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        env = sample_env(tmp_path, azurite)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(ROOT)  # the host runs from the project root: MODELOPS_CONFIG is relative to it
        account = StorageAccount(connection_string=env["AzureWebJobsStorage"])
        queue = env["MODELOPS_ACTIONS_QUEUE"]
        container = Container(Settings.from_env(env))  # what function_app builds at indexing
        functions = indexed_functions(container)
        container.reactor()  # creates table and queues, as the first invocation would
        account.queue_client(queue).clear_messages()  # the sample's fixed queue name, in a shared Azurite

        name = unique("churn")
        version, _ = train_and_register(env["MLFLOW_TRACKING_URI"], name)
        envelope = {
            "entity": "model_version",
            "action": "created",
            "timestamp": 1,
            "data": {"name": name, "version": version},
        }
        body, headers = mlflow_delivery(SECRET, envelope)
        http_api = functions["http_api"].get_user_function()
        request = func.HttpRequest(
            method="POST", url="http://localhost:7071/api/hooks/mlflow", body=body, headers=headers
        )
        response = asyncio.run(http_api(request, None))
        assert response.status_code == 202, response.get_body()
        [action_id] = json.loads(response.get_body())["action_ids"]

        unsigned = func.HttpRequest(
            method="POST",
            url="http://localhost:7071/api/hooks/mlflow",
            body=body,
            headers={"Content-Type": "application/json"},
        )
        assert asyncio.run(http_api(unsigned, None)).status_code == 401

        run_action = functions["run_action"].get_user_function()
        assert deliver(account, queue, run_action, max_dequeue_count=max_dequeue_count()) == ["done"]

        action = container.reactor().ledger.get_action(action_id)
        assert action is not None and action.status == "succeeded", action and action.error
        import mlflow

        # the default config's rule: every new version is copied into the local "Azure ML" registry
        target = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/state/aml-registry.db")
        outputs = action.outputs.to_dict()
        copied = target.get_model_version(outputs["model_name"], outputs["model_version"])
        assert copied.tags["modelops.action_key"] == action.key
