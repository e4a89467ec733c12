"""Run the cleanup policy and keep its report in the audit trail."""

from __future__ import annotations

import logging
from typing import Any

from shared.service.reactor import Reactor

log = logging.getLogger("modelops.cleanup")


def run_cleanup_and_record(reactor: Reactor, *, apply: bool) -> dict[str, Any]:
    from shared.cleanup.runner import run_cleanup

    report = run_cleanup(reactor.config, apply=apply, state_dir=reactor.settings.state_dir,
                         progress=lambda message: log.info("%s", message))
    body = report.to_dict()
    body["report_id"] = reactor.ledger.record_report("cleanup", body)
    return body
