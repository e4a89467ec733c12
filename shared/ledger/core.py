"""The ledger, written once over a storage port: intake, claims, outcomes and their audit log.

Every change of an action is read -> decide (a pure transition, shared/ledger/transitions.py,
where the semantics of crash loops and redeliveries are documented) -> compare-and-set; a lost
race re-reads and decides again. Each public operation runs in one ``unit_of_work`` of the store
(an intake is one unit ``submit``-ted: SQLite commits it together with the intakes waiting beside
it, group commit): on SQLite one BEGIN IMMEDIATE transaction, so intake is atomic; on Table
Storage an intake is one batch of one partition when its action keys are free, and otherwise the
steps are ordered so that a redelivery finishes an intake a crash interrupted (the event's actions
count as linked only once all are created).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import cache, partial
from typing import Any

from shared.domain.actions import FAILED, RUNNING, SUCCEEDED, SUPERSEDED, Action, PlannedAction
from shared.domain.clock import Clock, iso, now_utc
from shared.domain.events import ModelEvent
from shared.domain.outputs import Outputs
from shared.ledger import transitions
from shared.ledger.base import ACCEPTED, DUPLICATE, IGNORED, REFUSED, IntakeResult
from shared.ledger.lines import hold_line
from shared.ledger.payloads import stored_payload
from shared.ledger.pruning import LedgerPruning
from shared.ledger.reads import LedgerReads
from shared.ledger.records import DeliveryRecord, EventRecord, new_event
from shared.ledger.store import RACE_RETRIES, LedgerContention, LedgerStore, NewEvent, Stored
from shared.ledger.transitions import Transition
from shared.telemetry import redact, redact_tree

Decide = Callable[[Action], Transition | None]


class LedgerCore(LedgerReads, LedgerPruning):
    """The ``Ledger`` port over any ``LedgerStore``: the writes here, the reads in ``LedgerReads``."""

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

    def _write_log(self, step: Transition) -> None:
        for line in step.lines:
            self._store.append_log(step.action.id, self._clock(), step.worker, redact(line))

    def _upstream_done(self, action: Action) -> bool:
        if action.after is None:
            return True
        upstream = self._store.load(action.after)
        return upstream is not None and upstream.action.status == SUCCEEDED

    # -- intake ---------------------------------------------------------------------------
    @property
    def group_commit(self) -> bool:
        """True when the store group-commits intakes (SQLite): ``record_event_async`` holds no thread."""
        return self._store.group_commit

    def record_event(
        self, event: ModelEvent, plan: list[PlannedAction], *, reason: str | None, max_attempts: int
    ) -> IntakeResult:
        return self._store.submit(self._intake_unit(event, plan, reason, max_attempts)).result()

    async def record_event_async(
        self, event: ModelEvent, plan: list[PlannedAction], *, reason: str | None, max_attempts: int
    ) -> IntakeResult:
        """``record_event`` for an event loop: on SQLite the intake is committed together with the
        intakes waiting beside it, and the coroutine waits holding no thread."""
        return await self._store.submit_async(self._intake_unit(event, plan, reason, max_attempts))

    def _intake_unit(
        self, event: ModelEvent, plan: list[PlannedAction], reason: str | None, max_attempts: int
    ) -> Callable[[], IntakeResult]:
        """One intake as a unit of work. The duplicate path: a redelivery of an event recorded with
        its actions linked is answered from the event's key, its linked actions and which of them
        never started (dispatched again: transitions.py, Redelivery); it encodes and inserts
        nothing (``add_event`` looks the key up first), it counts the delivery and keeps it in the
        audit trail (the deliveries table), in the same transaction."""
        now = self._clock()
        status, reason = (ACCEPTED, None) if plan else (IGNORED, redact(reason) if reason else None)
        record = new_event(event, event_id=self._store.new_id("evt", now), status=status, reason=reason, now=now)
        delivery = DeliveryRecord(event.delivery_id, event.source, iso(now), status, event_id=record.id, reason=reason)
        return partial(self._intake, event, record, delivery, plan, max_attempts)

    def _intake(
        self,
        event: ModelEvent,
        record: EventRecord,
        delivery: DeliveryRecord,
        plan: list[PlannedAction],
        max_attempts: int,
    ) -> IntakeResult:
        together = cache(partial(self._plan_new, record.id, plan, max_attempts))
        new = NewEvent(record, partial(stored_payload, event), delivery, together)
        event_id, created = self._store.add_event(new)
        first = event_id == record.id
        if first and created:  # the store created the actions with the event: all were new
            steps = together()
            new_ids = [s.action.id for s in steps]
            ready = [s.action.id for s in steps if s.action.after is None]  # the others wait on these
            return IntakeResult(event_id, record.status, reason=record.reason, action_ids=new_ids, dispatch=ready)
        ids = None if first else self._store.linked(event_id)
        runnable: list[str] = []
        if ids is None:
            # the first recording, or one that crashed (or still runs) before linking its actions:
            # finishing it is idempotent, action keys resolve to the same ids
            ids, runnable = self._insert_plan(event_id, plan, max_attempts)
            self._store.link(event_id, ids, accept=False)
        if first:
            return IntakeResult(event_id, record.status, reason=record.reason, action_ids=ids, dispatch=runnable)
        again = DeliveryRecord(event.delivery_id, event.source, delivery.received_at, DUPLICATE, event_id=event_id)
        current = self._store.count_delivery(event_id, again) or record
        redelivery = [i for i in ids if i not in runnable and self._never_started(i)]
        return IntakeResult(
            event_id,
            current.status,
            duplicate=True,
            reason=current.reason,
            action_ids=ids,
            dispatch=[i for i in ids if i in runnable or i in redelivery],
            redelivery=redelivery,
        )

    def _plan_new(self, event_id: str, plan: list[PlannedAction], max_attempts: int) -> list[Transition]:
        """The plan as new actions of the event (each ``after`` the new id of its upstream), for a
        store that creates them with the event when every key is free (``add_event``)."""
        steps: list[Transition] = []
        for step in plan:
            now = self._clock()
            after = steps[step.after_index].action.id if step.after_index is not None else None
            steps.append(
                transitions.plan(
                    step,
                    action_id=self._store.new_id("act", now),
                    event_id=event_id,
                    after=after,
                    max_attempts=max_attempts,
                    now=now,
                )
            )
        return steps

    def _insert_plan(self, event_id: str, plan: list[PlannedAction], max_attempts: int) -> tuple[list[str], list[str]]:
        ids: list[str] = []
        runnable: list[str] = []
        for step in plan:
            now = self._clock()
            after = ids[step.after_index] if step.after_index is not None else None
            new_id = self._store.new_id("act", now)
            planned = transitions.plan(
                step, action_id=new_id, event_id=event_id, after=after, max_attempts=max_attempts, now=now
            )
            held = self._store.add_action(planned.action)
            if held == new_id:
                self._write_log(planned)
                if self._upstream_done(planned.action):
                    runnable.append(held)
            ids.append(held)
        return ids, runnable

    def _never_started(self, action_id: str) -> bool:
        stored = self._store.load(action_id)
        if stored is None:
            return False
        return transitions.never_started(stored.action, upstream_done=self._upstream_done(stored.action))

    def add_actions(self, event_id: str, plan: list[PlannedAction], *, max_attempts: int) -> list[str]:
        with self._store.unit_of_work():
            ids, runnable = self._insert_plan(event_id, plan, max_attempts)
            self._store.link(event_id, ids, accept=bool(plan))
            return runnable

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
