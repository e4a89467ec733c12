"""Run the cleanup policy and keep its report in the audit trail."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from shared.service.reactor import Reactor

if TYPE_CHECKING:
    from shared.cleanup.report import CleanupReport

log = logging.getLogger("modelops.cleanup")


def run_cleanup_and_record(reactor: Reactor, *, apply: bool) -> tuple[CleanupReport, dict[str, Any]]:
    """Run the policy once (dry run unless ``apply``); the report is kept in the ledger."""
    from shared.cleanup.runner import run_cleanup

    report = run_cleanup(
        reactor.config,
        apply=apply,
        state_dir=reactor.settings.state_dir,
        app_group=reactor.settings.app_resource_group,
        progress=lambda message: log.info("%s", message),
    )
    body = report.to_dict()
    body["report_id"] = reactor.ledger.record_report("cleanup", body)
    return report, body
