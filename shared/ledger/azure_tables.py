"""The ledger on Azure Table Storage: the storage port on one table, under the shared core.

Layout (PartitionKey / RowKey):
- ``event`` / ``evt_<newest-first id>``: the event, its action ids and delivery count;
  ``event`` / ``dedupe_<sha256(dedupe key)>``: the dedupe claim, created with the event (and its
  first delivery, ``dlv_``/``did_`` rows) in one entity-group transaction, so a redelivery is
  refused by the claim (409) and finds the first recording by a point read.
- ``action`` / ``act_<newest-first id>``: the action; ``action`` / ``key_<sha256(action key)>``:
  its key claim, again created together (one action per key, ever);
  ``action`` / ``log_<action id>_<time>-<seq>``: its audit log, read in RowKey order. (Tables
  written before kept the log in a partition ``log_<action id>`` of its own; it is still read.)
- ``watermark`` / ``<sha256(name)>`` (shared/ledger/table_registers.py);
  ``report_<sha256(kind)>`` / ``<newest-first id>``.

Ids sort newest first, so listing is a scan of one partition in RowKey order, the same order the
SQLite ledger gives. The compare-and-set is a replace conditioned on the entity's ETag (If-Match).
There is no cross-partition transaction, so ``unit_of_work`` groups nothing. A new event is two
batches: the event, naming its actions as ``planned``, then the actions with their key claims and
audit lines; the planned actions count as linked once they exist. When one of their keys is taken
(an action another event planned) or the second batch never ran (a crash), the actions are added
one by one and linked (the event says ``complete`` then); any redelivery finishes that, so a crash
between steps loses nothing.

Round trips (Azurite, counted by ``benchmarks/ingest_azure.py``): a new event two batches; a
duplicate one refused batch, the claim, the event and its first action read once each (reads are
kept for the length of one intake, ``TableAccess.in_unit``), one batch counting the delivery, plus
a read for each further action.

Cost: point reads for ids and keys; ``claim()`` without an id (one query per claim),
``next_due()`` and listing scan the ``action`` partition server-side with an OData filter on
``status`` (O(actions ever recorded) read by the service, only the non-terminal ones returned);
``stats()`` reads every status. In Azure the queue trigger always claims by id, so only local
loops and the ops API pay the scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar

from shared.domain.actions import QUEUED, Action
from shared.domain.clock import Clock, now_utc, parse_dt
from shared.ledger import table_access as q
from shared.ledger import table_codec as codec
from shared.ledger import transitions
from shared.ledger.base import ACCEPTED
from shared.ledger.core import LedgerCore
from shared.ledger.records import ActionQuery, DeliveryRecord, EventRecord
from shared.ledger.store import RACE_RETRIES, LedgerContention, NewEvent, Stored
from shared.ledger.table_bookkeeping import TableBookkeeping
from shared.ledger.table_codec import PK_ACTION, PK_EVENT
from shared.ledger.table_prune import TablePruning
from shared.ledger.table_registers import TableRegisters
from shared.ledger.transitions import Transition

T = TypeVar("T")

__all__ = ["LedgerContention", "TableLedger", "TableStore"]


class TableStore(TableRegisters, TablePruning, TableBookkeeping):
    """The ``LedgerStore`` of one Azure Table (or Azurite). Safe across threads and processes."""

    # -- plumbing -------------------------------------------------------------------------
    def _mutate_event(self, event_id: str, change: Callable[[Any], dict[str, Any]]) -> dict[str, Any] | None:
        """Read-modify-write of an event entity; a lost race (412) re-reads and changes again."""
        for _ in range(RACE_RETRIES):
            entity = self._get(PK_EVENT, event_id) if event_id.startswith("evt_") else None
            if entity is None:
                return None
            new = change(entity)
            if self._replace(new, entity.metadata["etag"]):
                return new
        raise LedgerContention(f"event {event_id} changed {RACE_RETRIES} times while being updated; try again")

    def _holder(
        self, claim_rk: str, field: str, entity: dict[str, Any], extra: list[dict[str, Any]] | None = None
    ) -> str:
        """Create ``entity`` with its key claim (and ``extra`` entities of its partition); the id of
        whichever entity holds the claim."""
        own_id = str(entity["RowKey"])
        claim = {"PartitionKey": entity["PartitionKey"], "RowKey": claim_rk, field: own_id}
        if self._create_together([claim, entity, *(extra or [])]):
            return own_id
        found = self._get(entity["PartitionKey"], claim_rk)
        if found is None:  # cannot happen: claims are never deleted
            raise LedgerContention(f"key claim {claim_rk} vanished")
        return str(found[field])

    def unit_of_work(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()

    def submit(self, unit: Callable[[], T]) -> Future[T]:
        future: Future[T] = Future()  # no writer thread: the unit runs here, now
        try:
            future.set_result(self.in_unit(unit))
        except Exception as exc:
            future.set_exception(exc)
        return future

    async def submit_async(self, unit: Callable[[], T]) -> T:
        # Table Storage blocks on HTTP: not on the event loop
        return await asyncio.to_thread(self.in_unit, unit)

    group_commit = False

    def new_id(self, prefix: str, now: datetime) -> str:
        return codec.newest_first_id(prefix, now)

    # -- events ---------------------------------------------------------------------------
    def add_event(self, new: NewEvent) -> tuple[str, bool]:
        """Two batches for a new event: the event with its key claim and first delivery (an
        insert-or-fail: a 409 is a duplicate, answered from the claim), then its actions with their
        key claims and audit lines. The event names those actions as ``planned``; they count as
        linked once they exist, and a batch is all or nothing, so a crash between the two leaves an
        event whose first planned action is missing: the redelivery adds them one by one."""
        record, delivery = new.record, new.delivery
        claim_rk = "dedupe_" + codec.key_hash(record.dedupe_key)
        first = codec.delivery_entities(delivery, parse_dt(delivery.received_at) or now_utc())
        steps = new.plan()
        actions = [e for step in steps for e in self._action_entities(step)]
        together = q.fits_one_batch(actions)
        planned = [step.action.id for step in steps] if together else None
        held = self._holder(claim_rk, "event_id", codec.event_entity(record, new.payload(), planned), first)
        if held != record.id or planned is None:
            return held, False
        return held, not actions or self._create_together(actions)

    def _action_entities(self, step: Transition) -> list[dict[str, Any]]:
        action = step.action
        claim = {"PartitionKey": PK_ACTION, "RowKey": "key_" + codec.key_hash(action.key), "action_id": action.id}
        at = action.created_at or now_utc()
        lines = [codec.log_entity(action.id, at, step.worker, line) for line in step.lines]
        return [claim, codec.action_entity(action), *lines]

    def _linked(self, entity: Any) -> list[str] | None:
        """An event's linked actions: complete, or planned and created (its first planned action exists)."""
        ids = [str(i) for i in json.loads(entity.get("action_ids") or "[]")]
        if entity.get("complete"):
            return ids
        if entity.get("planned") and ids and self.load(ids[0]) is not None:
            return ids
        return None

    def linked(self, event_id: str) -> list[str] | None:
        entity = self._get(PK_EVENT, event_id) if event_id.startswith("evt_") else None
        return self._linked(entity) if entity else None

    def link(self, event_id: str, action_ids: list[str], *, accept: bool) -> None:
        def change(entity: Any) -> dict[str, Any]:
            linked = self._linked(entity) or []  # planned ones that were never created are dropped
            new = {**entity, "action_ids": json.dumps(linked + [i for i in action_ids if i not in linked])}
            new.pop("planned", None)
            if accept:
                new["status"] = ACCEPTED
                new.pop("reason", None)
            return {**new, "complete": True}

        self._mutate_event(event_id, change)

    def count_delivery(self, event_id: str, delivery: DeliveryRecord) -> EventRecord | None:
        """The count and the delivery's entities in one batch: a lost race (412) re-reads and tries again."""
        at = parse_dt(delivery.received_at) or now_utc()
        for _ in range(RACE_RETRIES):
            entity = self._get(PK_EVENT, event_id) if event_id.startswith("evt_") else None
            if entity is None:
                return None
            bumped = {**entity, "deliveries": int(entity.get("deliveries", 1)) + 1}
            if self._create_together(codec.delivery_entities(delivery, at), (bumped, entity.metadata["etag"])):
                return codec.event_from_entity(bumped)
        raise LedgerContention(f"event {event_id} changed {RACE_RETRIES} times while counting a delivery; try again")

    def add_delivery(self, delivery: DeliveryRecord) -> None:
        entities = codec.delivery_entities(delivery, parse_dt(delivery.received_at) or now_utc())
        if entities:
            self._create_together(entities)

    def deliveries(self, *, delivery_id: str | None = None, event_id: str | None = None) -> list[DeliveryRecord]:
        if delivery_id is not None:
            prefix = codec.delivery_prefix(delivery_id)
            found = [codec.delivery_from_entity(e) for e in self._query(PK_EVENT, q.prefix_rows(prefix))]
            return [d for d in found if event_id is None or d.event_id == event_id]
        if event_id is None:
            return []
        return [codec.delivery_from_entity(e) for e in self._query(PK_EVENT, q.prefix_rows(f"dlv_{event_id}_"))]

    def set_event_status(self, event_id: str, status: str, reason: str | None) -> None:
        self._mutate_event(
            event_id, lambda e: codec.drop_none({**e, "status": status, "reason": codec.truncate(reason)})
        )

    def event(self, event_id: str) -> EventRecord | None:
        entity = self._get(PK_EVENT, event_id) if event_id.startswith("evt_") else None
        return codec.event_from_entity(entity) if entity else None

    def events(self, *, source: str | None, status: str | None, limit: int, offset: int) -> list[EventRecord]:
        where, params = q.filters({"source": source, "status": status})
        return [
            codec.event_from_entity(e)
            for e in q.page(self._query(PK_EVENT, q.EVENT_ROWS + where, params), limit, offset)
        ]

    def event_payload(self, event_id: str) -> dict[str, Any] | None:
        entity = self._get(PK_EVENT, event_id) if event_id.startswith("evt_") else None
        return codec.unpack_json(entity, "payload") if entity else None

    # -- actions --------------------------------------------------------------------------
    def add_action(self, action: Action) -> str:
        return self._holder("key_" + codec.key_hash(action.key), "action_id", codec.action_entity(action))

    def load(self, action_id: str) -> Stored | None:
        entity = self._get(PK_ACTION, action_id) if action_id.startswith("act_") else None
        return q.stored(entity) if entity else None

    def swap(self, before: Stored, after: Action) -> bool:
        return self._replace(codec.action_entity(after), before.version)

    def find(self, key: str) -> Action | None:
        claim = self._get(PK_ACTION, "key_" + codec.key_hash(key))
        stored = self.load(str(claim["action_id"])) if claim else None
        return stored.action if stored else None

    def actions(self, query: ActionQuery) -> list[Action]:
        if query.event_id:
            entity = self._get(PK_EVENT, query.event_id) if query.event_id.startswith("evt_") else None
            linked = json.loads(entity.get("action_ids") or "[]") if entity else []
            found = [s.action for s in (self.load(i) for i in linked) if s is not None]
            found = sorted((a for a in found if query.matches(a)), key=lambda a: a.id)  # newest-first ids
            return found[query.offset : query.offset + query.limit]
        where, params = q.filters(query.equal())
        rows = self._query(PK_ACTION, q.ACTION_ROWS + where, params)
        return [codec.action_from_entity(e) for e in q.page(rows, query.limit, query.offset)]

    def active(self) -> list[Stored]:
        return [q.stored(e) for e in self._query(PK_ACTION, q.ACTIVE)]

    def due(self, now: datetime) -> list[Stored]:
        return [s for s in self.active() if transitions.is_due(s.action, now)]

    def dependents(self, action_id: str) -> list[Stored]:
        where = f"{q.ACTION_ROWS} and after eq @after and status eq @queued"
        return [q.stored(e) for e in self._query(PK_ACTION, where, {"after": action_id, "queued": QUEUED})]

    def append_log(self, action_id: str, at: datetime, worker: str | None, message: str) -> None:
        self._table.create_entity(codec.log_entity(action_id, at, worker, message))

    def read_log(self, action_id: str) -> list[dict[str, Any]]:
        lines = [
            *self._query(PK_ACTION, q.prefix_rows(codec.log_prefix(action_id))),
            *self._query(codec.log_partition(action_id)),  # written before the lines moved to the action partition
        ]
        lines.sort(key=codec.log_order)
        return [{"at": e["at"], "worker": e.get("worker"), "message": e["message"]} for e in lines]

    def close(self) -> None:
        self._table.close()


class TableLedger(LedgerCore):
    """The ledger over one Azure Table (or Azurite). Safe across threads and processes."""

    def __init__(self, table_client: Any, *, clock: Clock = now_utc) -> None:
        super().__init__(TableStore(table_client), clock=clock)
