"""The timers, once: what each does and when, for both hosts. `functions/timers.py` registers each
as a Functions timer on its NCRONTAB app setting; `modelops serve` runs the same list in a thread
(``LocalTimers``), so the local stack behaves as Azure does.

- ``registry_poller``: reconcile (shared/service/reconcile.py). In Azure on MODELOPS_POLL_SCHEDULE;
  locally every `reconcile.every`, the first pass one interval after start.
- ``cleanup_timer``: the cleanup policy, applying only when `cleanup.apply: true` (as the timer
  does). In Azure and locally on MODELOPS_CLEANUP_SCHEDULE.
- ``retention_timer``: the ledger's retention (shared/service/retention.py), applied: what is
  finished and older than `retention.keep` goes. In Azure and locally on MODELOPS_RETENTION_SCHEDULE.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.ncrontab import next_fire
from shared.service.reactor import Reactor

log = logging.getLogger("modelops.timers")
DEFAULT_SCHEDULES = {
    "MODELOPS_POLL_SCHEDULE": "0 */5 * * * *",
    "MODELOPS_CLEANUP_SCHEDULE": "0 0 3 * * *",
    "MODELOPS_RETENTION_SCHEDULE": "0 30 3 * * *",
}


def reconcile_pass(reactor: Reactor) -> Any:
    from shared.service.reconcile import reconcile_sources

    return reconcile_sources(reactor)


def cleanup_pass(reactor: Reactor) -> Any:
    from shared.service.cleanup import run_cleanup_and_record

    policy = reactor.config.cleanup
    if not policy.enabled:
        log.info("cleanup disabled in config (cleanup.enabled: false)")
        return None
    report, _ = run_cleanup_and_record(reactor, apply=policy.apply)
    return {"applied" if policy.apply else "dry run": report.counts()}


def retention_pass(reactor: Reactor) -> Any:
    from shared.service.retention import prune

    report = prune(reactor, apply=True)
    return {"keep": reactor.config.retention.keep, **report.to_dict(), "event_ids": len(report.event_ids)}


def _every_reconcile(reactor: Reactor, after: datetime) -> datetime:
    return after + timedelta(seconds=reactor.config.reconcile.seconds)


@dataclass(frozen=True)
class Timer:
    """A timer function: its name, the app setting of its Azure schedule, its work, and (locally)
    when it fires next after a moment (by default on that same schedule)."""

    name: str
    setting: str
    run: Callable[[Reactor], Any]
    local_next: Callable[[Reactor, datetime], datetime] | None = None

    def next_after(self, reactor: Reactor, after: datetime) -> datetime:
        if self.local_next is not None:
            return self.local_next(reactor, after)
        schedule = reactor.settings.setting(self.setting) or DEFAULT_SCHEDULES[self.setting]
        return next_fire(schedule, after)


TIMERS: tuple[Timer, ...] = (
    Timer("registry_poller", "MODELOPS_POLL_SCHEDULE", reconcile_pass, _every_reconcile),
    Timer("cleanup_timer", "MODELOPS_CLEANUP_SCHEDULE", cleanup_pass),
    Timer("retention_timer", "MODELOPS_RETENTION_SCHEDULE", retention_pass),
)


def run_timer(timer: Timer, reactor: Reactor) -> Any:
    """One firing; a failure is logged, never raised (the next firing tries again)."""
    try:
        result = timer.run(reactor)
    except Exception:
        log.exception("timer %s failed", timer.name)
        return None
    log.info("timer %s: %s", timer.name, result)
    return result


class LocalTimers:
    """`modelops serve`'s timers: one thread firing each timer when it is due, until stopped."""

    def __init__(self, reactor: Reactor, timers: tuple[Timer, ...] = TIMERS) -> None:
        self.reactor = reactor
        self.timers = timers
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="modelops-timers", daemon=True)

    def start(self) -> LocalTimers:
        self._thread.start()
        return self

    def close(self, timeout: float = 30) -> None:
        self.stop.set()
        self._thread.join(timeout)

    def schedule(self) -> dict[str, datetime]:
        now = self.reactor.clock()
        return {timer.name: timer.next_after(self.reactor, now) for timer in self.timers}

    def _loop(self) -> None:
        due = {timer.name: timer.next_after(self.reactor, self.reactor.clock()) for timer in self.timers}
        while not self.stop.is_set():
            now = self.reactor.clock()
            for timer in self.timers:
                if due[timer.name] <= now:
                    run_timer(timer, self.reactor)
                    due[timer.name] = timer.next_after(self.reactor, self.reactor.clock())
            wait = min(due.values()) - self.reactor.clock()
            self.stop.wait(max(0.05, min(wait.total_seconds(), 60.0)))
