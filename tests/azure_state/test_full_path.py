"""The Azure runtime end to end on a real Azurite: an Event Grid event through the HTTP app ->
ledger in Table Storage -> message on the queue -> the queue-triggered function, called as the
host calls it -> a real MLflow registration -> an outcome CloudEvent on the topic. And poison."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from functions.queue_worker import max_dequeue_count
from shared.adapters.azure_storage import StorageAccount
from shared.bootstrap import Container
from shared.config.registries import MlflowRegistry
from shared.executors.registry import ExecutorRegistry
from shared.settings import Settings
from tests.azure_state.host_queue import deliver
from tests.contract.eventgrid_topic_server import EventGridTopic
from tests.spine.apptest import CONFIG
from tests.support import indexed_functions, train_and_register, unique, write_config

REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"


def grid_event(name: str, version: str) -> list[dict[str, Any]]:
    return [
        {
            "id": unique("eg"),
            "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws",
            "subject": f"models/{name}:{version}",
            "eventType": REGISTERED,
            "eventTime": "2026-11-28T04:00:00Z",
            "data": {"modelName": name, "modelVersion": version},
            "dataVersion": "2",
            "metadataVersion": "1",
        }
    ]


def run_action(container: Container) -> Any:
    return indexed_functions(container)["run_action"].get_user_function()


def poisoned_action(container: Container) -> Any:
    return indexed_functions(container)["poisoned_action"].get_user_function()


class TestFullPath:
    def test_event_grid_to_outcome_event_through_table_storage_and_the_queue(
        self,
        tmp_path: Path,
        azure_env: dict[str, str],
        container: Container,
        account: StorageAccount,
        topic: tuple[EventGridTopic, str],
    ) -> None:
        name = unique("churn")
        version, _ = train_and_register(f"sqlite:///{tmp_path}/source.db", name)
        client = TestClient(container.http_app())

        response = client.post(
            "/api/hooks/eventgrid", json=grid_event(name, version), headers={"X-Correlation-Id": "corr-42"}
        )
        assert response.status_code == 202, response.text
        assert response.headers["X-Correlation-Id"] == "corr-42"
        [action_id] = response.json()["action_ids"]
        peeked = account.queue_client(azure_env["MODELOPS_ACTIONS_QUEUE"]).peek_messages()
        assert [json.loads(m.content) for m in peeked] == [{"action_id": action_id, "correlation_id": "corr-42"}]

        results = deliver(
            account, azure_env["MODELOPS_ACTIONS_QUEUE"], run_action(container), max_dequeue_count=max_dequeue_count()
        )
        assert results == ["done"]

        ledger = container.reactor().ledger
        action = ledger.get_action(action_id)
        assert type(ledger).__name__ == "TableLedger"
        assert action is not None
        assert action.status == "succeeded" and action.attempts == 1, action.error
        import mlflow

        target = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/aml.db")
        copied = target.get_model_version(
            action.outputs.to_dict()["model_name"], action.outputs.to_dict()["model_version"]
        )
        assert copied.tags["modelops.action_key"] == action.key  # the copy carries its lineage
        [event] = topic[0].received
        assert event["type"] == "modelops.action.succeeded"
        assert event["subject"] == f"models/{name}/versions/{version}"
        assert event["data"]["action_id"] == action_id and event["data"]["outputs"]["model_version"]
        # the same delivery again (at-least-once): nothing runs twice, nothing is published twice
        account.queue_client(azure_env["MODELOPS_ACTIONS_QUEUE"]).send_message(json.dumps({"action_id": action_id}))
        again = deliver(account, azure_env["MODELOPS_ACTIONS_QUEUE"], run_action(container), max_dequeue_count=5)
        assert again == ["done"]
        rerun = ledger.get_action(action_id)
        assert rerun is not None
        assert len(topic[0].received) == 1 and rerun.attempts == 1


class TestPoison:
    def test_a_message_that_is_not_json_ends_in_the_poison_queue_and_the_ledger(
        self, azure_env: dict[str, str], container: Container, account: StorageAccount
    ) -> None:
        queue = azure_env["MODELOPS_ACTIONS_QUEUE"]
        container.reactor()  # creates the queues, as the host's first invocation would
        account.queue_client(queue).send_message("run everything now!")
        results = deliver(account, queue, run_action(container), max_dequeue_count=max_dequeue_count())
        assert results == ["failed: BadRequest"] * max_dequeue_count() + ["poisoned"]

        assert deliver(account, f"{queue}-poison", poisoned_action(container), max_dequeue_count=5) == ["done"]
        [report] = container.reactor().ledger.list_reports("poison")
        assert report["reason"].startswith(f"moved to poison queue after {max_dequeue_count()} attempts:")
        assert "not JSON" in report["reason"] and report["message"] == "run everything now!"

    def test_an_action_whose_deliveries_keep_crashing_is_failed_with_the_reason(
        self,
        tmp_path: Path,
        azure_env: dict[str, str],
        account: StorageAccount,
        topic: tuple[EventGridTopic, str],
    ) -> None:
        class Crashing:
            """An executor that takes the invocation down (a library calling sys.exit)."""

            def execute(self, ctx: Any) -> Any:
                raise SystemExit("native library called exit(3)")

        config = write_config(tmp_path / "crash.yaml", CONFIG % {"tmp": tmp_path} + "worker: {lease_seconds: 0.5}\n")
        # the host's container, with the crashing executor
        container = Container(
            Settings.from_env({**azure_env, "MODELOPS_CONFIG": str(config)}),
            executors=ExecutorRegistry({("register", MlflowRegistry): Crashing}),
        )
        app_reactor = container.reactor()
        from datetime import UTC, datetime

        from shared.ingest.eventgrid import GridEvent, to_model_event

        accepted = app_reactor.accept(
            to_model_event(
                GridEvent(
                    id="g1",
                    type=REGISTERED,
                    subject="models/crashy:1",
                    time=datetime.now(UTC),
                    data={"modelName": "crashy", "modelVersion": 1},
                    topic="t",
                ),
                source="azureml",
            )
        )
        [action_id] = accepted.action_ids
        queue = azure_env["MODELOPS_ACTIONS_QUEUE"]
        results = deliver(account, queue, run_action(container), max_dequeue_count=max_dequeue_count())
        assert results[-1] == "poisoned" and results.count("failed: SystemExit") >= 1

        assert deliver(account, f"{queue}-poison", poisoned_action(container), max_dequeue_count=5) == ["done"]
        action = app_reactor.ledger.get_action(action_id)
        assert action is not None
        assert action.status == "failed"
        assert action.error is not None
        assert action.error.startswith(f"moved to poison queue after {max_dequeue_count()} attempts: SystemExit")
        assert "exit(3)" in action.error
        assert [e["type"] for e in topic[0].received] == ["modelops.action.failed"]
