"""The ledger's side of retention: what is old, and removing it (the choice is shared/service/retention.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.domain.actions import Action
from shared.ledger.records import EventRecord
from shared.ledger.store import LedgerStore


@dataclass(frozen=True)
class OldEvent:
    """An event received before the cutoff, with the actions linked to it (those still stored)."""

    record: EventRecord
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class OldRecords:
    """What retention chooses from: the old events, which actions run after which (an upstream's
    dependents must find it), and how many refused deliveries (no event) are older than the cutoff."""

    events: tuple[OldEvent, ...]
    dependents: dict[str, tuple[str, ...]]
    refused: int


class LedgerPruning:
    """The retention side of the ``Ledger`` port over a ``LedgerStore``."""

    _store: LedgerStore

    def old_records(self, cutoff: datetime) -> OldRecords:
        events = []
        for record, ids in self._store.old_events(cutoff):
            actions = tuple(s.action for s in (self._store.load(i) for i in ids) if s is not None)
            events.append(OldEvent(record, actions))
        return OldRecords(tuple(events), self._store.dependents_by_upstream(), self._store.old_refusals(cutoff))

    def prune(self, event_ids: list[str], action_ids: list[str], *, refused_before: datetime) -> None:
        """Remove these events (with their payloads, deliveries and links) and actions (with their
        audit logs and key claims), and the refused deliveries older than ``refused_before``; then
        give the space back where the store can (SQLite: the WAL truncated)."""
        with self._store.unit_of_work():
            self._store.prune(event_ids, action_ids, refused_before)
        self._store.compact()
