"""Approvals: decide on a waiting `approve` action, list the pending ones with their evidence, and
wake the ones a tag change may have decided.

A decision is a ledger operation (`Ledger.decide`): recorded in the approve action's outputs (who,
when, the comment, how) and the action made due at once, then dispatched; its executor completes or
fails it (shared/executors/approve.py). The first decision stands: a second one is refused (409,
naming the first), so a double click or two approvers at once change nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from shared.adapters.registry_uris import mlflow_version_page
from shared.config.schema import ReactorConfig
from shared.domain.actions import APPROVE, RUNNING, VALIDATE, WAITING, Action
from shared.domain.clock import iso
from shared.domain.outputs import ApproveOutputs
from shared.errors import BadRequest, Conflict, NotFound
from shared.service.reactor import Reactor

DECISIONS = ("approve", "reject")
BUSY_WAIT_SECONDS = 3.0  # a re-check holds the action for one registry read: wait that out, then refuse
PENDING_LIMIT = 1000


@dataclass(frozen=True)
class Decision:
    decision: str  # approve | reject
    who: str  # the token subject, the Entra object id, "tag ... on source ..."
    comment: str | None = None
    via: str = "api"  # api | cli | ui | tag


def decide(reactor: Reactor, action_id: str, decision: Decision) -> Action:
    """Record ``decision`` on the waiting approval ``action_id`` and dispatch it; the action after."""
    if decision.decision not in DECISIONS:
        raise BadRequest(f"decision must be one of {', '.join(DECISIONS)}, not {decision.decision!r}", field="decision")
    comment = (decision.comment or "").strip() or None
    outputs = ApproveOutputs(
        decision=decision.decision,
        decided_by=decision.who,
        decided_at=iso(reactor.clock()),
        comment=comment,
        via=decision.via,
    )
    verb = "approved" if decision.decision == "approve" else "rejected"
    line = f"{verb} by {decision.who} via {decision.via}" + (f": {comment}" if comment else "")
    deadline = time.monotonic() + BUSY_WAIT_SECONDS
    while True:
        action = _approval(reactor, action_id)
        recorded = reactor.ledger.decide(action_id, outputs, line)
        if recorded is not None:
            reactor.dispatcher.dispatch([action_id])
            return recorded
        if action.status != RUNNING or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise _refusal(_approval(reactor, action_id))


def _approval(reactor: Reactor, action_id: str) -> Action:
    action = reactor.ledger.get_action(action_id)
    if action is None:
        raise NotFound(f"no action {action_id}", field="action_id")
    if action.kind != APPROVE:
        raise Conflict(f"action {action_id} is a {action.kind} step, not an approval", field="action_id")
    return action


def _refusal(action: Action) -> Conflict:
    outputs = action.outputs
    if isinstance(outputs, ApproveOutputs) and outputs.decision:
        verb = "approved" if outputs.decision == "approve" else "rejected"
        return Conflict(
            f"action {action.id} was already {verb} by {outputs.decided_by} at {outputs.decided_at}; "
            "the first decision stands",
            field="decision",
        )
    if action.status == RUNNING:
        return Conflict(f"action {action.id} is being re-checked right now; send the decision again", field="decision")
    return Conflict(
        f"action {action.id} is {action.status}, not waiting for a decision"
        + (" (its previous steps have not finished)" if action.status == "queued" else ""),
        field="decision",
    )


def pending(reactor: Reactor) -> list[dict[str, Any]]:
    """The approvals waiting for a decision, oldest first, each with its evidence."""
    waiting = reactor.ledger.list_actions(kind=APPROVE, status=WAITING, limit=PENDING_LIMIT)
    return [
        evidence(reactor, a) for a in sorted(waiting, key=lambda a: a.created_at or datetime.min.replace(tzinfo=UTC))
    ]


def evidence(reactor: Reactor, action: Action) -> dict[str, Any]:
    """An approval as the API, the CLI and the audit page show it: what waits, since when, the
    validation before it (candidate vs baseline), the version's lineage and its source page."""
    validation = _validation_before(reactor, action)
    params = action.params
    now = reactor.clock()
    waited = (now - action.created_at).total_seconds() if action.created_at else None
    return {
        "action_id": action.id,
        "approval": action.target,
        "status": action.status,
        "model_name": action.model_name,
        "model_version": action.model_version,
        "source": params.source,
        "rule": action.rule,
        "event_id": action.event_id,
        "outputs": action.outputs.to_dict(),
        "waiting_seconds": round(waited, 1) if waited is not None else None,
        "validation": validation.to_dict() if validation else None,
        "validation_action_id": validation.id if validation else None,
        "lineage": {"source": params.source, "event_kind": params.event_kind, "run_id": params.run_id},
        "source_link": mlflow_version_page(params.source_tracking_uri, action.model_name, action.model_version),
    }


def _validation_before(reactor: Reactor, action: Action) -> Action | None:
    """The nearest validate step this approval runs after."""
    after, hops = action.after, 0
    while after and hops < 32:
        before = reactor.ledger.get_action(after)
        if before is None:
            return None
        if before.kind == VALIDATE:
            return before
        after, hops = before.after, hops + 1
    return None


def apply_approval_tags(reactor: Reactor, source: str, model: str, version: str, tags: dict[str, str]) -> list[str]:
    """A tag was set on a source version (a webhook, a reconcile pass): wake the approvals waiting on
    that version whose `tag:` is among ``tags``, so that they read it now instead of at their next
    re-check. The tag's value is read from the registry by the approval itself (events are hints).
    Returns the ids woken."""
    names = approval_tag_names(reactor.config, tags)
    if not names:
        return []
    woken: list[str] = []
    for action in reactor.ledger.list_actions(
        model=model, version=version, kind=APPROVE, status=WAITING, limit=PENDING_LIMIT
    ):
        if action.target not in names or action.params.source != source:
            continue
        if reactor.ledger.wake(action.id, f"tag {names[action.target]} set on source {source}: re-check now"):
            woken.append(action.id)
    if woken:
        reactor.dispatcher.dispatch(woken)
    return woken


def tagged_waiting(reactor: Reactor, source: str) -> list[Action]:
    """The approvals of ``source`` waiting for a decision that a tag on the source version can make
    (reconcile reads those tags: a decision by tag nobody reported is found within one pass)."""
    tagged = {name for name, a in reactor.config.approvals.items() if a.tag}
    waiting = reactor.ledger.list_actions(kind=APPROVE, status=WAITING, limit=PENDING_LIMIT)
    return [
        a
        for a in waiting
        if a.target in tagged and a.params.source == source and not a.model_version.startswith("run-")
    ]


def approval_tag_names(config: ReactorConfig, tags: dict[str, str]) -> dict[str, str]:
    """approval name -> its tag, for the approvals whose tag is among ``tags``."""
    return {name: a.tag for name, a in config.approvals.items() if a.tag and a.tag in tags}
