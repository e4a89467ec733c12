"""The start of a process that runs a model's code (a batch scoring, a validation's evaluation).

Reports go, one JSON object a line, to the stdout the process started with (the parent reads them:
shared/executors/child_process.py); whatever the model's code prints goes to stderr, the parent's
log of it. The process ends when its parent does (EOF on stdin), and SIGTERM unwinds it (its
``finally`` blocks run), so that it can remove what it half wrote.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import IO, Any

Report = Callable[..., None]


def start() -> Report:
    """Take over stdout for reports, end with the parent, unwind on SIGTERM; the report function."""
    reports = _own_stdout()
    _end_with_parent()
    signal.signal(signal.SIGTERM, _exit_on_term)

    def report(**fields: Any) -> None:
        reports.write(json.dumps(fields) + "\n")
        reports.flush()

    return report


def _own_stdout() -> IO[str]:
    """The reports' channel: stdout as started; fd 1 then points at stderr, for the model's prints."""
    reports = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return reports


def _end_with_parent() -> None:
    """The parent holds our stdin open until it is done: EOF means it died, and so do we."""

    def watch() -> None:
        # the raw fd, not sys.stdin: a daemon thread blocked on a buffered reader aborts the shutdown
        while os.read(0, 4096):
            pass
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
