"""The action state machine, pure: each transition takes an action (and the clock reading, worker
and inputs it needs) and returns the new action with its audit-log lines, or None to refuse.

    QUEUED --claim--> RUNNING --complete--> SUCCEEDED
      ^                 |  |  --wait--> WAITING --claim (a re-check, not a new attempt)--> RUNNING
      |                 |  +--fail(retry_at)--> QUEUED (not before retry_at)
      |                 +-----fail / crash loop--> FAILED --> its QUEUED dependents: SKIPPED
      |                 +--supersede--> SUPERSEDED (a deploy no longer desired) --> its QUEUED dependents: SKIPPED
      +--requeue-- FAILED | SKIPPED | SUPERSEDED (| SUCCEEDED when asked)

Serving lines: deploys and rollbacks of one (target, source, model) line run one at a time (core.py
holds the line in a compare-and-set register); a claim that finds the line held by a live lease is
deferred (``defer``) and tries again shortly (shared/ledger/lines.py), so the holder finishes first.

Only the lease owner of a RUNNING action may renew, complete, wait or fail it: after its lease
expired and another worker reclaimed it, a late writer is refused (fencing).

Crash loop: an action whose lease expired on its last allowed attempt (attempts >= max_attempts)
killed or hung every worker that ran it; it fails (and its dependents are skipped) instead of being
handed to the next worker. A claim without an action id sweeps every crash-looped action among the
due candidates before claiming the first runnable one; a claim by id handles only that action.

Redelivery: a duplicate delivery of an event dispatches again its actions that never started
(QUEUED, no attempt yet, after nothing or after an action that succeeded): the first writer may
have died, or failed to enqueue, before dispatching. A second message for an action is harmless,
the lease decides who runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from shared.domain.actions import (
    FAILED,
    QUEUED,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    SUPERSEDED,
    WAITING,
    Action,
    PlannedAction,
)
from shared.domain.clock import iso
from shared.domain.outputs import Outputs, empty_outputs


@dataclass(frozen=True)
class Transition:
    """The action after a transition and the audit-log lines it writes (as ``worker``)."""

    action: Action
    lines: tuple[str, ...] = ()
    worker: str | None = None


def plan(
    step: PlannedAction, *, action_id: str, event_id: str, after: str | None, max_attempts: int, now: datetime
) -> Transition:
    action = Action(
        id=action_id,
        key=step.key,
        kind=step.kind,
        target=step.target,
        model_name=step.model_name,
        model_version=step.model_version,
        event_id=event_id,
        status=QUEUED,
        params=step.params,
        outputs=empty_outputs(step.kind),
        max_attempts=max_attempts,
        after=after,
        rule=step.rule,
        created_at=now,
    )
    return Transition(action, (f"planned by {step.rule or 'operator'} for event {event_id}",))


def is_due(a: Action, now: datetime) -> bool:
    """Queued or waiting past its not-before time, or running under a lease that expired."""
    if a.status in (QUEUED, WAITING):
        return a.not_before is None or a.not_before <= now
    return a.status == RUNNING and a.lease_expires_at is not None and a.lease_expires_at <= now


def crash_looped(a: Action, now: datetime) -> bool:
    return a.status == RUNNING and is_due(a, now) and a.attempts >= a.max_attempts


def claim_order(a: Action, now: datetime) -> tuple[bool, datetime, datetime]:
    """Claim order: never-deferred work first, then by the time it became due, then the oldest."""
    return (a.not_before is not None, a.not_before or now, a.created_at or now)


def due_at(a: Action, now: datetime) -> datetime:
    """When an active action becomes claimable (now, if it already is)."""
    return (a.lease_expires_at if a.status == RUNNING else a.not_before) or now


def never_started(a: Action, *, upstream_done: bool) -> bool:
    """What a redelivery dispatches again: queued, no attempt yet, and runnable."""
    return a.status == QUEUED and a.attempts == 0 and upstream_done


def claim(a: Action, now: datetime, worker: str, lease_seconds: float, *, upstream_done: bool) -> Transition | None:
    """Lease a due action whose predecessor succeeded (``upstream_done``), or end its crash loop."""
    if not is_due(a, now):
        return None
    if crash_looped(a, now):
        return _crash_out(a, now)
    if not upstream_done:
        return None
    # a re-check of remote work (WAITING) is not a new attempt
    attempts = a.attempts + (0 if a.status == WAITING else 1)
    lines = (f"lease of {a.lease_owner} expired; reclaimed",) if a.status == RUNNING else ()
    leased = replace(
        a,
        status=RUNNING,
        lease_owner=worker,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        attempts=attempts,
        started_at=a.started_at or now,
    )
    return Transition(leased, (*lines, f"claimed (attempt {attempts})"), worker)


def _crash_out(a: Action, now: datetime) -> Transition:
    error = (
        f"the lease expired on attempt {a.attempts}, the last allowed: every worker running it"
        " died or hung (see the worker logs)"
    )
    failed = replace(a, status=FAILED, error=error, lease_owner=None, lease_expires_at=None, finished_at=now)
    return Transition(failed, (f"failed: {error} (last owner {a.lease_owner})",))


def _owned(a: Action, worker: str) -> bool:
    return a.status == RUNNING and a.lease_owner == worker


def _released(a: Action, **changes: Any) -> Action:
    return replace(a, lease_owner=None, lease_expires_at=None, **changes)


def _duration_ms(a: Action, now: datetime) -> int | None:
    return int((now - a.started_at).total_seconds() * 1000) if a.started_at else None


def renew(a: Action, worker: str, expires: datetime) -> Transition | None:
    return Transition(replace(a, lease_expires_at=expires), (), worker) if _owned(a, worker) else None


def complete(a: Action, worker: str, outputs: Outputs, now: datetime) -> Transition | None:
    """Succeed, merging ``outputs`` into what earlier attempts or re-checks recorded."""
    if not _owned(a, worker):
        return None
    done = _released(
        a,
        status=SUCCEEDED,
        outputs=a.outputs.merged(outputs),
        error=None,
        finished_at=now,
        duration_ms=_duration_ms(a, now),
    )
    return Transition(done, ("succeeded",), worker)


def wait(a: Action, worker: str, outputs: Outputs, recheck_at: datetime) -> Transition | None:
    """Park an action whose remote work runs on: keep its outputs, re-check at ``recheck_at``."""
    if not _owned(a, worker):
        return None
    parked = _released(a, status=WAITING, outputs=a.outputs.merged(outputs), not_before=recheck_at)
    return Transition(parked, (f"waiting on remote work; re-check at {iso(recheck_at)}",), worker)


def fail(a: Action, worker: str, error: str, *, retry_at: datetime | None, now: datetime) -> Transition | None:
    """A failed attempt: queued again for ``retry_at``, or failed for good when it is None."""
    if not _owned(a, worker):
        return None
    if retry_at is not None:
        retry = _released(a, status=QUEUED, error=error, not_before=retry_at)
        return Transition(retry, (f"attempt {a.attempts} failed: {error}; retry at {iso(retry_at)}",), worker)
    failed = _released(a, status=FAILED, error=error, finished_at=now, duration_ms=_duration_ms(a, now))
    return Transition(failed, (f"failed after {a.attempts} attempt(s): {error}",), worker)


def supersede(a: Action, worker: str, reason: str, now: datetime) -> Transition | None:
    """A deploy whose version stopped being desired before it switched anything: done, not failed."""
    if not _owned(a, worker):
        return None
    done = _released(a, status=SUPERSEDED, error=None, finished_at=now, duration_ms=_duration_ms(a, now))
    return Transition(done, (f"superseded: {reason}",), worker)


def defer(a: Action, until: datetime, holder: str) -> Transition | None:
    """A due deploy whose line ``holder`` is changing now: claimable again at ``until``."""
    if a.status not in (QUEUED, WAITING) or (a.not_before is not None and a.not_before >= until):
        return None
    deferred = replace(a, not_before=until)
    if a.not_before is not None:  # deferred before: it re-checks every few seconds, said once in the log
        return Transition(deferred, ())
    return Transition(deferred, (f"waiting for {holder} (same target and model) to finish; trying again shortly",))


def skip(a: Action, upstream: str, now: datetime, *, why: str = "failed") -> Transition | None:
    """A queued action that runs after ``upstream``, which failed (or was superseded), will not run."""
    if a.status != QUEUED:
        return None
    skipped = replace(a, status=SKIPPED, error=f"not run: {upstream} (which it runs after) {why}", finished_at=now)
    return Transition(skipped, (f"skipped: {upstream} {why}",))


def requeue(a: Action, *, include_succeeded: bool) -> Transition | None:
    """Make a finished action runnable again, with a fresh attempt count (replay).

    Re-running one that succeeded (force) starts its next attempt generation with empty outputs:
    what executors derive for idempotency includes the generation, so it is new work, done once."""
    allowed = (FAILED, SKIPPED, SUPERSEDED, SUCCEEDED) if include_succeeded else (FAILED, SKIPPED, SUPERSEDED)
    if a.status not in allowed:
        return None
    fresh = _released(a, status=QUEUED, attempts=0, error=None, not_before=None, finished_at=None)
    if a.status == SUCCEEDED:
        forced = replace(fresh, generation=a.generation + 1, outputs=empty_outputs(a.kind))
        return Transition(forced, (f"forced re-run: attempt generation {forced.generation} (was succeeded)",))
    return Transition(fresh, (f"requeued by replay (was {a.status})",))


def decide(a: Action, decision: Outputs, now: datetime, line: str) -> Transition | None:
    """Record a person's decision on a waiting action (an approval) and make it due now, so that its
    executor acts on it at once. Refused unless the action waits, or when a decision is recorded
    already (the first decision stands): ``decision`` must set the field ``decision``."""
    if a.status != WAITING or getattr(a.outputs, "decision", None):
        return None
    recorded = replace(a, outputs=a.outputs.merged(decision), not_before=now)
    return Transition(recorded, (line,))


def wake(a: Action, now: datetime, line: str) -> Transition | None:
    """Make a waiting action due now (a hint arrived, e.g. the tag that approves it was set)."""
    if a.status != WAITING or (a.not_before is not None and a.not_before <= now):
        return None
    return Transition(replace(a, not_before=now), (line,))
