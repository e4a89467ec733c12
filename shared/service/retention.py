"""Retention: events, deliveries and finished actions older than `retention.keep` leave the ledger.

An event goes with all of its actions or not at all, and never while one of them:
- is in flight or waiting (queued, running, waiting), or finished after the cutoff;
- is deployment history that rollback and status read: per deployment target and model line
  (source, model), the newest ``keep_previous + 1`` succeeded deploy and rollback actions;
- is the upstream (``after``) of an action that stays.
Refused deliveries (no event) older than the cutoff go too. A dry run reports what would go.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.config.schema import ReactorConfig
from shared.domain.actions import DEPLOY, ROLLBACK, SUCCEEDED, TERMINAL, Action, source_scope
from shared.domain.clock import iso
from shared.service.reactor import Reactor

HISTORY_LIMIT = 100_000  # succeeded deploys and rollbacks read to find each target's history


@dataclass(frozen=True)
class PruneReport:
    """What a prune removed (``applied``) or would remove (a dry run), and what it kept and why."""

    cutoff: str
    applied: bool
    events: int
    actions: int
    deliveries: int
    kept_in_flight: int  # old events kept for an action queued, running, waiting or finished lately
    kept_for_rollback: int  # old events kept for a target's deployment history (or its upstream)
    event_ids: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "event_ids": list(self.event_ids)}


def prune(
    reactor: Reactor, *, older_than: timedelta | None = None, apply: bool = False, now: datetime | None = None
) -> PruneReport:
    """Prune the reactor's ledger (``older_than`` defaults to ``retention.keep``); dry run unless ``apply``."""
    cutoff = (now or reactor.clock()) - (older_than if older_than is not None else reactor.config.retention.keep_for())
    old = reactor.ledger.old_records(cutoff)
    history = _deployment_history(reactor.config, reactor.ledger.list_actions)
    in_flight = [e for e in old.events if any(not _finished_before(a, cutoff) for a in e.actions)]
    busy = {e.record.id for e in in_flight}
    candidates = [e for e in old.events if e.record.id not in busy and not any(a.id in history for a in e.actions)]
    while True:  # an upstream stays while an action that stays runs after it: until nothing changes
        leaving = {a.id for e in candidates for a in e.actions}
        needed = {up for up, dependents in old.dependents.items() if any(d not in leaving for d in dependents)}
        go = [e for e in candidates if not any(a.id in needed for a in e.actions)]
        if len(go) == len(candidates):
            break
        candidates = go
    event_ids = [e.record.id for e in go]
    going = set(event_ids)
    action_ids = [a.id for e in go for a in e.actions if a.event_id in going]
    if apply and (event_ids or old.refused):
        reactor.ledger.prune(event_ids, action_ids, refused_before=cutoff)
    return PruneReport(
        cutoff=iso(cutoff) or "",
        applied=apply,
        events=len(event_ids),
        actions=len(action_ids),
        deliveries=sum(e.record.deliveries for e in go) + old.refused,
        kept_in_flight=len(in_flight),
        kept_for_rollback=len(old.events) - len(in_flight) - len(go),
        event_ids=tuple(event_ids),
    )


def _finished_before(action: Action, cutoff: datetime) -> bool:
    finished = action.finished_at or action.created_at
    return action.status in TERMINAL and finished is not None and finished < cutoff


def _deployment_history(config: ReactorConfig, list_actions: Any) -> set[str]:
    """The ids of the newest ``keep_previous + 1`` succeeded deploys and rollbacks per target and
    model line: what a rollback can go back to and what status reads as served."""
    lines: dict[tuple[str, str | None, str], list[Action]] = defaultdict(list)
    for kind in (DEPLOY, ROLLBACK):
        for action in list_actions(kind=kind, status=SUCCEEDED, limit=HISTORY_LIMIT):
            lines[action.target, source_scope(action.params.source), action.model_name].append(action)
    kept: set[str] = set()
    for (target, _, _), actions in lines.items():
        depth = getattr(config.deployments.get(target), "keep_previous", 1) + 1
        newest = sorted(actions, key=lambda a: a.finished_at or a.created_at or datetime.min, reverse=True)
        kept.update(a.id for a in newest[:depth])
    return kept
