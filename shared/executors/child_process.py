"""What the executors that run a model's code in a process of its own share: starting it with the
allow-listed environment, following its JSON-line reports up to a deadline, stopping it with
everything it started (one session, so one group), and the redacted tail of its log.

The child side of the same protocol is shared/model_process.py.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import shared
from shared.child_env import child_environment
from shared.errors import PermanentError
from shared.telemetry import redact

if TYPE_CHECKING:
    from shared.executors.base import ActionContext

APP_ROOT = Path(shared.__file__).resolve().parents[1]  # a model's process imports this app from here
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class Ended:
    """How a model's process ended: its reports other than progress, in order, and its exit code."""

    reports: list[dict[str, Any]]
    code: int


def model_environment(
    environ: Mapping[str, str], *, named: Iterable[str] = (), withheld: Iterable[str] = ()
) -> dict[str, str]:
    """The allow-list (shared/child_env.py) and the settings a target names; this app importable."""
    path = [str(APP_ROOT), *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
    return child_environment(environ, named=named, withheld=withheld, overrides={"PYTHONPATH": os.pathsep.join(path)})


def run_reporting(
    module: str,
    job: Mapping[str, Any],
    *,
    env: Mapping[str, str],
    log_path: Path,
    timeout_seconds: float,
    on_start: Callable[[int], None],
    on_progress: Callable[[Any], None],
    cwd: Path | None = None,
) -> Ended:
    """``python -m module '<job as JSON>'`` with its stderr in ``log_path``, each ``progress`` report
    passed on as it comes; subprocess.TimeoutExpired past ``timeout_seconds``. The process is stopped
    whenever this returns or raises first (a timeout, this attempt stopped), and ends with this one."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", module, json.dumps(job)],
            stdin=subprocess.PIPE,  # held open: the child ends when this process does
            stdout=subprocess.PIPE,
            stderr=log,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_seconds
        try:
            on_start(process.pid)
            reports = _follow(process, deadline, on_progress)
            code = process.wait(timeout=max(0.0, deadline - time.monotonic()))  # its reports ended: so does it
        finally:
            if process.poll() is None:
                stop_group(process)
            if process.stdin is not None:
                process.stdin.close()
    return Ended(reports, code)


def run_model_process(
    ctx: ActionContext,
    module: str,
    job: Mapping[str, Any],
    *,
    named_env: Iterable[str],
    timeout_seconds: float,
    log_path: Path,
    what: str,
    doing: str,
    on_progress: Callable[[Any], None],
    cwd: Path | None = None,
) -> Ended:
    """A model's code run for an action (batch scoring, a validation) in a process of its own: the
        allow-listed environment plus the settings the config names, the start noted in the action's
        progress (``what``: "scoring"), a run past ``timeout_seconds`` a permanent error naming ``doing``
    and the log."""
    try:
        return run_reporting(
            module,
            job,
            env=model_environment(ctx.settings.environ, named=named_env, withheld=ctx.withheld_settings()),
            log_path=log_path,
            timeout_seconds=timeout_seconds,
            on_start=lambda pid: ctx.progress(f"{what} process started (pid {pid}, log {log_path})"),
            on_progress=on_progress,
            cwd=cwd,
        )
    except subprocess.TimeoutExpired:
        raise PermanentError(
            f"{doing} ran over timeout_seconds={timeout_seconds:g} and was stopped; see {log_path}"
        ) from None


def _follow(
    process: subprocess.Popen[bytes], deadline: float, on_progress: Callable[[Any], None]
) -> list[dict[str, Any]]:
    """The child's reports until it closes its stdout; TimeoutExpired past ``deadline``."""
    lines: queue.Queue[bytes | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), name="child-reports", daemon=True).start()
    reports: list[dict[str, Any]] = []
    while True:
        try:
            line = lines.get(timeout=max(0.0, min(POLL_SECONDS, deadline - time.monotonic())))
        except queue.Empty:
            if time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(process.args, 0) from None
            continue
        if line is None:
            return reports
        try:
            message = json.loads(line)
        except ValueError:
            continue  # not a report (nothing else writes there; ignored rather than trusted)
        if not isinstance(message, dict):
            continue
        if "progress" in message:
            on_progress(message["progress"])
        else:
            reports.append(message)


def _pump(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def how_it_ended(code: int) -> str:
    """`was killed by signal 9` / `exited with 1`, for an error that has no report to give."""
    return f"was killed by signal {-code}" if code < 0 else f"exited with {code}"


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
