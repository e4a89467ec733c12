"""The storage port under the ledger: what a backend stores and finds, and nothing it decides.

The state machine (shared/ledger/transitions.py) and the procedures around it
(shared/ledger/core.py) are written once over this port; a backend (SQLite, Azure Table Storage)
offers records, create-unique by key, compare-and-set, log append and the queries the core asks.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from shared.domain.actions import Action
from shared.ledger.records import ActionQuery, DeliveryRecord, EventRecord
from shared.ledger.transitions import Transition

T = TypeVar("T")


RACE_RETRIES = 20  # compare-and-set attempts before a write gives up with LedgerContention


class LedgerContention(RuntimeError):
    """A record kept changing under us; the caller (a queue delivery) will be retried."""


@dataclass(frozen=True)
class Stored:
    """An action as read, with what the store needs to compare-and-set it (a Table ETag)."""

    action: Action
    version: object = None


@dataclass(frozen=True)
class NewEvent:
    """What an intake hands the store: the event record with its first delivery, and (called only when
    the store needs them: a duplicate may not) its replayable payload and its plan as new actions."""

    record: EventRecord
    payload: Callable[[], dict[str, Any]]
    delivery: DeliveryRecord
    plan: Callable[[], list[Transition]]


class LedgerStore(Protocol):
    def unit_of_work(self) -> AbstractContextManager[None]:
        """Group the steps of one ledger operation: one transaction where the store has them; where
        it has not, each step is idempotent and a redelivery finishes what a crash interrupted."""
        ...

    def submit(self, unit: Callable[[], T]) -> Future[T]:
        """Run ``unit`` as one unit of work; the future holds its result. SQLite queues it for the
        file's writer thread, which commits the units waiting together (group commit); a store
        without one runs it at once on the caller's thread (``group_commit`` False)."""
        ...

    async def submit_async(self, unit: Callable[[], T]) -> T:
        """``submit`` awaited on an event loop (without a writer thread: in a worker thread)."""
        ...

    @property
    def group_commit(self) -> bool:
        """True when ``submit`` returns at once and the work runs on a writer thread of the store."""
        ...

    def new_id(self, prefix: str, now: datetime) -> str: ...

    # -- events ----------------------------------------------------------------------------
    def add_event(self, new: NewEvent) -> tuple[str, bool]:
        """Create the event, with its first delivery, unless its dedupe key is taken (then write
        neither); returns the id that holds the key, and whether the store also created the plan
        (the event's actions as new ones, with their audit lines). A store may create them only
        when the event is new and every action key is free, or never: then the core adds the
        actions one by one (``add_action``) and links them."""
        ...

    def linked(self, event_id: str) -> list[str] | None:
        """The ids of the event's actions; None while they were never linked (a crashed intake)."""
        ...

    def link(self, event_id: str, action_ids: list[str], *, accept: bool) -> None:
        """Link actions to the event (after those linked before); ``accept`` marks it accepted."""
        ...

    def count_delivery(self, event_id: str, delivery: DeliveryRecord) -> EventRecord | None:
        """Count one more delivery of the event and record it, together (one transaction or batch)."""
        ...

    def add_delivery(self, delivery: DeliveryRecord) -> None:
        """Record a delivery that made no event (refused after its sender was verified)."""
        ...

    def deliveries(self, *, delivery_id: str | None = None, event_id: str | None = None) -> list[DeliveryRecord]:
        """The deliveries with this sender id, or of this event; oldest first."""
        ...

    def set_event_status(self, event_id: str, status: str, reason: str | None) -> None: ...

    def event(self, event_id: str) -> EventRecord | None: ...

    def events(self, *, source: str | None, status: str | None, limit: int, offset: int) -> list[EventRecord]:
        """Newest first."""
        ...

    def event_payload(self, event_id: str) -> dict[str, Any] | None: ...

    # -- actions ---------------------------------------------------------------------------
    def add_action(self, action: Action) -> str:
        """Create the action unless its key is taken; returns the id that holds the key."""
        ...

    def load(self, action_id: str) -> Stored | None: ...

    def swap(self, before: Stored, after: Action) -> bool:
        """Write ``after`` if the action is still as ``before`` was read; False if it changed."""
        ...

    def find(self, key: str) -> Action | None: ...

    def actions(self, query: ActionQuery) -> list[Action]:
        """Newest first."""
        ...

    def active(self) -> list[Stored]:
        """The queued, waiting and running actions."""
        ...

    def due(self, now: datetime) -> list[Stored]:
        """Claim candidates: every running action whose lease expired by ``now``, and the queued
        or waiting ones due by then. A store may return only the first of the latter in claim
        order among those whose predecessor succeeded; the core decides on each."""
        ...

    def dependents(self, action_id: str) -> list[Stored]:
        """The queued actions that run after ``action_id``."""
        ...

    def append_log(self, action_id: str, at: datetime, worker: str | None, message: str) -> None: ...

    def read_log(self, action_id: str) -> list[dict[str, Any]]: ...

    # -- retention -------------------------------------------------------------------------
    def old_events(self, cutoff: datetime) -> list[tuple[EventRecord, list[str]]]:
        """The events received before ``cutoff``, oldest first, with their linked action ids."""
        ...

    def dependents_by_upstream(self) -> dict[str, tuple[str, ...]]:
        """Every action some other runs after (``after``), with the ids of those."""
        ...

    def old_refusals(self, cutoff: datetime) -> int:
        """How many deliveries that made no event (refused) were received before ``cutoff``."""
        ...

    def prune(self, event_ids: list[str], action_ids: list[str], refused_before: datetime) -> None:
        """Delete the events (payloads, deliveries, links, dedupe claims), the actions (audit logs,
        key claims, links to them) and the refused deliveries received before ``refused_before``."""
        ...

    def compact(self) -> None:
        """Give freed space back (SQLite: truncate the WAL); nothing where the service does it."""
        ...

    # -- the rest --------------------------------------------------------------------------
    def get_watermark(self, name: str) -> str | None: ...

    def set_watermark(self, name: str, value: str, now: datetime) -> None: ...

    def swap_watermark(self, name: str, expected: str | None, value: str, now: datetime) -> bool:
        """Compare-and-set: write ``value`` if the watermark still holds ``expected`` (None: absent)."""
        ...

    def record_report(self, kind: str, report: dict[str, Any], now: datetime) -> str: ...

    def list_reports(self, kind: str, limit: int) -> list[dict[str, Any]]: ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...
