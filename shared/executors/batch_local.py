"""batch_score on a `kind: local` target: the streaming engine, in this process."""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq

from shared.adapters.mlflow_models import loaded_pyfunc, signature_inputs
from shared.batch.local_engine import (
    META_PREFIX,
    InputError,
    ProgressCallback,
    score,
)
from shared.batch.progress import rows_message
from shared.config.batch import LocalBatch
from shared.domain.outputs import BatchScoreOutputs
from shared.errors import PermanentError, RetryableError
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.batch_io import resolve_io

PROGRESS_EVERY_SECONDS = 1.0


class LocalBatchExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target(LocalBatch)
        io = resolve_io(ctx, cfg.output, cfg.input, cfg.input_format)
        model, output, input_format, marker = io.model, io.output, io.input_format, io.marker
        rows = _finished_rows(output, marker)
        if rows is not None:
            # an earlier attempt wrote this exact output, then died before the ledger heard of it
            ctx.log.info("batch output %s already holds this action's %d rows", output, rows)
            return Outcome.done(replace(_outputs(model, output, rows, None), reused=True))
        with loaded_pyfunc(model, workdir=ctx.scratch_dir) as pyfunc:
            try:
                result = score(
                    pyfunc,
                    Path(cfg.input),
                    output,
                    model_version=model.version,
                    batch_rows=cfg.batch_rows,
                    input_format=input_format,
                    features=signature_inputs(pyfunc),
                    metadata=marker,
                    progress=_reporter(ctx),
                )
            except InputError as exc:
                raise PermanentError(f"batch scoring {model.uri} on {cfg.input}: {exc}") from exc
            except OSError as exc:
                raise RetryableError(f"batch scoring {model.uri}: cannot write {output}: {exc}") from exc
        return Outcome.done(_outputs(model, output, result.rows, result.seconds))


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
