"""The worker: claim an action under a lease, run its executor, record the outcome."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from shared.config.schema import ReactorConfig
from shared.domain.actions import RESOLVE_RUN, ROLLBACK, TERMINAL, Action
from shared.domain.clock import Clock, now_utc
from shared.domain.events import ModelEvent
from shared.domain.outputs import Outputs
from shared.errors import ActionError, PermanentError, RetryableError, Superseded
from shared.executors.base import ActionContext, Outcome
from shared.executors.registry import ExecutorRegistry
from shared.ledger.base import IGNORED, Ledger
from shared.rules import plan_actions
from shared.service import scratch
from shared.service.desired import DesiredState
from shared.service.dispatch import Dispatcher
from shared.settings import Settings

log = logging.getLogger("modelops.worker")


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    def __init__(
        self,
        ledger: Ledger,
        config: ReactorConfig,
        state_dir: os.PathLike[str] | str,
        dispatcher: Dispatcher,
        executors: ExecutorRegistry | None = None,
        *,
        worker_id: str | None = None,
        progress: Callable[[Action, str], None] | None = None,
        on_finished: Callable[[Action], None] | None = None,
        clock: Clock = now_utc,
        settings: Settings | None = None,
        desired: DesiredState | None = None,
    ) -> None:
        from pathlib import Path

        self.ledger = ledger
        self.config = config
        self.state_dir = Path(state_dir)
        self.dispatcher = dispatcher
        self.executors = executors or ExecutorRegistry()
        self.worker_id = worker_id or worker_name()
        self._progress = progress
        self._on_finished = on_finished
        self.clock = clock
        self.settings = settings or Settings(state_dir=self.state_dir)
        self.desired = desired
        self._in_flight: set[str] = set()  # actions this worker runs now (one per concurrent invocation)
        self._in_flight_lock = threading.Lock()

    def is_running(self, action_id: str) -> bool:
        """Whether a call of this worker is running the action now (not: a lease it left behind)."""
        with self._in_flight_lock:
            return action_id in self._in_flight

    # -- one action -------------------------------------------------------------------------
    def run_once(self, action_id: str | None = None) -> Action | None:
        """Claim and run one runnable action (the given one, if runnable). Returns it, or None."""
        tuning = self.config.worker
        action = self.ledger.claim(self.worker_id, tuning.lease_seconds, action_id=action_id)
        if action is None:
            return None
        logger = logging.LoggerAdapter(log, {"action_id": action.id, "event_id": action.event_id})
        logger.info("running %s (%s), attempt %d", action.key, action.id, action.attempts)
        stop_heartbeat = threading.Event()
        heartbeat = threading.Thread(target=self._heartbeat, args=(action, stop_heartbeat), daemon=True)
        heartbeat.start()
        with self._in_flight_lock:
            self._in_flight.add(action.id)
        try:
            self._clear_scratch(action)
            self._ensure_desired(action)  # a deploy overtaken while it queued switches nothing
            outcome = self._execute(action, logger)
        except Superseded as superseded:
            self._record_superseded(action, str(superseded), logger)
        except Exception as exc:  # every failure is recorded; the worker keeps going
            self._record_failure(action, exc, logger)
        else:
            self._record_success(action, outcome, logger)
        finally:
            with self._in_flight_lock:
                self._in_flight.discard(action.id)
            stop_heartbeat.set()
            heartbeat.join()
            scratch.clear(self.state_dir, action.id)
        return self.ledger.get_action(action.id)

    def _clear_scratch(self, action: Action) -> None:
        """What dead attempts of this action left; we hold the lease, so no live attempt uses it."""
        left = scratch.clear(self.state_dir, action.id)
        if left:
            self.ledger.note(action.id, self.worker_id, f"removed {left / 1e6:.1f} MB an earlier attempt left")

    def _execute(self, action: Action, logger: logging.LoggerAdapter[logging.Logger]) -> Outcome:
        if action.kind == RESOLVE_RUN:
            source = self.config.sources.get(action.target)
            if source is None:
                raise PermanentError(
                    f"source {action.target!r} has no location: add `sources: {{{action.target}:"
                    " {tracking_uri: ...}}` (or `registry: <name>`) to the config"
                )
            executor = self.executors.get(RESOLVE_RUN, source)
        else:
            targets = self.config.targets(action.kind)
            if action.target not in targets:
                raise PermanentError(f"target {action.target!r} is no longer in the config's {action.kind} targets")
            executor = self.executors.get(action.kind, targets[action.target])
        upstream = self._upstream(action)

        def progress(message: str) -> None:
            self.ledger.note(action.id, self.worker_id, message)
            if self._progress:
                self._progress(action, message)

        ctx = ActionContext(
            action=action,
            config=self.config,
            settings=self.settings,
            state_dir=self.state_dir,
            upstream=upstream,
            log=logger,
            progress=progress,
            follow_up=lambda enriched: self._follow_up(action, enriched),
            desired_check=lambda: self._ensure_desired(action),
        )
        return executor.execute(ctx)

    def _upstream(self, action: Action) -> tuple[Outputs, ...]:
        """Outputs of the chain this action runs after, nearest first (score <- deploy <- register)."""
        chain: list[Outputs] = []
        after = action.after
        while after and len(chain) < 32:
            before = self.ledger.get_action(after)
            if before is None:
                break
            chain.append(before.outputs)
            after = before.after
        return tuple(chain)

    def _follow_up(self, action: Action, enriched: ModelEvent) -> list[str]:
        """Plan the rules for an event enriched by its resolution; record it ignored if none match."""
        plan, reason = plan_actions(self.config, enriched)
        if not plan:
            self.ledger.set_event_status(action.event_id, IGNORED, reason)
            self.ledger.note(action.id, self.worker_id, f"no action planned: {reason}")
            return []
        runnable = self.ledger.add_actions(action.event_id, plan, max_attempts=self.config.worker.max_attempts)
        self.dispatcher.dispatch(runnable)
        planned = [a.id for a in self.ledger.list_actions(event_id=action.event_id, limit=1000) if a.id != action.id]
        self.ledger.note(action.id, self.worker_id, f"planned {len(planned)} action(s) from the resolved run")
        return planned

    def _ensure_desired(self, action: Action) -> None:
        reason = self.desired.superseded_by(action) if self.desired is not None else None
        if reason:
            raise Superseded(reason)

    def _record_superseded(self, action: Action, reason: str, logger: logging.LoggerAdapter[logging.Logger]) -> None:
        self.ledger.supersede(action.id, self.worker_id, reason)
        logger.info("%s superseded: %s", action.id, reason)
        self._finished(action.id)

    def _pin_rollback(self, action: Action) -> None:
        """A rollback holds its line at the version it restored until the alias moves again."""
        version = action.params.line_version
        if action.kind != ROLLBACK or self.desired is None or not version:
            return
        try:
            pin = self.desired.pin(action, version)
        except Exception:  # the rollback stands; reconcile only lacks the pin (it says so in status)
            log.exception("pinning after rollback %s failed", action.id)
            return
        if pin is not None:
            self.ledger.note(action.id, self.worker_id, f"pinned at v{version} until the alias moves again")

    def _record_success(self, action: Action, outcome: Outcome, logger: logging.LoggerAdapter[logging.Logger]) -> None:
        if outcome.recheck_after_seconds is not None:
            recheck = self.clock() + timedelta(seconds=outcome.recheck_after_seconds)
            self.ledger.wait(action.id, self.worker_id, outcome.outputs, recheck)
            logger.info("%s waiting on remote work; re-check in %.0fs", action.id, outcome.recheck_after_seconds)
            self.dispatcher.dispatch([action.id], delay_seconds=outcome.recheck_after_seconds)
            if outcome.announce:
                self._finished(action.id)
            return
        ready = self.ledger.complete(action.id, self.worker_id, outcome.outputs)
        logger.info("%s succeeded", action.id)
        self._pin_rollback(action)
        self.dispatcher.dispatch(ready)
        self._finished(action.id)

    def _record_failure(self, action: Action, exc: Exception, logger: logging.LoggerAdapter[logging.Logger]) -> None:
        retryable = exc.retryable if isinstance(exc, ActionError) else True
        error = error_text(exc)
        tuning = self.config.worker
        asked = exc.retry_after if isinstance(exc, RetryableError) else None
        if retryable and asked is not None and asked > tuning.max_retry_after_seconds:
            retryable = False
            error += (
                f"; the server asked to retry after {asked:.0f}s, longer than worker.max_retry_after_seconds"
                f" ({tuning.max_retry_after_seconds:g}s): replay the action once the service is back, or raise it"
            )
        if retryable and action.attempts < action.max_attempts:
            backoff = min(tuning.backoff_max_seconds, tuning.backoff_base_seconds * 2 ** (action.attempts - 1))
            delay = max(backoff, asked or 0.0)
            self.ledger.fail(action.id, self.worker_id, error, retry_at=self.clock() + timedelta(seconds=delay))
            logger.warning("%s attempt %d failed, retry in %.1fs: %s", action.id, action.attempts, delay, error)
            self.dispatcher.dispatch([action.id], delay_seconds=delay)
        else:
            self.ledger.fail(action.id, self.worker_id, error, retry_at=None)
            logger.error("%s failed: %s", action.id, error, exc_info=not isinstance(exc, ActionError))
            self._finished(action.id)

    def _finished(self, action_id: str) -> None:
        """Tell the outcome sink (e.g. an Event Grid topic) of a finished action, or of one that waits
        on someone (``Outcome.announce``); its failures never fail the action."""
        if self._on_finished is None:
            return
        final = self.ledger.get_action(action_id)
        if final is None:
            return
        try:
            self._on_finished(final)
        except Exception:
            log.exception("publishing the outcome of %s failed", action_id)

    def _heartbeat(self, action: Action, stop: threading.Event) -> None:
        lease = self.config.worker.lease_seconds
        while not stop.wait(lease / 3):
            if not self.ledger.renew(action.id, self.worker_id, lease):
                log.warning("lost the lease on %s", action.id)
                return

    def sweep_scratch(self) -> list[str]:
        """At start: remove the scratch dirs of attempts that ended without removing theirs."""
        try:
            return scratch.sweep(self.state_dir, self.ledger, self.clock())
        except Exception:  # never keeps a worker from starting
            log.exception("sweeping %s failed", self.state_dir / "tmp")
            return []

    # -- loops ------------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event, wakeup: threading.Event | None = None) -> None:
        """Run actions until ``stop`` is set; idle waits end early on ``wakeup``."""
        idle = self.config.worker.poll_interval_seconds
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:  # the ledger may be briefly unavailable; keep the loop alive
                log.exception("worker loop error")
                ran = None
            if ran is None:
                if wakeup is not None:
                    wakeup.wait(idle)
                    wakeup.clear()
                else:
                    stop.wait(idle)

    def run_until_done(self, action_ids: list[str], *, timeout: float = 3600) -> list[Action]:
        """Run until every given action is terminal (used by the CLI and the demo)."""
        deadline = time.monotonic() + timeout
        while True:
            actions = [a for a in (self.ledger.get_action(i) for i in action_ids) if a is not None]
            if all(a.status in TERMINAL for a in actions):
                return actions
            if time.monotonic() > deadline:
                return actions
            if self.run_once() is None:
                time.sleep(min(self.config.worker.poll_interval_seconds, 0.5))


def error_text(exc: Exception) -> str:
    """An action's error as a person reads it; its first words say the kind a script can match
    (`transient error:` is retried, `permanent error:` is not, `unexpected error` is a bug to report)."""
    if isinstance(exc, ActionError):
        return f"{'transient' if exc.retryable else 'permanent'} error: {exc}"
    # not one of ours: the exception's type is the one clue a bug report needs
    return f"unexpected error ({type(exc).__name__}): {exc}"
