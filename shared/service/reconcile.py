"""Reconcile: nothing lost. Each listable source's registry is compared with the ledger, and a change
no event reported becomes an event `via: reconcile`, planned as usual; then each declared line's
target is compared with what is desired (shared/service/status.py) and drift is reported, or undone
with `reconcile.self_heal: true`.

Events are hints, the registry is the truth (a level-triggered controller, as Kubernetes' and Argo
CD's): a new version is found through registered models ordered by last update (creating a version
updates its model; listing stops at the first model not updated since the watermark), an alias move
(or a stage's newest version: a stage change) by comparing the holders of the aliases and stages the
rules listen to with the last move the ledger recorded (shared/service/moves.py; setting an alias
changes no timestamp to search by). A new version's event
has the webhook's dedupe key, so the late webhook is a duplicate; an alias or stage move found
here is recorded first and the late webhook of it takes its identity.

Cost of a quiet pass over a source: one page of models, plus one alias read per literal model name
the alias rules match, or one page of up to 1,000 models per glob; a changed model adds its versions.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from shared.config.schema import ReactorConfig, SourceConfig
from shared.domain import events as ev
from shared.domain.actions import DEPLOY, PlannedAction
from shared.domain.clock import iso
from shared.domain.desired import DEGRADED
from shared.rules import action_params
from shared.service import moves
from shared.service.desired import declarations
from shared.service.reactor import Reactor
from shared.service.sources import source_uris
from shared.service.status import Snapshot, line_statuses

log = logging.getLogger("modelops.reconcile")
COUNTS = ("models", "versions", "aliases", "stages", "approvals", "accepted", "duplicates", "requests")


def reconciled(source: SourceConfig) -> bool:
    """Reconciled by default; `reconcile: false` opts out, `poll: true` (the older name) opts back in."""
    return source.reconcile or source.poll


def reconcile_sources(reactor: Reactor, *, only: str | None = None) -> dict[str, Any]:
    """One pass over every reconciled source (or just ``only``); counts per source, then the lines."""
    summary: dict[str, Any] = {}
    seen: Snapshot = {}
    for name, source in reactor.config.sources.items():
        if (only and name != only) or (not only and not reconciled(source)):
            continue
        try:
            summary[name] = reconcile_source(reactor, name, source, seen)
        except Exception as exc:  # one unreachable registry must not stop the others
            log.exception("reconciling %s failed", name)
            summary[name] = {"error": f"the registry cannot be read now: {exc}"}  # words, not a class name
    healthy = [name for name, counts in summary.items() if "error" not in counts]
    if healthy:
        drift = converge_lines(reactor, healthy, seen)
        if drift:
            summary["lines"] = drift
    reactor.ledger.record_report("reconcile", summary)
    return summary


def reconcile_source(reactor: Reactor, name: str, source: SourceConfig, seen: Snapshot) -> dict[str, int]:
    """One source: its new versions, alias and stage moves recorded; ``seen`` gets the heads it read."""
    from shared.adapters.mlflow_registry_changes import RegistryChanges

    registry = RegistryChanges(*source_uris(reactor.config, name))
    key = f"poller:{name}"  # the watermark's name since the poller kept it
    state = json.loads(reactor.ledger.get_watermark(key) or "{}")
    now_ms = int(time.time() * 1000)
    since = int(state.get("since", now_ms - source.poll_lookback_seconds * 1000))
    counts = dict.fromkeys(COUNTS, 0)
    newest = since
    for model in registry.models(updated_after=since):
        counts["models"] += 1
        newest = max(newest, model.last_updated_ms)
        for mv in registry.versions_since(model.name, since):
            counts["versions"] += 1
            created = _event(
                name, ev.MODEL_VERSION_CREATED, mv.model, mv.version, mv.created_ms, tags=mv.tags, run_id=mv.run_id
            )
            _accept(reactor, counts, created)
    move_requests = _moves(reactor, name, counts, now_ms, seen)
    counts["requests"] = registry.requests + move_requests + _approval_tags(reactor, name, counts)
    reactor.ledger.set_watermark(key, json.dumps({"since": newest}))
    log.info("reconciled %s: %s", name, counts)
    return counts


def _moves(reactor: Reactor, source: str, counts: dict[str, int], now_ms: int, seen: Snapshot) -> int:
    """Alias holders and stage heads the rules listen to that differ from the last move the ledger recorded."""
    aliases = _listened(reactor.config, source, ev.MODEL_VERSION_ALIAS_SET)
    stages = _listened(reactor.config, source, ev.MODEL_VERSION_STAGE_CHANGED)
    if not (aliases or stages) or reactor.desired is None:
        return 0
    reader = reactor.desired.reader(source)
    before = reader.requests
    declared = [g for d in declarations(reactor.config) if source in d.sources for g in d.models]
    snapshot = seen.setdefault(source, {})
    listened = [g for globs in (*aliases.values(), *stages.values()) for g in globs]
    for model, heads in reader.heads([*listened, *declared]):
        snapshot[model] = heads
        for alias, version in heads.aliases.items():
            if _listens(aliases, alias, model):
                _move(reactor, counts, source, model, version, now_ms, alias=alias)
        for stage, version in heads.stages.items():
            if _listens(stages, stage.lower(), model):
                _move(reactor, counts, source, model, version, now_ms, stage=stage)
    return reader.requests - before


def _listens(listening: dict[str, list[str]], name: str, model: str) -> bool:
    return any(fnmatchcase(model, glob) for glob in listening.get(name, []) + listening.get("*", []))


def _move(
    reactor: Reactor,
    counts: dict[str, int],
    source: str,
    model: str,
    version: str,
    now_ms: int,
    *,
    alias: str | None = None,
    stage: str | None = None,
) -> None:
    """Record the move of ``alias`` (or ``stage``) to ``version`` unless it is the last one recorded."""
    last = moves.last_move(reactor.ledger, source, model, alias, stage=stage)
    if last is not None and last.version == version:
        return
    counts["aliases" if alias is not None else "stages"] += 1
    kind = ev.MODEL_VERSION_ALIAS_SET if alias is not None else ev.MODEL_VERSION_STAGE_CHANGED
    moved = _event(source, kind, model, version, now_ms, alias=alias, stage=stage)
    at = datetime.fromtimestamp(now_ms / 1000, UTC)
    _accept(reactor, counts, replace(moved, change=f"reconcile@{iso(at)}"))


def _approval_tags(reactor: Reactor, source: str, counts: dict[str, int]) -> int:
    """Approvals waiting on a version of ``source`` whose tag now holds a decision nobody reported:
    woken, so they read it and decide now (one tag read per waiting tagged approval)."""
    from shared.executors.approve import APPROVED, REJECTED
    from shared.service.approvals import apply_approval_tags, tagged_waiting

    waiting = tagged_waiting(reactor, source)
    if not waiting or reactor.desired is None:
        return 0
    reader = reactor.desired.reader(source)
    before = reader.requests
    for action in waiting:
        tag = reactor.config.approvals[action.target].tag or ""
        tags = reader.version_tags(action.model_name, action.model_version)
        if tags.get(tag, "").strip().lower() in (APPROVED, REJECTED):
            counts["approvals"] += len(
                apply_approval_tags(reactor, source, action.model_name, action.model_version, tags)
            )
    return reader.requests - before


def _listened(config: ReactorConfig, source: str, kind: str) -> dict[str, list[str]]:
    """alias, or stage in lower case ("*": any) -> the model globs of the rules that listen to its
    moves from ``source``."""
    out: dict[str, list[str]] = {}
    for rule in config.rules:
        if kind in rule.on and (not rule.source or source in rule.source):
            name = rule.alias if kind == ev.MODEL_VERSION_ALIAS_SET else (rule.stage or "").lower()
            out.setdefault(name or "*", []).extend(rule.models)
    return out


def converge_lines(reactor: Reactor, sources: list[str], seen: Snapshot) -> list[dict[str, Any]]:
    """Report each degraded declared line; with self_heal, re-deploy its desired version."""
    reports = []
    for line in line_statuses(reactor, sources=sources, aliases=seen):
        if line.sync != DEGRADED:
            continue
        healed = None
        if reactor.config.reconcile.self_heal and line.desired.version:
            healed = heal(reactor, line.target, line.source, line.model, line.desired.version, line.desired.alias)
        log.warning(
            "drift on %s (%s/%s): %s%s",
            line.target,
            line.source,
            line.model,
            line.reason,
            f"; self-heal: {healed}" if healed else " (reconcile.self_heal is off: reported only)",
        )
        reports.append({**line.to_dict(), "healed_by": healed})
    return reports


def heal(reactor: Reactor, target: str, source: str, model: str, version: str, alias: str | None) -> str | None:
    """Record a reconcile event that re-deploys the desired version on a degraded target; the action id."""
    now = reactor.clock()
    event = ev.ModelEvent(
        source=source,
        via=ev.RECONCILE,
        kind=None,
        source_type="reconcile.self_heal",
        model_name=model,
        model_version=version,
        delivery_id=f"heal:{target}:{iso(now)}",
        alias=alias,
    )
    params = action_params(reactor.config, event, target_model_name=None)
    change = f"heal@{iso(now)}"
    declared = replace(params, alias=alias, change=change)
    planned = PlannedAction(DEPLOY, target, model, version, params=declared, rule="self-heal", qualifier=change)
    result = reactor.ledger.record_event(event, [planned], reason=None, max_attempts=reactor.config.worker.max_attempts)
    reactor.dispatcher.dispatch(result.dispatch)
    return result.action_ids[0] if result.action_ids else None


def _accept(reactor: Reactor, counts: dict[str, int], event: ev.ModelEvent) -> None:
    result = reactor.accept(event)
    counts["duplicates" if result.duplicate else "accepted"] += 1


def _event(source: str, kind: str, model: str, version: str, at_ms: int, **extra: Any) -> ev.ModelEvent:
    return ev.ModelEvent(
        source=source,
        via=ev.RECONCILE,
        kind=kind,
        source_type=f"reconcile.{kind}",
        model_name=model,
        model_version=version,
        occurred_at=datetime.fromtimestamp(at_ms / 1000, UTC),
        **extra,
    )
