"""The reactor and worker shared by the native (non-HTTP) functions of one host process."""

from __future__ import annotations

import threading

from shared import telemetry
from shared.service.reactor import Reactor, build_reactor
from shared.service.worker import Worker

_lock = threading.Lock()
_reactor: Reactor | None = None
_worker: Worker | None = None


def reactor() -> Reactor:
    global _reactor
    with _lock:
        if _reactor is None:
            telemetry.setup_logging()  # the host owns the handlers: add correlation and redaction
            _reactor = build_reactor()
        return _reactor


def worker() -> Worker:
    global _worker
    app_reactor = reactor()
    with _lock:
        if _worker is None:
            _worker = app_reactor.worker()
        return _worker
