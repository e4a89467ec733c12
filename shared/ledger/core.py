"""The ledger, written once over a storage port: claims, outcomes and their audit log (the intake
is shared/ledger/intake.py, the reads shared/ledger/reads.py).

Every change of an action is read -> decide (a pure transition, shared/ledger/transitions.py,
where the semantics of crash loops and redeliveries are documented) -> compare-and-set; a lost
race re-reads and decides again. Each public operation runs in one ``unit_of_work`` of the store:
on SQLite one BEGIN IMMEDIATE transaction, on Table Storage conditional writes on ETags.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from shared.domain.actions import FAILED, RUNNING, SUPERSEDED, Action
from shared.domain.clock import Clock, iso, now_utc
from shared.domain.outputs import Outputs
from shared.ledger import transitions
from shared.ledger.base import REFUSED
from shared.ledger.intake import LedgerIntake
from shared.ledger.lines import hold_line
from shared.ledger.pruning import LedgerPruning
from shared.ledger.reads import LedgerReads
from shared.ledger.records import DeliveryRecord
from shared.ledger.store import RACE_RETRIES, LedgerContention, LedgerStore, Stored
from shared.ledger.transitions import Transition
from shared.telemetry import redact, redact_tree

Decide = Callable[[Action], Transition | None]


class LedgerCore(LedgerIntake, LedgerReads, LedgerPruning):
    """The ``Ledger`` port over any ``LedgerStore``: claims and outcomes here, the intake in
    ``LedgerIntake``, the reads in ``LedgerReads``."""

    def __init__(self, store: LedgerStore, *, clock: Clock = now_utc) -> None:
        self._store = store
        self._clock = clock

    # -- plumbing -------------------------------------------------------------------------
    def _apply(self, stored: Stored | None, decide: Decide) -> Transition | None:
        """Read-decide-write: ``decide`` sees the action as stored; a lost race decides again."""
        for _ in range(RACE_RETRIES):
            if stored is None:
                return None
            step = decide(stored.action)
            if step is None:
                return None
            if self._store.swap(stored, step.action):
                self._write_log(step)
                return step
            stored = self._store.load(stored.action.id)
        raise LedgerContention(f"action {stored.action.id if stored else '?'} kept changing; try again")

    def requeue(self, action_ids: list[str], *, include_succeeded: bool) -> list[str]:
        decide = partial(transitions.requeue, include_succeeded=include_succeeded)
        with self._store.unit_of_work():
            return [i for i in action_ids if self._apply(self._store.load(i), decide) is not None]

    def set_event_status(self, event_id: str, status: str, reason: str | None) -> None:
        with self._store.unit_of_work():
            self._store.set_event_status(event_id, status, redact(reason) if reason else reason)

    def record_refusal(self, source: str, delivery_id: str | None, reason: str) -> None:
        if delivery_id is None:
            return  # nothing could ever find it
        refused = DeliveryRecord(delivery_id, source, iso(self._clock()), REFUSED, reason=redact(reason))
        with self._store.unit_of_work():
            self._store.add_delivery(refused)

    # -- worker ---------------------------------------------------------------------------
    def claim(self, worker_id: str, lease_seconds: float, *, action_id: str | None = None) -> Action | None:
        now = self._clock()
        with self._store.unit_of_work():
            if action_id is not None:
                candidates = [s for s in [self._store.load(action_id)] if s is not None]
            else:
                by_order = sorted(self._store.due(now), key=lambda s: transitions.claim_order(s.action, now))
                # the sweep: crash loops first (a stable sort keeps the claim order within each group)
                candidates = sorted(by_order, key=lambda s: not transitions.crash_looped(s.action, now))
            for stored in candidates:
                if not hold_line(self._store, stored, now, self._apply):
                    continue
                decide = partial(
                    transitions.claim,
                    now=now,
                    worker=worker_id,
                    lease_seconds=lease_seconds,
                    upstream_done=self._upstream_done(stored.action),
                )
                step = self._apply(stored, decide)
                if step is not None and step.action.status == FAILED:
                    self._skip_dependents(step.action.id)
                elif step is not None and step.action.status == RUNNING:
                    return step.action
        return None

    def renew(self, action_id: str, worker_id: str, lease_seconds: float) -> bool:
        expires = self._clock() + timedelta(seconds=lease_seconds)
        with self._store.unit_of_work():
            stored = self._store.load(action_id)
            return self._apply(stored, partial(transitions.renew, worker=worker_id, expires=expires)) is not None

    def note(self, action_id: str, worker_id: str, message: str) -> None:
        with self._store.unit_of_work():
            self._store.append_log(action_id, self._clock(), worker_id, redact(message))

    def complete(self, action_id: str, worker_id: str, outputs: Outputs) -> list[str]:
        decide = partial(transitions.complete, worker=worker_id, outputs=outputs, now=self._clock())
        with self._store.unit_of_work():
            if self._apply(self._store.load(action_id), decide) is None:
                return []
            return [s.action.id for s in self._store.dependents(action_id)]

    def wait(self, action_id: str, worker_id: str, outputs: Outputs, recheck_at: datetime) -> bool:
        decide = partial(transitions.wait, worker=worker_id, outputs=outputs, recheck_at=recheck_at)
        with self._store.unit_of_work():
            return self._apply(self._store.load(action_id), decide) is not None

    def fail(self, action_id: str, worker_id: str, error: str, *, retry_at: datetime | None) -> bool:
        decide = partial(transitions.fail, worker=worker_id, error=error, retry_at=retry_at, now=self._clock())
        with self._store.unit_of_work():
            step = self._apply(self._store.load(action_id), decide)
            if step is not None and step.action.status == FAILED:
                self._skip_dependents(action_id)
            return step is not None

    def decide(self, action_id: str, decision: Outputs, line: str) -> Action | None:
        """Record a decision on a waiting action and make it due now (transitions.decide); the
        action after, or None when refused (not waiting, or decided already)."""
        decide = partial(transitions.decide, decision=decision, now=self._clock(), line=line)
        with self._store.unit_of_work():
            step = self._apply(self._store.load(action_id), decide)
            return step.action if step is not None else None

    def wake(self, action_id: str, line: str) -> bool:
        """Make a waiting action due now (transitions.wake); False when it does not wait."""
        decide = partial(transitions.wake, now=self._clock(), line=line)
        with self._store.unit_of_work():
            return self._apply(self._store.load(action_id), decide) is not None

    def supersede(self, action_id: str, worker_id: str, reason: str) -> bool:
        decide = partial(transitions.supersede, worker=worker_id, reason=reason, now=self._clock())
        with self._store.unit_of_work():
            step = self._apply(self._store.load(action_id), decide)
            if step is not None and step.action.status == SUPERSEDED:
                self._skip_dependents(action_id, why="was superseded")
            return step is not None

    def _skip_dependents(self, action_id: str, *, why: str = "failed") -> None:
        for child in self._store.dependents(action_id):
            step = partial(transitions.skip, upstream=action_id, now=self._clock(), why=why)
            if self._apply(child, step) is not None:
                self._skip_dependents(child.action.id, why=why)

    def next_due(self) -> datetime | None:
        now = self._clock()
        return min((transitions.due_at(s.action, now) for s in self._store.active()), default=None)

    # -- the rest -------------------------------------------------------------------------
    def set_watermark(self, name: str, value: str) -> None:
        with self._store.unit_of_work():
            self._store.set_watermark(name, value, self._clock())

    def swap_watermark(self, name: str, expected: str | None, value: str) -> bool:
        with self._store.unit_of_work():
            return self._store.swap_watermark(name, expected, value, self._clock())

    def record_report(self, kind: str, report: dict[str, Any]) -> str:
        with self._store.unit_of_work():
            return self._store.record_report(kind, redact_tree(report), self._clock())

    def close(self) -> None:
        self._store.close()
