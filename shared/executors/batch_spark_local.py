"""batch_score on a `kind: spark-local` target: the shipped Spark job, as a child process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

from shared.child_env import child_environment
from shared.config.batch import SparkLocalBatch
from shared.domain.actions import short_hash
from shared.domain.outputs import BatchScoreOutputs
from shared.errors import PermanentError
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.batch_io import resolve_io
from shared.executors.child_process import log_tail, stop_group
from shared.jobs import batch_score_spark as job

JOB_SCRIPT = Path(job.__file__)
MARKER = "_MODELOPS.json"  # written into the output directory once it is complete
PROGRESS_EVERY_SECONDS = 10.0
LOG_TAIL_CHARS = 4000


class SparkLocalBatchExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target(SparkLocalBatch)
        io = resolve_io(ctx, cfg.output, cfg.input, cfg.input_format)
        model, output, input_format, marker = io.model, io.output, io.input_format, io.marker
        earlier = _finished(output, marker)
        if earlier is not None:
            ctx.log.info("spark output %s already holds this action's result", output)
            return Outcome.done(replace(earlier, reused=True))

        output.parent.mkdir(parents=True, exist_ok=True)
        temp = output.with_name(f".{output.name}.{uuid.uuid4().hex}.tmp")
        log_path = ctx.state_dir / "batch" / "logs" / f"{short_hash(ctx.action.key)}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            summary = self._run(ctx, cfg, model, input_format, temp, log_path)
            (temp / MARKER).write_text(json.dumps({**marker, "summary": summary.to_dict()}))
            _swap_in(temp, output)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
        return Outcome.done(replace(summary, output=str(output.resolve()), log=str(log_path)))

    def _run(
        self,
        ctx: ActionContext,
        cfg: SparkLocalBatch,
        model: ModelRef,
        input_format: str,
        temp: Path,
        log_path: Path,
    ) -> BatchScoreOutputs:
        # the model's code runs in the job: an allow-listed environment, none of the reactor's secrets
        env = child_environment(
            ctx.settings.environ,
            named=cfg.env,
            withheld=ctx.withheld_settings(),
            overrides={
                # the job resolves models:/ through these; never through this process's globals
                "MLFLOW_TRACKING_URI": model.tracking_uri,
                "MLFLOW_REGISTRY_URI": model.registry_uri or model.tracking_uri,
                "PYSPARK_PYTHON": sys.executable,
                "PYSPARK_DRIVER_PYTHON": sys.executable,
            },
        )
        with log_path.open("w") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                _command(cfg, model, input_format, temp),
                stdin=subprocess.PIPE,  # held open: the job ends when this process does (--end-with-stdin)
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
            try:
                ctx.progress(f"spark job started (pid {process.pid}, log {log_path})")
                code = _wait(ctx, cfg, process, model, log_path)
            finally:
                if process.poll() is None:  # timed out, or this attempt was stopped: the job goes too
                    stop_group(process)
                if process.stdin is not None:
                    process.stdin.close()
        if code != 0:
            raise PermanentError(
                f"spark job for {model.uri} exited with {code}; see {log_path}:\n" + log_tail(log_path, LOG_TAIL_CHARS)
            )
        text = log_path.read_text(errors="replace")
        results = [line for line in text.splitlines() if line.startswith(job.RESULT_PREFIX)]
        if not results:
            raise PermanentError(f"spark job for {model.uri} printed no result; see {log_path}")
        summary: dict[str, Any] = json.loads(results[-1].removeprefix(job.RESULT_PREFIX))
        summary.pop("output", None)  # the temp dir; the caller records the final one
        ctx.progress(f"spark job scored {summary['rows']:,} rows in {summary['seconds']:.0f}s")
        return BatchScoreOutputs.from_dict(summary)


def _command(cfg: SparkLocalBatch, model: ModelRef, input_format: str, temp: Path) -> list[str]:
    command = [sys.executable, str(JOB_SCRIPT), "--end-with-stdin", "--master", cfg.master, "--model-uri", model.uri]
    command += ["--model-name", model.name, "--model-version", model.version]
    command += ["--input", str(Path(cfg.input).resolve()), "--input-format", input_format]
    command += ["--output", str(temp.resolve()), "--output-format", "parquet", "--result-type", cfg.result_type]
    command += ["--spark-conf", f"spark.driver.memory={cfg.driver_memory}"]
    if cfg.feature_columns:
        command += ["--feature-columns", ",".join(cfg.feature_columns)]
    for key, value in cfg.spark_conf.items():
        command += ["--spark-conf", f"{key}={value}"]
    return command


def _wait(
    ctx: ActionContext, cfg: SparkLocalBatch, process: subprocess.Popen[bytes], model: ModelRef, log_path: Path
) -> int:
    """The job's exit code; it is stopped past ``timeout_seconds``, with progress every few seconds."""
    started = time.monotonic()
    while True:
        try:
            return process.wait(timeout=PROGRESS_EVERY_SECONDS)
        except subprocess.TimeoutExpired:
            elapsed = time.monotonic() - started
            if elapsed > cfg.timeout_seconds:
                stop_group(process)
                raise PermanentError(
                    f"spark job for {model.uri} ran over timeout_seconds="
                    f"{cfg.timeout_seconds:g} and was stopped; see {log_path}"
                ) from None
            ctx.progress(f"spark job running for {elapsed:.0f}s")


def _swap_in(temp: Path, output: Path) -> None:
    """Replace the output directory with the finished one; readers never see a partial one."""
    if output.exists():
        old = output.with_name(f".{output.name}.{uuid.uuid4().hex}.old")
        output.rename(old)
        temp.rename(output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        temp.rename(output)


def _finished(output: Path, marker: dict[str, str]) -> BatchScoreOutputs | None:
    try:
        written = json.loads((output / MARKER).read_text())
    except (OSError, ValueError):
        return None
    if any(written.get(key) != value for key, value in marker.items()):
        return None
    return replace(BatchScoreOutputs.from_dict(written.get("summary", {})), output=str(output.resolve()))
