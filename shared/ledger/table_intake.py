"""The Table ledger's intake: a new event in one entity-group transaction, a duplicate from one read.

A new event is one batch in the ``event`` partition (shared/ledger/table_layout.py): its dedupe
claim first, the event naming its actions, its first delivery, and each action with its key claim
and audit line. All or nothing: a 409 on the dedupe claim is a duplicate; one on a key claim (an
action another event planned) or a plan too large for one batch records the event alone, with its
claim and delivery, and the core adds the actions one by one and links them (``complete`` then);
a redelivery finishes that, so a crash between steps loses nothing.

A duplicate is answered from one query that reads the event and its actions together (kept for
the length of the intake, ``TableAccess.in_unit``), then one batch counts the delivery. The ids
come from this process (it recorded the event, or found it before: ``KNOWN_EVENTS`` of them are
kept; a redelivery arriving while the batch is in flight waits for it); where they are not known
here, the refused batch and a read of the dedupe claim (which names them) come first.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from shared.domain.clock import now_utc, parse_dt
from shared.ledger import table_access as q
from shared.ledger import table_codec as codec
from shared.ledger.base import ACCEPTED
from shared.ledger.records import DeliveryRecord, EventRecord
from shared.ledger.store import RACE_RETRIES, LedgerContention, NewEvent
from shared.ledger.table_codec import PK_ACTION, PK_EVENT
from shared.ledger.table_layout import TableLayout
from shared.ledger.transitions import Transition

KNOWN_EVENTS = 4096  # dedupe claims remembered per process: a redelivery skips the refused batch
RECORDING_WAIT = 30.0  # seconds a redelivery waits for this process's batch of the same event


class TableIntake(TableLayout):
    """The event side of the Table ``LedgerStore``."""

    def __init__(self, table_client: Any) -> None:
        super().__init__(table_client)
        self._known: OrderedDict[str, tuple[str, ...]] = OrderedDict()
        self._known_lock = threading.Lock()
        self._recording: dict[str, threading.Event] = {}  # claims whose batch is in flight here

    def add_event(self, new: NewEvent) -> tuple[str, bool]:
        """A redelivery that arrives while this process records the event waits for that batch,
        then reads what it recorded: both answers name the same event, and it sends no refused batch."""
        claim_rk = "dedupe_" + codec.key_hash(new.record.dedupe_key)
        with self._known_lock:
            recording = self._recording.get(claim_rk)
            if recording is None:
                self._recording[claim_rk] = done = threading.Event()
        if recording is not None:
            recording.wait(timeout=RECORDING_WAIT)
            return self._record(new, claim_rk)
        try:
            return self._record(new, claim_rk)
        finally:
            with self._known_lock:
                self._recording.pop(claim_rk, None)
            done.set()

    def _record(self, new: NewEvent, claim_rk: str) -> tuple[str, bool]:
        record, delivery = new.record, new.delivery
        known = self._known_event(claim_rk)
        if known is not None:
            return known, False
        self._ensure_layout()
        first = codec.delivery_entities(delivery, parse_dt(delivery.received_at) or now_utc())
        steps, payload = new.plan(), new.payload()
        ids = [step.action.id for step in steps]
        claim = {"PartitionKey": PK_EVENT, "RowKey": claim_rk, "event_id": record.id, "action_ids": json.dumps(ids)}
        together = [claim, codec.event_entity(record, payload, ids), *first]
        together += [e for step in steps for e in self._action_entities(step)]
        if q.fits_one_batch(together):
            refused = self._transact(together)
            if refused is None:
                self._remember(claim_rk, record.id, ids)
                return record.id, True
            if refused == 0 and (held := self._claimed(claim_rk)) is not None:  # 0: the claim, or unsaid
                return held, False
        # a key taken by another event's action, or too large for one batch: the event alone first
        del claim["action_ids"]
        if self._create_together([claim, codec.event_entity(record, payload), *first]):
            return record.id, False
        held = self._claimed(claim_rk)
        if held is None:  # cannot happen: claims are deleted only with their event, by retention
            raise LedgerContention(f"dedupe claim {claim_rk} vanished")
        return held, False

    def _claimed(self, claim_rk: str) -> str | None:
        """The event holding the dedupe claim, read with its actions; None if there is no claim."""
        found = self._get(PK_EVENT, claim_rk)
        if found is None:
            return None
        event_id = str(found["event_id"])
        ids = [str(i) for i in json.loads(found.get("action_ids") or "[]")]
        self._get_many(PK_EVENT, [event_id, *ids])
        self._remember(claim_rk, event_id, ids)
        return event_id

    def _known_event(self, claim_rk: str) -> str | None:
        """The event this process recorded (or found) under the claim, read with its actions in one
        query; None when unknown here or gone (pruned by retention)."""
        with self._known_lock:
            known = self._known.get(claim_rk)
        if known is None:
            return None
        event_id, *ids = known
        self._get_many(PK_EVENT, [event_id, *ids])
        if self._get(PK_EVENT, event_id) is None:
            with self._known_lock:
                self._known.pop(claim_rk, None)
            return None
        return event_id

    def _remember(self, claim_rk: str, event_id: str, action_ids: list[str]) -> None:
        with self._known_lock:
            self._known[claim_rk] = (event_id, *action_ids)
            self._known.move_to_end(claim_rk)
            while len(self._known) > KNOWN_EVENTS:
                self._known.popitem(last=False)

    def _action_entities(self, step: Transition) -> list[dict[str, Any]]:
        action = step.action
        claim = {"PartitionKey": PK_EVENT, "RowKey": "key_" + codec.key_hash(action.key), "action_id": action.id}
        at = action.created_at or now_utc()
        lines = [codec.log_entity(action.id, at, step.worker, line) for line in step.lines]
        return [claim, codec.action_entity(action), *lines]

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

    def _linked(self, entity: Any) -> list[str] | None:
        """An event's linked actions: complete, or (a table written before) planned and created (its
        first planned action exists)."""
        ids = [str(i) for i in json.loads(entity.get("action_ids") or "[]")]
        if entity.get("complete"):
            return ids
        if entity.get("planned") and ids and self._get(PK_ACTION, ids[0]) is not None:  # that layout's partition
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
