"""The reactor: accept events, plan actions, persist, dispatch. Built by `shared.bootstrap`."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shared.config.schema import ReactorConfig
from shared.domain.actions import ACTION_KINDS, Action, PlannedAction
from shared.domain.clock import Clock, now_utc
from shared.domain.events import MODEL_VERSION_TAG_SET, MOVES, OPERATOR, ModelEvent, event_from_payload
from shared.errors import BadRequest
from shared.executors.registry import ExecutorRegistry
from shared.ledger.base import IntakeResult, Ledger
from shared.rules import action_params, plan_actions
from shared.service import moves
from shared.service.desired import DesiredState
from shared.service.dispatch import Dispatcher, LocalDispatcher
from shared.service.worker import Worker
from shared.settings import Settings

# the hint an operator gets for an action that already ran: both ways of asking again
RUN_AGAIN = 'to run it again: `--force` (CLI) or "force": true (API)'

log = logging.getLogger("modelops.intake")


@dataclass
class Reactor:
    settings: Settings
    config: ReactorConfig
    ledger: Ledger
    dispatcher: Dispatcher = field(default_factory=LocalDispatcher)
    executors: ExecutorRegistry = field(default_factory=ExecutorRegistry)
    on_finished: Callable[[Action], None] | None = None  # outcome sink (Event Grid topic), if configured
    clock: Clock = now_utc
    desired: DesiredState | None = None  # what the registry declares (None: built over config and ledger)

    def __post_init__(self) -> None:
        if self.desired is None:
            self.desired = DesiredState(self.config, self.ledger, clock=self.clock)

    def worker(self, *, worker_id: str | None = None, progress: Callable[[Action, str], None] | None = None) -> Worker:
        """A worker over this reactor's ledger and config; each has its own lease identity."""
        return Worker(
            self.ledger,
            self.config,
            self.settings.state_dir,
            self.dispatcher,
            self.executors,
            worker_id=worker_id,
            progress=progress,
            on_finished=self.on_finished,
            clock=self.clock,
            settings=self.settings,
            desired=self.desired,
        )

    def start_workers(
        self, count: int | None, stop: threading.Event, wakeup: threading.Event | None = None
    ) -> list[threading.Thread]:
        """Worker threads (``worker.threads`` by default), each with its own lease identity, running
        until ``stop``; ``wakeup`` (the local dispatcher's) ends their idle waits early."""
        threads = []
        self.worker(worker_id="scratch-sweep").sweep_scratch()
        for _ in range(count or self.config.worker.threads):
            thread = threading.Thread(target=self.worker().run_forever, args=(stop, wakeup), daemon=True)
            thread.start()
            threads.append(thread)
        return threads

    def accept(self, event: ModelEvent) -> IntakeResult:
        """Persist the event with its planned actions in one idempotent step, then dispatch."""
        event = moves.known_move(self.ledger, event)
        plan, reason = plan_actions(self.config, event)
        result = self.ledger.record_event(event, plan, reason=reason, max_attempts=self.config.worker.max_attempts)
        moves.note_move(self.ledger, event, result)
        self._accepted(event, result)
        return result

    @property
    def intake_awaitable(self) -> bool:
        """A group-commit ledger (SQLite) with in-process dispatch: nothing of ``accept_async``
        blocks the event loop. Table Storage and the Storage queue block on HTTP: not those."""
        return self.ledger.group_commit and isinstance(self.dispatcher, LocalDispatcher)

    async def accept_async(self, event: ModelEvent) -> IntakeResult:
        """``accept`` for an event loop (when ``intake_awaitable``): the request waits on its own
        intake's future, holding no thread while the writer commits it with the others. An alias move
        also reads and writes the alias's last move (shared/service/moves.py), in a thread."""
        if event.kind in MOVES:
            return await asyncio.to_thread(self.accept, event)
        plan, reason = plan_actions(self.config, event)
        result = await self.ledger.record_event_async(
            event, plan, reason=reason, max_attempts=self.config.worker.max_attempts
        )
        self._accepted(event, result)
        return result

    def _accepted(self, event: ModelEvent, result: IntakeResult) -> None:
        log.info(
            "event %s %s from %s: %s%s",
            result.event_id,
            event.kind or event.source_type,
            event.source,
            result.status,
            " (duplicate)" if result.duplicate else "",
            extra={"event_id": result.event_id},
        )
        if event.kind == MODEL_VERSION_TAG_SET and self.config.approvals and event.model_name and event.model_version:
            from shared.service.approvals import apply_approval_tags

            apply_approval_tags(self, event.source, event.model_name, event.model_version, event.tags)
        now = [i for i in result.dispatch if i not in result.redelivery]
        if now:
            self.dispatcher.dispatch(now)
        if result.redelivery:
            # in case the first writer died before dispatching; later, so that its message claims
            # the action first and this copy finds it running or done instead of racing it
            self.dispatcher.dispatch(result.redelivery, delay_seconds=self.config.worker.redelivery_delay_seconds)

    def request_action(
        self,
        *,
        kind: str,
        target: str,
        model_name: str,
        model_version: str,
        source: str | None = None,
        force: bool = False,
    ) -> IntakeResult:
        """An operator asks for one action; it is recorded as an event of the source that arrived `via`
        operator, with that action."""
        if kind not in ACTION_KINDS:
            raise BadRequest(f"kind must be one of {', '.join(ACTION_KINDS)}, not {kind!r}")
        targets = self.config.targets(kind)
        if target not in targets:
            raise BadRequest(f"no {kind} target named {target!r}; configured: {', '.join(sorted(targets)) or 'none'}")
        source = source or next(iter(self.config.sources), "mlflow")
        if source not in self.config.sources:
            raise BadRequest(f"no source named {source!r}; configured: {', '.join(self.config.sources) or 'none'}")
        params = action_params(
            self.config,
            ModelEvent(
                source=source,
                kind=kind,
                source_type="operator",
                model_name=model_name,
                model_version=str(model_version),
            ),
            target_model_name=None,
        )
        planned = PlannedAction(kind, target, model_name, str(model_version), params=params, rule="operator")
        return self._request(planned, force=force)

    def request_rollback(
        self, target: str, *, model: str | None = None, to: str | None = None, force: bool = False
    ) -> IntakeResult:
        """An operator asks to roll a deployment target back (to the version before, or ``to``); it is
        recorded as an event arriving `via` operator with one `rollback` action, keyed by the versions it moves
        between, so a duplicate request while that state holds executes it once."""
        from shared.service.rollback import plan_rollback

        planned, current = plan_rollback(self.config, self.ledger, target, model=model, to=to)
        if planned is None:
            reason = f"{target} already serves {current.label()} ({current.action.kind} {current.action.id})"
            return IntakeResult(current.action.event_id, "accepted", True, reason, [current.action.id])
        return self._request(planned, force=force)

    def _request(self, planned: PlannedAction, *, force: bool) -> IntakeResult:
        """Record an operator's action as an event of its source that arrived `via` operator (or find
        the action with its key)."""
        event = ModelEvent(
            source=planned.params.source,
            via=OPERATOR,
            kind=None,
            source_type=f"operator.{planned.kind}",
            model_name=planned.model_name,
            model_version=planned.model_version,
            delivery_id=uuid.uuid4().hex,
        )
        existing = self.ledger.find_action(planned.key)
        if existing is not None:
            requeued = self.ledger.requeue([existing.id], include_succeeded=force)
            if requeued:
                self.dispatcher.dispatch(requeued)
            return IntakeResult(
                existing.event_id,
                "accepted",
                duplicate=not requeued,
                action_ids=[existing.id],
                reason=None if requeued else f"action already {existing.status}; {RUN_AGAIN}",
            )
        result = self.ledger.record_event(event, [planned], reason=None, max_attempts=self.config.worker.max_attempts)
        if result.dispatch:
            self.dispatcher.dispatch(result.dispatch)
        return result

    def replay(self, event_id: str, *, force: bool = False) -> dict[str, Any] | None:
        """Re-plan a recorded event against the current rules and re-run what failed.

        Actions that already succeeded are left alone unless ``force``; actions the current rules
        add are planned. Returns None if there is no such event.
        """
        payload = self.ledger.event_payload(event_id)
        if payload is None:
            return None
        event = event_from_payload(payload)
        plan, reason = plan_actions(self.config, event) if event.via != OPERATOR else ([], "")
        new = self.ledger.add_actions(event_id, plan, max_attempts=self.config.worker.max_attempts)
        linked = [a.id for a in self.ledger.list_actions(event_id=event_id, limit=1000)]
        requeued = self.ledger.requeue(linked, include_succeeded=force)
        self.dispatcher.dispatch(new + requeued)
        return {
            "event_id": event_id,
            "planned": new,
            "requeued": requeued,
            "action_ids": [a.id for a in self.ledger.list_actions(event_id=event_id, limit=1000)],
            "reason": reason or None,
        }
