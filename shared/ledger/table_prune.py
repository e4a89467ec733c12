"""Retention on the Table ledger: the old events and refusals found by scans, and removed with
every row that belongs to them (dedupe and key claims, deliveries, audit lines), in batches of
one partition."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from shared.domain.clock import iso
from shared.ledger import table_access as q
from shared.ledger import table_codec as codec
from shared.ledger.records import EventRecord
from shared.ledger.table_access import TableAccess
from shared.ledger.table_codec import PK_ACTION, PK_EVENT

KEYS = ["PartitionKey", "RowKey"]


class TablePruning(TableAccess):
    """The retention part of the Table ``LedgerStore``."""

    def old_events(self, cutoff: datetime) -> list[tuple[EventRecord, list[str]]]:
        rows = self._query(PK_EVENT, f"{q.EVENT_ROWS} and received_at lt @cutoff", {"cutoff": iso(cutoff)})
        found = [(codec.event_from_entity(e), [str(i) for i in json.loads(e.get("action_ids") or "[]")]) for e in rows]
        return sorted(found, key=lambda pair: pair[0].received_at)

    def dependents_by_upstream(self) -> dict[str, tuple[str, ...]]:
        out: dict[str, list[str]] = defaultdict(list)
        for entity in self._action_rows(q.ACTION_ROWS, select=["RowKey", "after"]):
            if entity.get("after"):
                out[str(entity["after"])].append(str(entity["RowKey"]))
        return {upstream: tuple(ids) for upstream, ids in out.items()}

    def _refusals(self, cutoff: datetime) -> list[Any]:
        rows = self._query(PK_EVENT, f"{q.prefix_rows('did_')} and received_at lt @cutoff", {"cutoff": iso(cutoff)})
        return [e for e in rows if not e.get("event_id")]

    def old_refusals(self, cutoff: datetime) -> int:
        return len(self._refusals(cutoff))

    def prune(self, event_ids: list[str], action_ids: list[str], refused_before: datetime) -> None:
        """No transaction spans partitions: the actions go first, so a crash midway leaves old events
        whose actions are gone, which the next prune takes (never actions no event lists)."""
        action_rows: list[Any] = []
        for action_id in action_ids:
            action = self._action_entity(action_id)
            if action is None:
                continue
            claim_rk = "key_" + codec.key_hash(str(action["key"]))
            action_rows += self._action_rows(q.prefix_rows(codec.log_prefix(action_id)), select=KEYS)
            action_rows += self._query(codec.log_partition(action_id), select=KEYS)
            action_rows.append({"PartitionKey": PK_EVENT, "RowKey": claim_rk})
            if action["PartitionKey"] == PK_ACTION:  # the layout before: its claim there too (and the copy)
                action_rows.append({"PartitionKey": PK_ACTION, "RowKey": claim_rk})
            action_rows.append({"PartitionKey": action["PartitionKey"], "RowKey": action_id})
        self._delete([{"PartitionKey": r["PartitionKey"], "RowKey": r["RowKey"]} for r in action_rows])
        event_rows: list[Any] = []
        for event_id in event_ids:
            event = self._get(PK_EVENT, event_id)
            if event is None:
                continue
            deliveries = list(self._query(PK_EVENT, q.prefix_rows(f"dlv_{event_id}_")))
            for delivery in deliveries:
                if delivery.get("delivery_id"):
                    same_id = self._query(PK_EVENT, q.prefix_rows(codec.delivery_prefix(str(delivery["delivery_id"]))))
                    event_rows += [r for r in same_id if r.get("event_id") == event_id]
            claim = {"PartitionKey": PK_EVENT, "RowKey": "dedupe_" + codec.key_hash(str(event["dedupe_key"]))}
            event_rows += [*deliveries, claim, event]
        self._delete(event_rows + self._refusals(refused_before))

    def compact(self) -> None:
        """The service reclaims the space of deleted entities itself."""

    def _delete(self, entities: list[Any]) -> None:
        """In batches of one partition (100 at most); a batch refused (a row another prune took)
        is done one by one, where a missing row is no error."""
        from azure.data.tables import TableTransactionError

        by_partition: dict[str, dict[str, Any]] = defaultdict(dict)
        for entity in entities:
            by_partition[str(entity["PartitionKey"])][str(entity["RowKey"])] = entity
        self._forget(entities)
        for partition, rows in by_partition.items():
            keys = list(rows)
            for start in range(0, len(keys), q.BATCH_OPERATIONS):
                chunk = keys[start : start + q.BATCH_OPERATIONS]
                try:
                    self._table.submit_transaction(
                        [("delete", {"PartitionKey": partition, "RowKey": key}) for key in chunk]
                    )
                except TableTransactionError:
                    for key in chunk:
                        self._table.delete_entity(partition, key)
