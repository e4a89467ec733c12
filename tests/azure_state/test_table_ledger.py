"""What only the Table ledger has to handle: no cross-partition transaction (a recording cut short
is finished by the redelivery), its round trips and the entity size limits. The ledger port's own guarantees run on
both backends in tests/ledger."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from azure.data.tables import TableClient

from shared.adapters.azure_storage import StorageAccount
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent
from shared.domain.outputs import RegisterOutputs
from shared.ledger.azure_tables import TableLedger
from tests.ledger.support import event, must, plan


class CrashAddingActions:
    """azure-core's ``raw_request_hook`` on a real Azurite client: the first batch that creates an
    action on its own (its first entity a key claim: an event whose actions could not join its
    batch, a key another event holds) dies before it is sent, like a killed host."""

    def __init__(self) -> None:
        self.crashed = False

    def __call__(self, request: Any) -> None:
        http = request.http_request
        first = re.search(rb'"RowKey":\s*"([^"]*)"', http.body or b"") if http.url.endswith("$batch") else None
        if not self.crashed and first is not None and first.group(1).startswith(b"key_"):
            self.crashed = True
            raise ConnectionError("host killed")


class CountingRequests:
    """azure-core's ``raw_request_hook`` on a real client: the requests one ledger call sends."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, request: Any) -> None:
        http = request.http_request
        self.sent.append(f"{http.method} {urlsplit(http.url).path.rsplit('/', 1)[-1].split('(')[0]}")

    def during(self, call: Any) -> list[str]:
        self.sent.clear()
        call()
        return list(self.sent)


def other_source(version: str) -> ModelEvent:
    """The same version seen by another source: another event, planning the same action keys."""
    return ModelEvent(
        source="poller", kind=MODEL_VERSION_CREATED, source_type="x", model_name="m", model_version=version
    )


class TestTableLedger:
    def test_a_recording_interrupted_while_adding_actions_one_by_one_is_finished_by_the_redelivery(
        self, account: StorageAccount, names: dict[str, str]
    ) -> None:
        ledger = TableLedger(account.table_client(names["table"]))
        [held] = ledger.record_event(other_source("3"), plan("3"), reason=None, max_attempts=3).action_ids
        hook = CrashAddingActions()
        crashing = TableLedger(
            TableClient.from_connection_string(
                str(account.connection_string), table_name=names["table"], raw_request_hook=hook
            )
        )
        with pytest.raises(ConnectionError):  # the first key is held: the event alone, then its actions
            crashing.record_event(event("3"), plan("3", steps=2), reason=None, max_attempts=3)
        crashed = [e for e in ledger.list_events() if e["source"] == "mlflow"]
        assert len(crashed) == 1 and ledger.get_event(crashed[0]["id"])["actions"] == []  # type: ignore[index]
        redelivered = ledger.record_event(event("3"), plan("3", steps=2), reason=None, max_attempts=3)
        assert redelivered.duplicate and redelivered.event_id == crashed[0]["id"]
        assert redelivered.action_ids[0] == held and len(redelivered.action_ids) == 2
        assert redelivered.dispatch == [held]  # never started; the second runs after it
        stored = ledger.get_event(redelivered.event_id)
        assert stored is not None and {a["id"] for a in stored["actions"]} == set(redelivered.action_ids)
        assert len(ledger.list_actions()) == 2
        [line] = ledger.action_log(redelivered.action_ids[1])  # planned once, by the redelivery
        assert line["message"].endswith(f"for event {redelivered.event_id}")

    def test_a_new_event_is_one_batch_and_a_duplicate_one_read_and_one_batch(
        self, account: StorageAccount, names: dict[str, str]
    ) -> None:
        """The round trips of an intake (the queue send is the dispatcher's): the event with its
        claim, delivery, actions, their claims and audit lines in one batch; a duplicate reads the
        event with its actions in one query and counts itself in one batch. A process that did not
        record the event is refused by the claim first and reads it (which names the event)."""
        hook = CountingRequests()
        client = TableClient.from_connection_string(
            str(account.connection_string), table_name=names["table"], raw_request_hook=hook
        )
        ledger = TableLedger(client)
        table = "GET " + names["table"]
        opened = hook.during(lambda: ledger.record_event(event("9"), plan("9"), reason=None, max_attempts=3))
        assert opened == [table, table, "POST " + names["table"], "POST $batch"]  # the layout, once per process
        first = hook.during(lambda: ledger.record_event(event("4"), plan("4", steps=2), reason=None, max_attempts=3))
        assert first == ["POST $batch"]
        again = hook.during(lambda: ledger.record_event(event("4"), plan("4", steps=2), reason=None, max_attempts=3))
        assert again == [table, "POST $batch"]
        elsewhere = TableLedger(client)
        hook.during(lambda: elsewhere.record_event(event("10"), plan("10"), reason=None, max_attempts=3))
        third = hook.during(lambda: elsewhere.record_event(event("4"), plan("4", steps=2), reason=None, max_attempts=3))
        assert third == ["POST $batch", table, table, "POST $batch"]
        stored = ledger.get_event(ledger.list_events(source="mlflow")[1]["id"])
        assert stored is not None and stored["model_version"] == "4"
        assert stored["deliveries"] == 3 and len(stored["actions"]) == 2 and len(stored["delivery_log"]) == 3

    def test_audit_lines_kept_where_tables_written_before_kept_them_are_read_with_the_new_ones(
        self, account: StorageAccount, names: dict[str, str], ledger: TableLedger
    ) -> None:
        [action_id] = ledger.record_event(event("5"), plan("5"), reason=None, max_attempts=3).action_ids
        old_line = {"at": "2026-01-01T00:00:00.000000+00:00", "worker": "w0", "message": "claimed by w0"}
        client = account.table_client(names["table"])  # the layout before: a partition per action
        client.create_entity(
            {"PartitionKey": f"log_{action_id}", "RowKey": "20260101T000000000000-000000001-abcdef", **old_line}
        )
        ledger.note(action_id, "w1", "a note")
        lines = ledger.action_log(action_id)
        assert [line["message"] for line in lines] == ["claimed by w0", lines[1]["message"], "a note"]
        assert lines[1]["message"].startswith("planned by")

    def test_large_values_are_split_and_oversized_ones_truncated_with_a_note(self, ledger: TableLedger) -> None:
        big_event = ModelEvent(
            source="mlflow",
            kind="model_version.created",
            source_type="x",
            model_name="m",
            model_version="8",
            raw={"blob": "x" * 300_000},
        )
        result = ledger.record_event(big_event, plan("8"), reason=None, max_attempts=3)
        payload = ledger.event_payload(result.event_id)
        assert payload is not None and "_truncated" in payload["raw"]  # the event itself is kept
        [action_id] = result.action_ids
        ledger.claim("w", 60, action_id=action_id)
        big = RegisterOutputs(model_uri="models:/" + "é" * 40_000)  # > 64 KiB in UTF-16: split over properties
        ledger.complete(action_id, "w", big)
        assert must(ledger.get_action(action_id)).outputs == big
        report_id = ledger.record_report("cleanup", {"groups": ["g" * 100] * 2000})
        assert ledger.list_reports("cleanup")[0]["id"] == report_id
        assert len(ledger.list_reports("cleanup")[0]["groups"]) == 2000


def must_id(ledger: TableLedger) -> str:
    [found] = ledger.list_events()
    return str(found["id"])
