"""Timer functions: the cleanup policy and the registry poller."""

from __future__ import annotations

import logging

import azure.functions as func

from shared.bootstrap import Container

log = logging.getLogger("modelops.functions.timers")


def blueprint(container: Container) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("cleanup_timer")
    @bp.timer_trigger(arg_name="timer", schedule="%MODELOPS_CLEANUP_SCHEDULE%", run_on_startup=False, use_monitor=True)
    def cleanup_timer(timer: func.TimerRequest) -> None:
        from shared.service.cleanup import run_cleanup_and_record

        policy = container.config.cleanup
        if not policy.enabled:
            log.info("cleanup disabled in config (cleanup.enabled: false)")
            return
        report, _ = run_cleanup_and_record(container.reactor(), apply=policy.apply)
        log.info("cleanup %s: %s", "applied" if policy.apply else "dry run", report.counts())

    @bp.function_name("registry_poller")
    @bp.timer_trigger(arg_name="timer", schedule="%MODELOPS_POLL_SCHEDULE%", run_on_startup=False, use_monitor=True)
    def registry_poller(timer: func.TimerRequest) -> None:
        from shared.service.poller import poll_sources

        summary = poll_sources(container.reactor())
        log.info("registry poll: %s", summary)

    return bp
