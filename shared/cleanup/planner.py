"""Turn per-group decisions into a run plan, applying the per-run deletion cap."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from shared.cleanup.groups import Group
from shared.cleanup.policy import Action, Decision, Policy, Reason

_EPOCH = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Planned:
    group: Group
    decision: Decision


def plan(groups: Iterable[Group], policy: Policy, now: datetime, *, cap: int) -> list[Planned]:
    """Decide every group; beyond ``cap`` deletions, the rest become over-cap.

    The longest-marked groups go first, so a cap never starves the same groups run after run.
    """
    planned = [Planned(g, policy.decide(g, now)) for g in groups]
    deletes = sorted(
        (p for p in planned if p.decision.action is Action.DELETE),
        key=lambda p: (p.decision.marked_until or _EPOCH, p.group.scope, p.group.name.lower()),
    )
    over = {id(p) for p in deletes[cap:]}
    if not over:
        return planned
    detail = f"per-run deletion cap of {cap} reached"
    return [
        Planned(
            p.group,
            replace(
                p.decision, action=Action.OVER_CAP, reason=Reason.CAP_REACHED, detail=f"{detail}; {p.decision.detail}"
            ),
        )
        if id(p) in over
        else p
        for p in planned
    ]
