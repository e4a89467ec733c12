"""View-models of the events list, one event and one model's history, read through the ledger port."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.api.ui.attempts import Attempt, attempts_from_log
from shared.api.ui.links import OutputLink, output_links
from shared.api.ui.timeline import Lane, timeline_svg
from shared.domain.actions import FAILED, QUEUED, RUNNING, SUCCEEDED, WAITING
from shared.domain.clock import parse_dt
from shared.domain.events import KINDS
from shared.errors import BadRequest
from shared.ledger.base import ACCEPTED, IGNORED, Ledger

PAGE = 50
SCAN = 2000  # events read (newest first) to answer a kind/model/outcome filter, which the port does not index
SCAN_BATCH = 200
IN_PROGRESS = "in progress"
EVENT_STATUSES = (ACCEPTED, IGNORED)
OUTCOMES = (SUCCEEDED, FAILED, IN_PROGRESS)


@dataclass(frozen=True)
class EventFilters:
    """The events list's GET parameters, checked: a bad one is a 400 naming it, never a silent match-all."""

    source: str | None = None
    kind: str | None = None
    status: str | None = None  # accepted | ignored (the event) or succeeded | failed | in progress (its actions)
    model: str | None = None
    delivery: str | None = None  # a sender's own delivery id (Event Grid event id, X-MLflow-Delivery-Id...)
    offset: int = 0

    @classmethod
    def parse(cls, params: dict[str, str]) -> EventFilters:
        names = ("source", "kind", "status", "model", "delivery")
        values = {k: v.strip() for k, v in params.items() if k in names and v.strip()}
        if values.get("kind") not in (None, *KINDS):
            raise BadRequest(
                f"kind {values['kind']!r} is not an event kind; one of {', '.join(sorted(KINDS))}", field="kind"
            )
        if values.get("status") not in (None, *EVENT_STATUSES, *OUTCOMES):
            known = ", ".join((*EVENT_STATUSES, *OUTCOMES))
            raise BadRequest(f"status {values['status']!r} is not one of {known}", field="status")
        offset = params.get("offset", "0").strip() or "0"
        if not offset.isdigit() or int(offset) > 10**9:
            raise BadRequest(f"offset {offset!r} is not a whole number of events to skip", field="offset")
        return cls(**values, offset=int(offset))

    def query(self, **changes: Any) -> dict[str, str]:
        """These filters as GET parameters (for links), with ``changes`` applied."""
        now = {
            "source": self.source,
            "kind": self.kind,
            "status": self.status,
            "model": self.model,
            "delivery": self.delivery,
            **changes,
        }
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


def _scan(ledger: Ledger, *, source: str | None, status: str | None, delivery: str | None) -> Any:
    for offset in range(0, SCAN, SCAN_BATCH):
        batch = ledger.list_events(source=source, status=status, delivery_id=delivery, limit=SCAN_BATCH, offset=offset)
        yield from batch
        if len(batch) < SCAN_BATCH:
            return


def list_events(ledger: Ledger, filters: EventFilters, *, page: int = PAGE) -> EventList:
    status = filters.status if filters.status in EVENT_STATUSES else None
    wanted_outcome = filters.status if filters.status in OUTCOMES else None
    rows: list[EventRow] = []
    skipped = scanned = 0
    scan = _scan(
        ledger, source=filters.source, status=ACCEPTED if wanted_outcome else status, delivery=filters.delivery
    )
    for record in scan:
        scanned += 1
        if filters.kind and record.get("kind") != filters.kind:
            continue
        if filters.model and record.get("model_name") != filters.model:
            continue
        full = ledger.get_event(record["id"]) or {**record, "actions": []}
        row = EventRow(record, outcome(full), len(full["actions"]))
        if wanted_outcome and row.outcome != wanted_outcome:
            continue
        if skipped < filters.offset:
            skipped += 1
            continue
        if len(rows) == page:
            return EventList(rows, filters, more=True, scanned_all=True)
        rows.append(row)
    return EventList(rows, filters, more=False, scanned_all=scanned < SCAN)


@dataclass(frozen=True)
class ActionView:
    action: dict[str, Any]
    attempts: list[Attempt]
    other_lines: list[str]
    links: list[OutputLink]
    log: list[dict[str, Any]]


def action_view(ledger: Ledger, action: dict[str, Any]) -> ActionView:
    log = ledger.action_log(action["id"])
    attempts, other = attempts_from_log(log)
    return ActionView(action, attempts, other, output_links(action["kind"], action.get("outputs") or {}), log)


@dataclass(frozen=True)
class EventPage:
    event: dict[str, Any]
    outcome: str
    actions: list[ActionView]
    timeline: str
    payload: dict[str, Any] = field(default_factory=dict)


def lane_of(view: ActionView) -> Lane:
    a = view.action
    return Lane(
        id=a["id"],
        label=f"{a['kind']} \u2192 {a['target']}",
        status=a["status"],
        planned_at=parse_dt(a.get("created_at")),
        finished_at=parse_dt(a.get("finished_at")),
        attempts=tuple(view.attempts),
        after=a.get("after"),
    )


def event_page(ledger: Ledger, event_id: str, now: datetime) -> EventPage | None:
    event = ledger.get_event(event_id)
    if event is None:
        return None
    views = [action_view(ledger, a) for a in event["actions"]]
    svg = timeline_svg(parse_dt(event.get("received_at")), [lane_of(v) for v in views], now)
    payload = {k: v for k, v in (ledger.event_payload(event_id) or {}).items() if k != "raw" and v not in (None, {})}
    return EventPage(event, outcome(event), views, svg, payload)


@dataclass(frozen=True)
class TargetState:
    target: str
    kind: str
    last: dict[str, Any]  # the newest action on this target
    live_version: str | None  # the newest version whose action succeeded


@dataclass(frozen=True)
class ModelHistory:
    name: str
    sources: list[str]
    events: list[EventRow]
    actions: list[dict[str, Any]]
    targets: list[TargetState]
    scanned_all: bool


def model_history(ledger: Ledger, name: str) -> ModelHistory:
    listed = list_events(ledger, EventFilters(model=name), page=SCAN)
    actions = [a.to_dict() for a in ledger.list_actions(model=name, limit=1000)]
    actions.sort(key=lambda a: a.get("created_at") or "", reverse=True)
    targets: dict[tuple[str, str], TargetState] = {}
    for a in reversed(actions):  # oldest first, so the newest lands last
        key = (a["target"], a["kind"])
        before = targets.get(key)
        live = a["model_version"] if a["status"] == SUCCEEDED else (before.live_version if before else None)
        targets[key] = TargetState(a["target"], a["kind"], a, live)
    sources = sorted({row.record["source"] for row in listed.rows} | {a["params"].get("source") or "" for a in actions})
    return ModelHistory(
        name,
        [s for s in sources if s],
        listed.rows,
        actions,
        sorted(targets.values(), key=lambda t: (t.target, t.kind)),
        listed.scanned_all,
    )
