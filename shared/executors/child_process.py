"""What the executors that run a model's code in a process of its own share: stopping that process
with everything it started (one session, so one group), and the redacted tail of its log."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from shared.telemetry import redact


def stop_group(process: subprocess.Popen[bytes], grace_seconds: float = 30) -> None:
    """SIGTERM to the process group (the child cleans up), SIGKILL after ``grace_seconds``."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    except ProcessLookupError:
        pass


def log_tail(path: Path, chars: int = 4000) -> str:
    """The end of a child's log as an error may carry it: redacted as a log line is."""
    try:
        with path.open("rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - chars))
            text = log.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return redact(text.strip()) or "(the log is empty)"
