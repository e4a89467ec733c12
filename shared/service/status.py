"""Desired against actual, per (target, source, model) line: `GET /api/status`, `modelops status`,
the audit page's status view and reconcile's self-heal all read it here.

Desired comes from the source registry (shared/service/desired.py), actual from the target itself
(shared/adapters/target_readers.py); the ledger maps what serves back to the source version that was
deployed (the action key a local server or an online deployment carries, a web service's name) and
says what it last switched each line to, what is under way, and which rollback pins a line.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.adapters.target_readers import Serving, read_legacy, read_local, read_online
from shared.domain.actions import DEPLOY, QUEUED, ROLLBACK, RUNNING, SUCCEEDED, WAITING, Action, line_of, serving_line
from shared.domain.clock import iso
from shared.domain.desired import DOWN as DOWN_STATE
from shared.domain.desired import NOTHING, PROGRESSING, SERVING, UNKNOWN, Actual, Desired, Heads, LineStatus, judge
from shared.errors import ModelOpsError, ServiceUnavailable
from shared.executors.rollout import rollout_note
from shared.ledger.base import Ledger
from shared.service.desired import Declaration, declarations
from shared.service.reactor import Reactor
from shared.service.rollback import undeploy_history

log = logging.getLogger("modelops.status")


@dataclass(frozen=True)
class Line:
    target: str
    source: str
    model: str
    declaration: Declaration
    desired: str | None

    @property
    def key(self) -> str:
        return serving_line(self.target, self.model, self.source)


Snapshot = dict[str, dict[str, Heads]]  # source -> model -> its alias and stage holders, read once per pass


def line_statuses(
    reactor: Reactor, *, sources: Iterable[str] | None = None, aliases: Snapshot | None = None
) -> list[LineStatus]:
    """Every declared line of the given sources (all by default) with its desired, actual and sync;
    ``aliases``: what reconcile read of the sources a moment ago (not read again)."""
    ledger = reactor.ledger
    history = _history(reactor)
    active = [a for status in (QUEUED, RUNNING, WAITING) for a in ledger.list_actions(status=status, limit=1000)]
    targets: dict[tuple[str, str], list[Serving] | Exception] = {}  # each target read once
    undeploys: dict[str, list[datetime]] = {}  # and its `modelops undeploy` reports once
    out = []
    for line in declared_lines(reactor, sources, aliases or {}):
        actual = read_actual(reactor, line, history, targets)
        switch = _last_switch(history, line.key)
        last = (switch.params.line_version or switch.model_version) if switch is not None else None
        flying = next((a for a in active if a.kind == DEPLOY and line_of(a) == line.key), None)
        flight = flying.model_version if flying is not None else None
        pin = reactor.desired.pin_of(line.key) if reactor.desired else None
        decl = line.declaration
        if pin is not None and reactor.desired is not None:
            pin = pin if reactor.desired.pin_holds(pin, line.desired, line.source, line.model, decl.alias) else None
        desired = Desired(line.desired, decl.rule, decl.alias, decl.stage)
        stopped = _undeployed_after(ledger, line.target, switch, undeploys) if switch is not None else None
        sync, reason = judge(desired, actual, last_deployed=last, in_flight=flight, pin=pin, undeployed_at=stopped)
        if sync == PROGRESSING and flying is not None:
            reason += rollout_note(flying.outputs)
        out.append(LineStatus(line.target, line.source, line.model, desired, actual, sync, reason))
    return out


def readable_line_statuses(reactor: Reactor, *, sources: Iterable[str] | None = None) -> list[LineStatus]:
    """``line_statuses`` for a person or a client: a source registry that cannot be read now is said in
    words (503 on the API, exit 1 in the CLI, a note on the audit page), never a traceback or a 500."""
    try:
        return line_statuses(reactor, sources=sources)
    except ModelOpsError:
        raise
    except Exception as exc:
        raise ServiceUnavailable(f"the desired state cannot be read now: {exc}", field="source") from exc


def declared_lines(reactor: Reactor, sources: Iterable[str] | None = None, known: Snapshot | None = None) -> list[Line]:
    """(target, source, model) for every model a declaring rule covers that holds its alias (or stage)."""
    wanted = set(sources) if sources is not None else None
    decls = declarations(reactor.config)
    lines: dict[tuple[str, str, str], Line] = {}
    assert reactor.desired is not None
    for source in dict.fromkeys(s for d in decls for s in d.sources):
        if wanted is not None and source not in wanted:
            continue
        mine = [d for d in decls if source in d.sources]
        reader = reactor.desired.reader(source)
        listed = (known or {}).get(source)
        found = listed.items() if listed is not None else reader.heads(g for d in mine for g in d.models)
        for model, heads in found:
            for decl in mine:
                if not decl.covers(source, model):
                    continue
                holder = heads.aliases.get(decl.alias) if decl.alias else heads.stage(decl.stage or "")
                if holder is not None:
                    lines.setdefault((decl.target, source, model), Line(decl.target, source, model, decl, holder))
    return sorted(lines.values(), key=lambda line: (line.target, line.source, line.model))


def read_actual(
    reactor: Reactor, line: Line, history: list[Action], targets: dict[tuple[str, str], list[Serving] | Exception]
) -> Actual:
    """What the line's target serves, as the source version the ledger says was deployed there."""
    cfg = reactor.config.deployments.get(line.target)
    if cfg is None:
        return Actual(None, UNKNOWN, f"target {line.target} is not in the config")
    where = (line.target, line.source)
    if where not in targets:
        try:
            targets[where] = _serving(reactor, cfg, line)
        except Exception as exc:  # a target that cannot be read is reported, never fatal
            log.warning("reading %s failed: %s", line.target, exc)
            targets[where] = exc
    serving = targets[where]
    if isinstance(serving, Exception):
        return Actual(None, UNKNOWN, f"cannot read {line.target}: {serving}")
    for item in serving:
        action = _deployed_by(reactor, item, history)
        model = (action.params.model_line or action.model_name) if action else None
        if action is not None and model != line.model:
            continue  # another model line on the same target
        version = (action.params.line_version or action.model_version) if action else None
        state = SERVING if item.up else DOWN_STATE
        return Actual(version, state, item.detail, action.id if action else None)
    return Actual(None, NOTHING, "")


def _serving(reactor: Reactor, cfg: object, line: Line) -> list[Serving]:
    kind = getattr(cfg, "kind", "")
    if kind == "local":
        from shared.domain.actions import source_scope

        return read_local(reactor.settings.state_dir, line.target, source_scope(line.source) or "")
    if kind in ("managed-online", "kubernetes-online"):
        return read_online(cfg, reactor.settings.azure_http)
    return read_legacy(cfg, line.target)


def _deployed_by(reactor: Reactor, item: Serving, history: list[Action]) -> Action | None:
    if item.action_key:
        found = reactor.ledger.find_action(item.action_key)
        if found is not None:
            return found
    names = ("deployment", "service")
    named = [a for a in history if item.name in (getattr(a.outputs, n, None) for n in names)]
    return named[-1] if named else None


def _history(reactor: Reactor) -> list[Action]:
    """Succeeded deploys and rollbacks, in the order they finished."""
    ledger = reactor.ledger
    done = [a for kind in (DEPLOY, ROLLBACK) for a in ledger.list_actions(kind=kind, status=SUCCEEDED, limit=1000)]
    return sorted(done, key=lambda a: str(a.finished_at or a.created_at or ""))


def _last_switch(history: list[Action], key: str) -> Action | None:
    """The deploy (or rollback) that last switched the line."""
    return next((action for action in reversed(history) if line_of(action) == key), None)


def _undeployed_after(ledger: Ledger, target: str, switch: Action, known: dict[str, list[datetime]]) -> str | None:
    """When `modelops undeploy` last stopped ``target``, if after ``switch`` finished."""
    if target not in known:
        known[target] = [at for at, _ in undeploy_history(ledger, target)]
    finished = switch.finished_at or switch.created_at
    stops = [at for at in known[target] if finished is None or at > finished]
    return iso(stops[-1]) if stops else None
