"""batch_score on a `kind: local` target: the streaming engine, in a process of its own.

This process downloads the model's files (with the reactor's credentials); the scoring process
(shared/batch/score_process.py) loads them and runs the model's code with an allow-listed
environment, so the model never sees the reactor's secrets or memory. It streams the input file(s)
to the output file itself (bounded memory on both sides) and reports progress and its result
as JSON lines; it is stopped at ``timeout_seconds`` and whenever this attempt ends first.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from shared.adapters.mlflow_models import downloaded_model
from shared.batch import score_process
from shared.batch.local_engine import META_PREFIX, ProgressCallback
from shared.batch.progress import rows_message
from shared.config.batch import LocalBatch
from shared.domain.actions import short_hash
from shared.domain.outputs import BatchScoreOutputs
from shared.errors import PermanentError, RetryableError
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.batch_io import BatchIO, resolve_io
from shared.executors.child_process import how_it_ended, log_tail, run_model_process
from shared.telemetry import redact

PROGRESS_EVERY_SECONDS = 1.0


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
    report = _reporter(ctx)
    ended = run_model_process(
        ctx,
        score_process.__name__,
        job,
        named_env=cfg.env,
        timeout_seconds=cfg.timeout_seconds,
        log_path=log_path,
        what="scoring",
        doing=f"batch scoring of {io.model.uri}",
        on_progress=lambda done_total: report(*done_total),
    )
    return _result(io, cfg, ended.reports, ended.code, log_path)


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
    raise PermanentError(
        f"the scoring process of {uri} {how_it_ended(code)} without a result (out of memory? the model's code "
        f"ending the process?). The end of its log ({log_path}):\n{log_tail(log_path)}"
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
