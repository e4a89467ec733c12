"""Timer functions: one per entry of shared/service/schedule.py (reconcile, cleanup), each on the
NCRONTAB schedule of its app setting. `modelops serve` runs the same list locally."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import Container
from shared.service.schedule import TIMERS, Timer, run_timer


def blueprint(container: Container) -> func.Blueprint:
    bp = func.Blueprint()
    for timer in TIMERS:
        _register(bp, container, timer)
    return bp


def _register(bp: func.Blueprint, container: Container, timer: Timer) -> None:
    def fire(timer_request: func.TimerRequest) -> None:
        run_timer(timer, container.reactor())

    fire.__name__ = timer.name
    bp.function_name(timer.name)(
        bp.timer_trigger(
            arg_name="timer_request", schedule=f"%{timer.setting}%", run_on_startup=False, use_monitor=True
        )(fire)
    )
