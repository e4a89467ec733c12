"""batch_score on a `kind: local` target: the streaming engine, in a process of its own.

This process downloads the model's files (with the reactor's credentials); the scoring process
(shared/batch/score_process.py) loads them and runs the model's code with an allow-listed
environment, so the model never sees the reactor's secrets or memory. It streams the input file(s)
to the output file itself (bounded memory on both sides) and reports progress and its result
as JSON lines; it is stopped at ``timeout_seconds`` and whenever this attempt ends first.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any

import pyarrow.parquet as pq

import shared
from shared.adapters.mlflow_models import downloaded_model
from shared.batch import score_process
from shared.batch.local_engine import META_PREFIX, ProgressCallback
from shared.batch.progress import rows_message
from shared.child_env import child_environment
from shared.config.batch import LocalBatch
from shared.domain.actions import short_hash
from shared.domain.outputs import BatchScoreOutputs
from shared.errors import PermanentError, RetryableError
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.batch_io import BatchIO, resolve_io
from shared.executors.child_process import log_tail, stop_group
from shared.telemetry import redact

PROGRESS_EVERY_SECONDS = 1.0
APP_ROOT = Path(shared.__file__).resolve().parents[1]  # the scoring process imports the engine from here


@dataclass(frozen=True)
class Scored:
    rows: int
    seconds: float


class LocalBatchExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target(LocalBatch)
        io = resolve_io(ctx, cfg.output, cfg.input, cfg.input_format)
        model, output = io.model, io.output
        rows = _finished_rows(output, io.marker)
        if rows is not None:
            # an earlier attempt wrote this exact output, then died before the ledger heard of it
            ctx.log.info("batch output %s already holds this action's %d rows", output, rows)
            return Outcome.done(replace(_outputs(model, output, rows, None), reused=True))
        with downloaded_model(model, workdir=ctx.scratch_dir) as model_path:
            result = _score_in_child(ctx, cfg, io, model_path)
        return Outcome.done(_outputs(model, output, result.rows, result.seconds))


def _score_in_child(ctx: ActionContext, cfg: LocalBatch, io: BatchIO, model_path: Path) -> Scored:
    job = {
        "model_path": str(model_path),
        "input": str(Path(cfg.input).resolve()),
        "output": str(io.output.resolve()),
        "model_version": io.model.version,
        "batch_rows": cfg.batch_rows,
        "input_format": io.input_format,
        "metadata": io.marker,
    }
    log_path = ctx.state_dir / "batch" / "logs" / f"{short_hash(ctx.action.key)}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [sys.executable, "-m", score_process.__name__, json.dumps(job)],
            stdin=subprocess.PIPE,  # held open: the child ends when this process does
            stdout=subprocess.PIPE,
            stderr=log,
            env=_environment(ctx, cfg),
            start_new_session=True,
        )
        deadline = time.monotonic() + cfg.timeout_seconds
        try:
            ctx.progress(f"scoring process started (pid {process.pid}, log {log_path})")
            reports = _follow(ctx, process, deadline)
            code = process.wait(timeout=max(0.0, deadline - time.monotonic()))  # its reports ended: so does it
        except subprocess.TimeoutExpired:
            raise PermanentError(
                f"batch scoring of {io.model.uri} ran over timeout_seconds={cfg.timeout_seconds:g} "
                f"and was stopped; see {log_path}"
            ) from None
        finally:
            if process.poll() is None:  # timed out, or this attempt was stopped: the scoring goes too
                stop_group(process)
            if process.stdin is not None:
                process.stdin.close()
    return _result(io, cfg, reports, code, log_path)


def _environment(ctx: ActionContext, cfg: LocalBatch) -> dict[str, str]:
    """The allow-list (shared/child_env.py) and the target's ``env:``; the engine importable."""
    environ = ctx.settings.environ
    path = [str(APP_ROOT), *filter(None, environ.get("PYTHONPATH", "").split(os.pathsep))]
    return child_environment(
        environ, named=cfg.env, withheld=ctx.withheld_settings(), overrides={"PYTHONPATH": os.pathsep.join(path)}
    )


def _follow(ctx: ActionContext, process: subprocess.Popen[bytes], deadline: float) -> list[dict[str, Any]]:
    """The child's reports until it closes its stdout, progress passed on; TimeoutExpired past ``deadline``."""
    lines: queue.Queue[bytes | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), name="batch-reports", daemon=True).start()
    reports: list[dict[str, Any]] = []
    report = _reporter(ctx)
    while True:
        try:
            line = lines.get(timeout=max(0.0, min(PROGRESS_EVERY_SECONDS, deadline - time.monotonic())))
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
        if "progress" in message:
            report(*message["progress"])
        else:
            reports.append(message)


def _pump(stream: IO[bytes], lines: queue.Queue[bytes | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _result(io: BatchIO, cfg: LocalBatch, reports: list[dict[str, Any]], code: int, log_path: Path) -> Scored:
    """The child's result, or its error as the action's: what it reported, else how it ended."""
    uri = io.model.uri
    for message in reports:
        if "result" in message and code == 0:
            return Scored(int(message["result"]["rows"]), float(message["result"]["seconds"]))
        error, kind = redact(str(message.get("error", ""))), message.get("kind")  # the model's own words
        if kind == score_process.INPUT:
            raise PermanentError(f"batch scoring {uri} on {cfg.input}: {error}")
        if kind == score_process.WRITE:
            raise RetryableError(f"batch scoring {uri}: cannot write {io.output}: {error}")
        if kind == score_process.LOAD:
            raise PermanentError(
                f"{uri} failed to load in its scoring process ({error}); check that it loads with "
                f"mlflow.pyfunc.load_model and that its requirements are installed. Its log ({log_path}):\n"
                + log_tail(log_path)
            )
    ended = f"was killed by signal {-code}" if code < 0 else f"exited with {code}"
    raise PermanentError(
        f"the scoring process of {uri} {ended} without a result (out of memory? the model's code ending the "
        f"process?). The end of its log ({log_path}):\n{log_tail(log_path)}"
    )


def _outputs(model: ModelRef, output: Path, rows: int, seconds: float | None) -> BatchScoreOutputs:
    return BatchScoreOutputs(
        rows=rows,
        output=str(output.resolve()),
        model_uri=model.uri,
        model_name=model.name,
        model_version=model.version,
        seconds=round(seconds, 3) if seconds is not None else None,
        rows_per_second=round(rows / seconds) if seconds else None,
    )


def _finished_rows(output: Path, marker: dict[str, str]) -> int | None:
    if not output.is_file():
        return None
    try:
        meta = pq.read_metadata(output)
    except Exception:  # an unreadable file is simply not a finished one
        return None
    written = {k.decode(): v.decode() for k, v in (meta.metadata or {}).items()}
    if all(written.get(META_PREFIX + key) == value for key, value in marker.items()):
        return int(meta.num_rows)
    return None


def _reporter(ctx: ActionContext) -> ProgressCallback:
    started = time.monotonic()
    last = 0.0

    def report(done: int, total: int | None) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= PROGRESS_EVERY_SECONDS or done == total:
            last = now
            ctx.progress(rows_message(done, total, now - started))

    return report
