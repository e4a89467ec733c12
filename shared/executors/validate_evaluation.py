"""A validation's evaluations, in a process of their own (shared/executors/validate_process.py).

This process reads the registry (the alias holder, the models' files) and records the evaluations in
the tracking server, with the reactor's credentials; the validation process loads each model and runs
``mlflow.models.evaluate`` with an allow-listed environment, so neither model sees the reactor's
secrets or memory. It is stopped at ``timeout_seconds`` and whenever this attempt ends first; its
errors come back as the step's, with the redacted end of its log where the model's code failed.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.adapters import mlflow_evaluate as ev
from shared.adapters.mlflow_models import downloaded_model
from shared.config.gates import ValidationConfig
from shared.domain.actions import short_hash
from shared.errors import PermanentError
from shared.executors import validate_process
from shared.executors.base import ActionContext, ModelRef
from shared.executors.child_process import Ended, how_it_ended, log_tail, run_model_process
from shared.telemetry import redact

CANDIDATE, BASELINE = "candidate", "baseline"


@dataclass(frozen=True)
class Scored:
    """A model version to evaluate: its role, where it is, and the name of its evaluation run."""

    role: str
    model: ModelRef
    run_name: str


@dataclass(frozen=True)
class Evaluations:
    """Each role's recorded evaluation, and how many rows of the data were scored."""

    by_role: dict[str, ev.Evaluated]
    rows: int


def evaluate_in_process(ctx: ActionContext, cfg: ValidationConfig, data: Path, scored: Sequence[Scored]) -> Evaluations:
    """Evaluate each model on ``data`` in the validation process, then record each as a run."""
    log_path = ctx.state_dir / "validation" / "logs" / f"{short_hash(ctx.action.key)}.log"
    named = cfg.data.split("?", 1)[0]
    with ExitStack() as stack:
        paths = [stack.enter_context(downloaded_model(s.model, workdir=ctx.scratch_dir)) for s in scored]
        store = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="modelops-eval-", dir=ctx.scratch_dir)))
        job = {
            "data": str(data.resolve()),
            "named": named,
            "data_format": cfg.data_format,
            "max_rows": cfg.max_rows,
            "targets": cfg.targets,
            "model_type": cfg.model_type,
            "tracking_uri": f"sqlite:///{store / 'evaluations.db'}",
            "artifacts": str(store / "artifacts"),
            "models": [
                {"role": s.role, "uri": s.model.uri, "path": str(path)} for s, path in zip(scored, paths, strict=True)
            ],
        }
        ended = run_model_process(
            ctx,
            validate_process.__name__,
            job,
            named_env=cfg.env,
            timeout_seconds=cfg.timeout_seconds,
            log_path=log_path,
            what="validation",
            doing=f"validation {ctx.action.target} of {scored[0].model.uri}",
            on_progress=lambda line: ctx.progress(str(line)),
            cwd=store,
        )
        found = _evaluated(ended, scored, log_path)
        recorded = {
            s.role: ev.record_evaluation(
                s.model,
                experiment=cfg.experiment,
                run_name=s.run_name,
                metrics=found[s.role]["metrics"],
                artifacts=Path(found[s.role]["artifacts"]),
            )
            for s in scored
        }
        return Evaluations(recorded, int(found[CANDIDATE]["rows"]))


def _evaluated(ended: Ended, scored: Sequence[Scored], log_path: Path) -> dict[str, dict[str, Any]]:
    """role -> the process's report of it; or its error as the step's: what it reported, else how it ended."""
    found: dict[str, dict[str, Any]] = {}
    for report in ended.reports:
        if "evaluated" in report:
            found[str(report["evaluated"])] = report
            continue
        error, kind, uri = redact(str(report.get("error", ""))), report.get("kind"), report.get("uri")
        if kind == validate_process.DATA:
            raise PermanentError(error)
        if kind == validate_process.LOAD:
            raise PermanentError(
                f"{uri} failed to load in its validation process ({error}); check that it loads with "
                f"mlflow.pyfunc.load_model and that its requirements are installed. Its log ({log_path}):\n"
                + log_tail(log_path)
            )
        if kind == validate_process.EVALUATE:
            raise PermanentError(
                f"evaluating {uri} on the validation data failed: {error.rstrip('.')}. "
                f"The end of its log ({log_path}):\n{log_tail(log_path)}"
            )
    if ended.code == 0 and all(s.role in found for s in scored):
        return found
    raise PermanentError(
        f"the validation process of {scored[0].model.uri} {how_it_ended(ended.code)} without a result (out of "
        f"memory? the model's code ending the process?). The end of its log ({log_path}):\n{log_tail(log_path)}"
    )
