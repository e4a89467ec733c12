"""The ledger's intake: an event recorded with the actions its rules planned, once per dedupe key.

An intake is one unit of work ``submit``-ted to the store: SQLite commits it together with the
intakes waiting beside it (group commit), in one BEGIN IMMEDIATE transaction, so an intake is
atomic; on Table Storage an intake is one batch of one partition when its action keys are free,
and otherwise the steps are ordered so that a redelivery finishes an intake a crash interrupted
(the event's actions count as linked only once all are created). ``LedgerCore`` adds claims and
outcomes.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache, partial

from shared.domain.actions import SUCCEEDED, Action, PlannedAction
from shared.domain.clock import Clock, iso
from shared.domain.events import ModelEvent
from shared.ledger import transitions
from shared.ledger.base import ACCEPTED, DUPLICATE, IGNORED, IntakeResult
from shared.ledger.payloads import stored_payload
from shared.ledger.records import DeliveryRecord, EventRecord, new_event
from shared.ledger.store import LedgerStore, NewEvent
from shared.ledger.transitions import Transition
from shared.telemetry import redact


class LedgerIntake:
    """Recording events and their planned actions, over a ``LedgerStore``."""

    _store: LedgerStore
    _clock: Clock

    def _write_log(self, step: Transition) -> None:
        for line in step.lines:
            self._store.append_log(step.action.id, self._clock(), step.worker, redact(line))

    def _upstream_done(self, action: Action) -> bool:
        if action.after is None:
            return True
        upstream = self._store.load(action.after)
        return upstream is not None and upstream.action.status == SUCCEEDED

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
