"""The ledger on Azure Table Storage: the storage port on one table, under the shared core.

Layout (PartitionKey / RowKey), all of an event's records in one partition so that a new event is
one entity-group transaction (shared/ledger/table_layout.py, shared/ledger/table_intake.py):
- ``event`` / ``evt_<newest-first id>``: the event, its action ids and delivery count;
  ``event`` / ``dedupe_<sha256(dedupe key)>``: its dedupe claim (naming the event and its actions);
  ``event`` / ``dlv_<event id>_<time>``, ``did_<sha256(delivery id)>_<time>``: its deliveries;
  ``event`` / ``act_<newest-first id>``: an action; ``event`` / ``key_<sha256(action key)>``: its
  key claim, created with it (one action per key, ever); ``event`` / ``log_<action id>_<time>-<seq>``:
  its audit log, read in RowKey order.
- Tables written before keep actions, key claims and audit lines in an ``action`` partition (and
  older audit lines in a partition ``log_<action id>``): read beside the new ones; the key claims
  are copied into ``event`` once (shared/ledger/table_layout.py).
- ``watermark`` / ``<sha256(name)>`` (shared/ledger/table_registers.py);
  ``report_<sha256(kind)>`` / ``<newest-first id>``; ``layout`` / ``key-claims-v2``.

Ids sort newest first, so listing is a scan of a partition in RowKey order (the two partitions of
actions merged), the same order the SQLite ledger gives. The compare-and-set is a replace
conditioned on the entity's ETag (If-Match). There is no cross-partition transaction, so
``unit_of_work`` groups nothing; an intake's records share one partition, so a new event is one
batch, all or nothing.

Round trips (Azurite, counted by ``benchmarks/ingest_azure.py``): a new event one batch; a
duplicate one query (the event with its actions) and one batch counting the delivery, when this
process knows the event; otherwise a refused batch and a read of the dedupe claim come first.

Cost: point reads for ids and keys (an action of the layout before: a miss in ``event`` first);
``claim()`` without an id (one query per claim), ``next_due()`` and listing scan the actions
server-side with an OData filter on ``status`` (O(actions ever recorded) read by the service, only
the non-terminal ones returned); ``stats()`` reads every status. In Azure the queue trigger always
claims by id, so only local loops and the ops API pay the scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Any, TypeVar, cast

from shared.domain.actions import QUEUED, Action
from shared.domain.clock import Clock, now_utc
from shared.ledger import table_access as q
from shared.ledger import table_codec as codec
from shared.ledger import transitions
from shared.ledger.core import LedgerCore
from shared.ledger.records import ActionQuery, DeliveryRecord, EventRecord
from shared.ledger.store import LedgerContention, Stored
from shared.ledger.table_bookkeeping import TableBookkeeping
from shared.ledger.table_codec import PK_EVENT
from shared.ledger.table_intake import TableIntake
from shared.ledger.table_prune import TablePruning
from shared.ledger.table_registers import TableRegisters

T = TypeVar("T")

__all__ = ["LedgerContention", "TableLedger", "TableStore"]


class TableStore(TableIntake, TableRegisters, TablePruning, TableBookkeeping):
    """The ``LedgerStore`` of one Azure Table (or Azurite). Safe across threads and processes."""

    def _holder(self, claim_rk: str, field: str, entity: dict[str, Any]) -> str:
        """Create ``entity`` with its key claim; the id of whichever entity holds the claim."""
        own_id = str(entity["RowKey"])
        claim = {"PartitionKey": entity["PartitionKey"], "RowKey": claim_rk, field: own_id}
        if self._create_together([claim, entity]):
            return own_id
        found = self._get(entity["PartitionKey"], claim_rk)
        if found is None:  # cannot happen: claims are deleted only with their action, by retention
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
        self._ensure_layout()
        return self._holder("key_" + codec.key_hash(action.key), "action_id", codec.action_entity(action))

    def load(self, action_id: str) -> Stored | None:
        entity = self._action_entity(action_id)
        return q.stored(entity) if entity else None

    def swap(self, before: Stored, after: Action) -> bool:
        partition, etag = cast(tuple[str, object], before.version)  # q.stored() made it
        return self._replace(codec.action_entity(after, partition), etag)

    def find(self, key: str) -> Action | None:
        claim_rk = "key_" + codec.key_hash(key)
        claim = self._get(PK_EVENT, claim_rk) or self._old_claim(claim_rk)
        stored = self.load(str(claim["action_id"])) if claim else None
        return stored.action if stored else None

    def actions(self, query: ActionQuery) -> list[Action]:
        if query.event_id:
            entity = self._get(PK_EVENT, query.event_id) if query.event_id.startswith("evt_") else None
            linked = json.loads(entity.get("action_ids") or "[]") if entity else []
            if linked:
                self._get_many(PK_EVENT, linked)
            found = [s.action for s in (self.load(i) for i in linked) if s is not None]
            found = sorted((a for a in found if query.matches(a)), key=lambda a: a.id)  # newest-first ids
            return found[query.offset : query.offset + query.limit]
        where, params = q.filters(query.equal())
        rows = self._action_rows(q.ACTION_ROWS + where, params)
        return [codec.action_from_entity(e) for e in q.page(rows, query.limit, query.offset)]

    def active(self) -> list[Stored]:
        return [q.stored(e) for e in self._action_rows(q.ACTIVE)]

    def due(self, now: datetime) -> list[Stored]:
        return [s for s in self.active() if transitions.is_due(s.action, now)]

    def dependents(self, action_id: str) -> list[Stored]:
        where = f"{q.ACTION_ROWS} and after eq @after and status eq @queued"
        return [q.stored(e) for e in self._action_rows(where, {"after": action_id, "queued": QUEUED})]

    def append_log(self, action_id: str, at: datetime, worker: str | None, message: str) -> None:
        self._table.create_entity(codec.log_entity(action_id, at, worker, message))

    def read_log(self, action_id: str) -> list[dict[str, Any]]:
        lines = [
            *self._action_rows(q.prefix_rows(codec.log_prefix(action_id))),
            *self._query(codec.log_partition(action_id)),  # the oldest layout: a partition per action
        ]
        lines.sort(key=codec.log_order)
        return [{"at": e["at"], "worker": e.get("worker"), "message": e["message"]} for e in lines]

    def close(self) -> None:
        self._table.close()


class TableLedger(LedgerCore):
    """The ledger over one Azure Table (or Azurite). Safe across threads and processes."""

    def __init__(self, table_client: Any, *, clock: Clock = now_utc) -> None:
        super().__init__(TableStore(table_client), clock=clock)
