"""Queue deliveries in Azure mode (Table ledger and Storage queue on Azurite, the queue-triggered
function called as the host calls it): failed executions are real failures only, and a poison
report names the error the deliveries raised."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from functions.queue_worker import max_dequeue_count
from shared.adapters.azure_storage import StorageAccount
from shared.bootstrap import Container
from shared.config.registries import MlflowRegistry
from shared.executors.registry import ExecutorRegistry
from shared.settings import Settings
from tests.azure_state.host_queue import deliver, queue_message
from tests.azure_state.test_full_path import grid_event, poisoned_action, run_action
from tests.contract.eventgrid_topic_server import EventGridTopic
from tests.spine.apptest import CONFIG
from tests.support import train_and_register, unique, write_config


def drain(account: StorageAccount, queue: str, function: Any, *, quiet_for: float, timeout: float) -> list[str]:
    """One host instance's delivery loop: every message until the queue (invisible ones too) is
    empty; a failed delivery comes back after 1 s, as host.json's visibilityTimeout would bring it."""
    client = account.queue_client(queue)
    results: list[str] = []
    deadline = time.monotonic() + timeout
    empty_since: float | None = None
    while time.monotonic() < deadline:
        message = client.receive_message(visibility_timeout=60)
        if message is None:
            if client.get_queue_properties().approximate_message_count == 0:
                empty_since = empty_since or time.monotonic()
                if time.monotonic() - empty_since >= quiet_for:
                    return results
            else:
                empty_since = None
            time.sleep(0.2)
            continue
        empty_since = None
        try:
            function(queue_message(message))
        except BaseException as exc:  # noqa: BLE001 - the host survives whatever the function raises
            results.append(f"failed: {type(exc).__name__}: {exc}")
            client.update_message(message.id, pop_receipt=message.pop_receipt, visibility_timeout=1)
            continue
        client.delete_message(message)
        results.append("done")
    raise AssertionError(f"queue {queue} not drained in {timeout}s: {results}")


def test_eight_concurrent_duplicates_of_a_new_event_cause_no_failed_execution(
    tmp_path: Path,
    azure_env: dict[str, str],
    account: StorageAccount,
    topic: tuple[EventGridTopic, str],
) -> None:
    config = write_config(
        tmp_path / "dupes.yaml",
        CONFIG % {"tmp": tmp_path} + "worker: {lease_seconds: 5, redelivery_delay_seconds: 3}\n",
    )
    env = {**azure_env, "MODELOPS_CONFIG": str(config)}
    hosts = [Container(Settings.from_env(env)) for _ in range(2)]  # two instances, two worker ids
    name = unique("churn")
    version, _ = train_and_register(f"sqlite:///{tmp_path}/source.db", name)
    client = TestClient(hosts[0].http_app())
    barrier = threading.Barrier(8)

    def post(_: int) -> Any:
        barrier.wait()
        return client.post("/api/hooks/eventgrid", json=grid_event(name, version))

    with ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(post, range(8)))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [202], [r.text for r in responses]
    assert sum(1 for r in responses if r.json().get("duplicate")) == 7
    [action_id] = {r.json()["action_ids"][0] for r in responses}
    queue = azure_env["MODELOPS_ACTIONS_QUEUE"]
    visible = account.queue_client(queue).peek_messages(max_messages=32)
    assert len(visible) == 1, "a duplicate's re-send must wait for the first message"

    # each instance delivers two messages at a time, as host.json's batchSize lets it
    loops = [(host, i) for host in hosts for i in range(2)]
    with ThreadPoolExecutor(len(loops)) as pool:
        runs = list(pool.map(lambda h: drain(account, queue, run_action(h[0]), quiet_for=3, timeout=120), loops))
    results = [r for run in runs for r in run]
    assert [r for r in results if r != "done"] == [], results
    assert len(results) >= 7  # the first message and the delayed ones (a writer that lost the insert race sends none)
    action = hosts[0].reactor().ledger.get_action(action_id)
    assert action is not None and action.status == "succeeded" and action.attempts == 1, action
    assert [e["type"] for e in topic[0].received] == ["modelops.action.succeeded"]


class TestPoisonReasons:
    def test_a_message_for_an_action_not_in_the_ledger_is_reported_with_that_error(
        self, azure_env: dict[str, str], container: Container, account: StorageAccount
    ) -> None:
        queue = azure_env["MODELOPS_ACTIONS_QUEUE"]
        container.reactor()  # creates the queues, as the host's first invocation would
        account.queue_client(queue).send_message(json.dumps({"action_id": "act_gone"}))
        results = deliver(account, queue, run_action(container), max_dequeue_count=max_dequeue_count())
        assert results == ["failed: BadRequest"] * max_dequeue_count() + ["poisoned"]

        assert deliver(account, f"{queue}-poison", poisoned_action(container), max_dequeue_count=5) == ["done"]
        [report] = container.reactor().ledger.list_reports("poison")
        assert report["reason"].startswith(
            f"moved to poison queue after {max_dequeue_count()} attempts: BadRequest: queue message names"
            " action act_gone, which is not in the ledger"
        ), report["reason"]

    def test_deliveries_that_find_the_lease_of_a_dead_invocation_report_what_killed_it(
        self, tmp_path: Path, azure_env: dict[str, str], account: StorageAccount
    ) -> None:
        class Crashing:
            """An executor that takes the invocation down (a library calling sys.exit)."""

            def execute(self, ctx: Any) -> Any:
                raise SystemExit("native library called exit(3)")

        # a lease that outlives every redelivery: each one finds the dead invocation's lease
        config = write_config(tmp_path / "crash.yaml", CONFIG % {"tmp": tmp_path} + "worker: {lease_seconds: 60}\n")
        container = Container(
            Settings.from_env({**azure_env, "MODELOPS_CONFIG": str(config)}),
            executors=ExecutorRegistry({("register", MlflowRegistry): Crashing}),
        )
        name = unique("crashy")
        client = TestClient(container.http_app())
        [action_id] = client.post("/api/hooks/eventgrid", json=grid_event(name, "1")).json()["action_ids"]
        queue = azure_env["MODELOPS_ACTIONS_QUEUE"]
        results = deliver(account, queue, run_action(container), max_dequeue_count=max_dequeue_count())
        assert results == ["failed: SystemExit"] + ["failed: ActionLeased"] * (max_dequeue_count() - 1) + ["poisoned"]

        assert deliver(account, f"{queue}-poison", poisoned_action(container), max_dequeue_count=5) == ["done"]
        action = container.reactor().ledger.get_action(action_id)
        assert action is not None and action.status == "failed" and action.error is not None
        assert action.error.startswith(
            f"moved to poison queue after {max_dequeue_count()} attempts: SystemExit: native library called exit(3)"
        ), action.error
