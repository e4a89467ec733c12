"""View-models of the events list, one event and one model's history, read through the ledger port."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.api.ui.attempts import Attempt, attempts_from_log
from shared.api.ui.gates import gate_label
from shared.api.ui.links import OutputLink, SourceUI, output_links, source_links
from shared.api.ui.timeline import Lane, timeline_svg
from shared.config.schema import ReactorConfig
from shared.domain.actions import QUEUED, RUNNING, SUCCEEDED, WAITING
from shared.domain.clock import parse_dt
from shared.ledger.base import Ledger
from shared.service.event_query import SCAN, EventFilters, EventRow, list_events, outcome

UNFINISHED = (QUEUED, RUNNING, WAITING)


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
    sources: list[OutputLink] = field(default_factory=list)  # the version (and run) in the source's MLflow UI

    @property
    def running(self) -> bool:
        """An action still to finish: the page refreshes itself until none is."""
        return any(v.action["status"] in UNFINISHED for v in self.actions)


@dataclass(frozen=True)
class ActionPage:
    view: ActionView
    event: dict[str, Any] | None
    sources: list[OutputLink]

    @property
    def running(self) -> bool:
        return self.view.action["status"] in UNFINISHED


def source_ui(config: ReactorConfig, source: str | None, tracking_uri: str | None = None) -> SourceUI:
    """Where a configured source's versions open: its Databricks workspace, or its (or its registry's) MLflow UI."""
    entry = config.sources.get(source or "")
    if entry is None:
        return SourceUI(tracking_uri)
    registry = config.registries.get(entry.registry or "")
    if registry is not None and registry.kind in ("databricks", "databricks-uc"):
        return SourceUI(databricks_host=getattr(registry, "host", None), unity_catalog=registry.kind == "databricks-uc")
    return SourceUI(tracking_uri or entry.tracking_uri or getattr(registry, "tracking_uri", None))


def action_page(ledger: Ledger, config: ReactorConfig, action_id: str) -> ActionPage | None:
    found = ledger.get_action(action_id)
    if found is None:
        return None
    action = found.to_dict()
    source = action["params"].get("source")
    ui = source_ui(config, source, action["params"].get("source_tracking_uri"))
    return ActionPage(action_view(ledger, action), ledger.get_event(found.event_id), source_links(ui, action))


def lane_of(view: ActionView) -> Lane:
    a = view.action
    return Lane(
        id=a["id"],
        label=gate_label(a),
        status=a["status"],
        planned_at=parse_dt(a.get("created_at")),
        finished_at=parse_dt(a.get("finished_at")),
        attempts=tuple(view.attempts),
        after=a.get("after"),
    )


def event_page(ledger: Ledger, config: ReactorConfig, event_id: str, now: datetime) -> EventPage | None:
    event = ledger.get_event(event_id)
    if event is None:
        return None
    views = [action_view(ledger, a) for a in event["actions"]]
    svg = timeline_svg(parse_dt(event.get("received_at")), [lane_of(v) for v in views], now)
    payload = {k: v for k, v in (ledger.event_payload(event_id) or {}).items() if k != "raw" and v not in (None, {})}
    links = source_links(source_ui(config, event.get("source")), event)
    return EventPage(event, outcome(event), views, svg, payload, links)


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
