"""A table written by the layout before (actions, key claims and audit lines in an ``action``
partition, an event's actions created by a second batch) read and written after the upgrade:
redeliveries stay duplicates, old key claims still block a second action for their key, and the
old actions are claimed, listed, logged and pruned (shared/ledger/table_layout.py)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from azure.data.tables import TableClient

from shared.adapters.azure_storage import StorageAccount
from shared.domain.actions import QUEUED, SUCCEEDED
from shared.domain.clock import now_utc
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent, event_to_payload
from shared.domain.outputs import RegisterOutputs
from shared.ledger import table_codec as codec
from shared.ledger import transitions
from shared.ledger.azure_tables import TableLedger
from shared.ledger.base import ACCEPTED
from shared.ledger.records import DeliveryRecord, new_event
from tests.ledger.support import event, must, plan


def write_the_layout_before(client: TableClient, version: str) -> tuple[str, list[str]]:
    """An intake as the code before this layout wrote it (main at 10da463, TableStore.add_event):
    one batch in ``event`` (dedupe claim, the event naming its actions as ``planned``, its first
    delivery), then one in ``action`` (each action with its key claim and audit line)."""
    now = now_utc() - timedelta(days=2)
    source = event(version)
    event_id, action_ids = codec.newest_first_id("evt", now), list[str]()
    record = new_event(source, event_id=event_id, status=ACCEPTED, reason=None, now=now)
    steps = []
    for index, step in enumerate(plan(version, steps=2)):
        after = action_ids[step.after_index] if step.after_index is not None else None
        action_ids.append(codec.newest_first_id("act", now + timedelta(microseconds=index + 1)))
        steps.append(
            transitions.plan(step, action_id=action_ids[-1], event_id=event_id, after=after, max_attempts=3, now=now)
        )
    delivery = DeliveryRecord(source.delivery_id, source.source, record.received_at, ACCEPTED, event_id=event_id)
    claim = {"PartitionKey": "event", "RowKey": "dedupe_" + codec.key_hash(record.dedupe_key), "event_id": event_id}
    entity = {**codec.event_entity(record, event_to_payload(source)), "complete": False, "planned": True}
    entity["action_ids"] = json.dumps(action_ids)
    client.submit_transaction([("create", e) for e in [claim, entity, *codec.delivery_entities(delivery, now)]])
    old: list[dict[str, Any]] = []
    for planned in steps:
        action = planned.action
        old.append({"PartitionKey": "action", "RowKey": "key_" + codec.key_hash(action.key), "action_id": action.id})
        old.append(codec.action_entity(action, "action"))
        line = codec.log_entity(action.id, now, None, planned.lines[0])
        old.append({**line, "PartitionKey": "action"})
    client.submit_transaction([("create", e) for e in old])
    return event_id, action_ids


class TestTheLayoutBefore:
    def test_old_key_claims_are_found_after_the_upgrade(self, account: StorageAccount, names: dict[str, str]) -> None:
        client = account.table_client(names["table"])
        client.create_table()
        event_id, old_ids = write_the_layout_before(client, "7")
        ledger = TableLedger(account.table_client(names["table"]))  # the upgraded code, a fresh process
        again = ledger.record_event(event("7"), plan("7", steps=2), reason=None, max_attempts=3)
        assert again.duplicate and again.event_id == event_id and again.action_ids == old_ids
        assert again.dispatch == old_ids[:1]  # never started; the second waits on the first
        # another event planning the same action: the old key claim holds it
        seen_elsewhere = ModelEvent(
            source="poller", kind=MODEL_VERSION_CREATED, source_type="x", model_name="m", model_version="7"
        )
        other = ledger.record_event(seen_elsewhere, plan("7"), reason=None, max_attempts=3)
        assert not other.duplicate and other.event_id != event_id and other.action_ids == old_ids[:1]
        assert other.dispatch == []
        assert len(ledger.list_actions(model="m", version="7")) == 2
        assert must(ledger.find_action(must(ledger.get_action(old_ids[0])).key)).id == old_ids[0]

    def test_old_actions_are_claimed_logged_listed_and_pruned(
        self, account: StorageAccount, names: dict[str, str]
    ) -> None:
        client = account.table_client(names["table"])
        client.create_table()
        event_id, old_ids = write_the_layout_before(client, "8")
        ledger = TableLedger(account.table_client(names["table"]))
        new = ledger.record_event(event("9"), plan("9"), reason=None, max_attempts=3)
        listed = [a.id for a in ledger.list_actions()]
        assert listed == sorted([*old_ids, *new.action_ids])  # one newest-first order over both layouts
        claimed = ledger.claim("w1", 60)  # the sweep finds the old one: created first
        assert claimed is not None and claimed.id == old_ids[0]
        assert ledger.complete(old_ids[0], "w1", RegisterOutputs(model_uri="models:/m/8")) == [old_ids[1]]
        assert must(ledger.get_action(old_ids[0])).status == SUCCEEDED
        assert must(ledger.get_action(old_ids[1])).status == QUEUED
        lines = [line["message"] for line in ledger.action_log(old_ids[0])]
        assert lines[0].startswith("planned by copy") and lines[-1] == "succeeded"
        stored = ledger.get_event(event_id)
        assert stored is not None and [a["id"] for a in stored["actions"]] == sorted(old_ids)
        assert ledger.stats()["actions"] == {SUCCEEDED: 1, QUEUED: 2}
        ledger.prune([event_id], old_ids, refused_before=now_utc() - timedelta(days=30))
        assert ledger.get_event(event_id) is None and ledger.get_action(old_ids[0]) is None
        left = {(e["PartitionKey"], e["RowKey"][:4]) for e in client.list_entities()}
        assert ("action", "key_") not in left and ("action", "act_") not in left and ("action", "log_") not in left
        redelivered = ledger.record_event(event("8"), plan("8"), reason=None, max_attempts=3)
        assert not redelivered.duplicate and redelivered.action_ids[0] not in old_ids  # its key went with it
