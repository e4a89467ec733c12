"""Which version a rollback of a deployment target goes back to, read from the ledger.

The target's history is its succeeded deploy and rollback actions, in the order they finished,
as a stack: a deploy puts its version on top, a rollback takes the version it moved away from
off (so a second rollback goes further back, never forth again) and puts the one it restored on
top. During a rollout (a deploy waiting between its steps) a rollback stops it: the version still
serving gets all traffic back. Otherwise, without `--to` a rollback goes to the version under the
top; the executor then checks that the target really kept it (a retired local server, an online
deployment at 0%, an older web service) and refuses when it did not.

`modelops undeploy` stops a local target's servers and forgets them, so it empties the stack: it is
recorded in the ledger as an `undeploy` report, read here. (Before it was, a rollback after an
undeploy answered 409 "churn v1 serves": the history still had the stopped version on top.)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.config.schema import ReactorConfig
from shared.domain.actions import DEPLOY, ROLLBACK, SUCCEEDED, WAITING, Action, PlannedAction, source_scope
from shared.domain.clock import parse_dt
from shared.domain.outputs import DeployOutputs, ModelLocation
from shared.domain.params import ActionParams
from shared.errors import Conflict, NotFound
from shared.ledger.base import Ledger


@dataclass(frozen=True)
class Served:
    """A model version a target served, and the action that made it serve."""

    model_name: str
    model_version: str
    action: Action

    @property
    def scope(self) -> str | None:
        """The named source of the deploy: two sources' same-named versions are two deployments."""
        return source_scope(self.action.params.source)

    @property
    def ident(self) -> tuple[str | None, str, str]:
        return self.scope, self.model_name, self.model_version

    def label(self) -> str:
        return f"{self.model_name} v{self.model_version}" + (f" (source {self.scope})" if self.scope else "")


def plan_rollback(
    config: ReactorConfig, ledger: Ledger, target: str, *, model: str | None = None, to: str | None = None
) -> tuple[PlannedAction | None, Served]:
    """The rollback to plan, and the version serving now; no plan when ``to`` is already serving."""
    if target not in config.deployments:
        known = ", ".join(sorted(config.deployments)) or "none"
        raise NotFound(f"no deployment target named {target!r}; configured: {known}", field="target")
    served = _history(ledger, target)
    undeploys = undeploy_history(ledger, target)
    stack = _stack(served, [at for at, _ in undeploys])
    if not stack and undeploys and served:
        at, report = undeploys[-1]
        stopped = ", ".join(f"{s['model_name']} v{s['model_version']}" for s in report.get("stopped", [])) or "it"
        last = max(served, key=_finished)
        raise Conflict(
            f"nothing serves on {target}: `modelops undeploy` stopped {stopped} at {at:%Y-%m-%d %H:%M:%S} UTC, and "
            "a rollback only switches between versions a target keeps. Deploy the version you want: "
            f"modelops deploy {last.model_name} {last.model_version} --target {target} --force",
            field="target",
        )
    if not stack:
        raise Conflict(f"nothing to roll back on {target}: this reactor has deployed nothing there yet", field="target")
    current = stack[-1]
    rolling = None if to is not None else _rolling_out(ledger, target, model)
    if rolling is not None:
        # a rollout under way: the version still serving takes all traffic back, the rollout stops
        goal, current = current, Served(rolling.model_name, rolling.model_version, rolling)
    elif to is not None:
        wanted = (model or current.model_name, str(to))
        if wanted == current.ident[1:]:
            return None, current
        found = [s for s in served if s.ident[1:] == wanted]
        if not found:
            deployed = ", ".join(dict.fromkeys(s.label() for s in served))
            raise Conflict(
                f"{wanted[0]} v{wanted[1]} was never deployed on {target} by this reactor; deployed: {deployed}",
                field="to",
            )
        goal = found[-1]
    else:
        below = [s for s in reversed(stack[:-1]) if model is None or s.model_name == model]
        if not below:
            last = max(served, key=_finished)
            why = (
                f"; the last rollback ({last.action.id}) already moved it back from v{last.action.params.from_version}"
                if last.action.kind == ROLLBACK
                else ""
            )
            raise Conflict(
                f"nothing kept to roll back to on {target}: {current.label()} serves and no earlier "
                f"{'version of ' + model if model else 'version'} is left in its history{why}. "
                f"Deploy the version you want (modelops deploy MODEL VERSION --target {target} --force)",
                field="target",
            )
        goal = below[0]
    tracking_uri, registry_uri, registry = _location(ledger, goal.action)
    params = ActionParams(
        source=goal.action.params.source,
        from_version=current.model_version,
        # the line it changes: the deploy's source model and version (shared/ledger/lines.py)
        model_line=goal.action.params.model_line or goal.action.model_name,
        line_version=goal.action.params.line_version or goal.action.model_version,
        source_tracking_uri=tracking_uri,
        source_registry_uri=registry_uri,
        source_registry=registry,
    )
    planned = PlannedAction(
        ROLLBACK,
        target,
        goal.model_name,
        goal.model_version,
        params=params,
        rule="operator",
        qualifier=f"from:{current.model_name}:{current.model_version}",
    )
    return planned, current


def _rolling_out(ledger: Ledger, target: str, model: str | None) -> Action | None:
    """A deploy of ``target`` in the middle of a rollout (between its steps), if one is."""
    for action in ledger.list_actions(kind=DEPLOY, status=WAITING, limit=1000):
        outputs = action.outputs
        if (
            action.target == target
            and (model is None or action.model_name == model)
            and isinstance(outputs, DeployOutputs)
            and outputs.rollout_step is not None
            and not outputs.rollout_failed
        ):
            return action
    return None


def _finished(served: Served) -> str:
    return str(served.action.finished_at or served.action.created_at or "")


def _history(ledger: Ledger, target: str) -> list[Served]:
    actions = [
        a
        for kind in (DEPLOY, ROLLBACK)
        for a in ledger.list_actions(kind=kind, status=SUCCEEDED, limit=1000)
        if a.target == target
    ]
    out = []
    for action in actions:
        name = getattr(action.outputs, "model_name", None) or action.model_name
        version = getattr(action.outputs, "model_version", None) or action.model_version
        out.append(Served(str(name), str(version), action))
    return sorted(out, key=_finished)


UNDEPLOY = "undeploy"  # the ledger's report kind of `modelops undeploy`


def undeploy_history(ledger: Ledger, target: str) -> list[tuple[datetime, dict[str, Any]]]:
    """When `modelops undeploy` stopped this target's servers (oldest first), with what it stopped."""
    found = []
    for report in ledger.list_reports(UNDEPLOY, limit=200):
        at = parse_dt(report.get("created_at"))
        if report.get("target") == target and at is not None:
            found.append((at, report))
    return sorted(found, key=lambda pair: pair[0])


def _stack(served: list[Served], undeployed: list[datetime]) -> list[Served]:
    stack: list[Served] = []
    marks = sorted(undeployed)
    for entry in served:
        finished = entry.action.finished_at or entry.action.created_at
        while marks and finished is not None and marks[0] < finished:
            stack, marks = [], marks[1:]  # an undeploy stopped and forgot everything deployed before it
        if entry.action.kind == ROLLBACK:
            away = (entry.model_name, entry.action.params.from_version)
            stack = [s for s in stack if s.ident[1:] != away]
        stack = [s for s in stack if s.ident != entry.ident] + [entry]
    return [] if marks else stack


def _location(ledger: Ledger, action: Action) -> tuple[str | None, str | None, str | None]:
    """Where the deployed copy lives: the register step the deploy ran after, else its source."""
    if action.after:
        upstream = ledger.get_action(action.after)
        outputs = upstream.outputs if upstream is not None else None
        if isinstance(outputs, ModelLocation) and outputs.tracking_uri:
            return outputs.tracking_uri, outputs.registry_uri, outputs.registry
    params = action.params
    return params.source_tracking_uri, params.source_registry_uri, params.source_registry
