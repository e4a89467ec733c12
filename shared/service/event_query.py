"""Finding events: the filters the audit page and `modelops events` share, and an event's outcome.

The ledger port indexes source, status and delivery id; the other filters (kind, model, version,
an outcome drawn from the actions, hiding ignored events) are answered by scanning the newest
events, at most SCAN of them, so a search stays bounded on a ledger of any size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from shared.domain.actions import FAILED, QUEUED, RUNNING, SUCCEEDED, WAITING
from shared.domain.events import KINDS
from shared.errors import BadRequest
from shared.ledger.base import ACCEPTED, IGNORED, Ledger

PAGE = 50
SCAN = 2000  # events read (newest first) to answer a filter the port does not index
SCAN_BATCH = 200
IN_PROGRESS = "in progress"
EVENT_STATUSES = (ACCEPTED, IGNORED)
OUTCOMES = (SUCCEEDED, FAILED, IN_PROGRESS)
STATUS_CHOICES = (*EVENT_STATUSES, *OUTCOMES)


@dataclass(frozen=True)
class EventFilters:
    """What to list: a bad value is a 400 (or exit 2) naming it, never a silent match-all."""

    source: str | None = None
    kind: str | None = None
    status: str | None = None  # accepted | ignored (the event) or succeeded | failed | in progress (its actions)
    model: str | None = None
    version: str | None = None
    delivery: str | None = None  # a sender's own delivery id (Event Grid event id, X-MLflow-Delivery-Id...)
    hide_ignored: bool = False  # the audit page's default: acknowledged noise out of the way
    offset: int = 0

    NAMES = ("source", "kind", "status", "model", "version", "delivery")

    @classmethod
    def parse(cls, params: dict[str, str], *, hide_ignored: bool = False) -> EventFilters:
        values = {k: v.strip() for k, v in params.items() if k in cls.NAMES and v.strip()}
        if values.get("status") == "in-progress":  # the spelling a shell wants
            values["status"] = IN_PROGRESS
        if values.get("kind") not in (None, *KINDS):
            raise BadRequest(
                f"kind {values['kind']!r} is not an event kind; one of {', '.join(sorted(KINDS))}", field="kind"
            )
        if values.get("status") not in (None, *STATUS_CHOICES):
            raise BadRequest(f"status {values['status']!r} is not one of {', '.join(STATUS_CHOICES)}", field="status")
        offset = params.get("offset", "0").strip() or "0"
        if not offset.isdigit() or int(offset) > 10**9:
            raise BadRequest(f"offset {offset!r} is not a whole number of events to skip", field="offset")
        return cls(**values, hide_ignored=hide_ignored and not values.get("status"), offset=int(offset))

    @property
    def indexed(self) -> bool:
        """Only filters the ledger answers itself (then a listing can be paged and counted directly)."""
        return not (self.kind or self.model or self.version or self.hide_ignored or self.status in OUTCOMES)

    def query(self, **changes: Any) -> dict[str, str]:
        """These filters as GET parameters (for links), with ``changes`` applied."""
        now: dict[str, Any] = {name: getattr(self, name) for name in self.NAMES}
        now["ignored"] = "" if self.hide_ignored or self.status else "show"
        now.update(changes)
        return {k: str(v) for k, v in now.items() if v not in (None, "", 0)}


@dataclass(frozen=True)
class EventRow:
    record: dict[str, Any]
    outcome: str
    actions: int


@dataclass(frozen=True)
class EventList:
    rows: list[EventRow]
    filters: EventFilters
    more: bool
    scanned_all: bool  # False: a filter the ledger cannot index looked only at the newest SCAN events
    more_count: int | None = None  # with count_more: how many more match (of the events scanned)


def outcome(event: dict[str, Any]) -> str:
    """An event's outcome from its actions' statuses."""
    if event.get("status") == IGNORED:
        return IGNORED
    statuses = {a["status"] for a in event.get("actions", [])}
    if FAILED in statuses:
        return FAILED
    if statuses & {QUEUED, RUNNING, WAITING} or not statuses:
        return IN_PROGRESS
    return SUCCEEDED


def _scan(ledger: Ledger, *, source: str | None, status: str | None, delivery: str | None) -> Iterator[dict[str, Any]]:
    for offset in range(0, SCAN, SCAN_BATCH):
        batch = ledger.list_events(source=source, status=status, delivery_id=delivery, limit=SCAN_BATCH, offset=offset)
        yield from batch
        if len(batch) < SCAN_BATCH:
            return


def _matches(filters: EventFilters, record: dict[str, Any]) -> bool:
    return not (
        (filters.kind and record.get("kind") != filters.kind)
        or (filters.model and record.get("model_name") != filters.model)
        or (filters.version and str(record.get("model_version") or "") != filters.version)
        or (filters.hide_ignored and record.get("status") == IGNORED)
    )


def list_events(ledger: Ledger, filters: EventFilters, *, page: int = PAGE, count_more: bool = False) -> EventList:
    """One page of the events that match, newest first; ``count_more`` also counts the rest (scanned)."""
    status = filters.status if filters.status in EVENT_STATUSES else None
    wanted_outcome = filters.status if filters.status in OUTCOMES else None
    rows: list[EventRow] = []
    skipped = scanned = more = 0
    scan = _scan(
        ledger, source=filters.source, status=ACCEPTED if wanted_outcome else status, delivery=filters.delivery
    )
    for record in scan:
        scanned += 1
        if not _matches(filters, record):
            continue
        full = ledger.get_event(record["id"]) or {**record, "actions": []}
        row = EventRow(record, outcome(full), len(full["actions"]))
        if wanted_outcome and row.outcome != wanted_outcome:
            continue
        if skipped < filters.offset:
            skipped += 1
            continue
        if len(rows) == page:
            if not count_more:
                return EventList(rows, filters, more=True, scanned_all=True)
            more += 1
            continue
        rows.append(row)
    return EventList(rows, filters, more=more > 0, scanned_all=scanned < SCAN, more_count=more if count_more else None)
