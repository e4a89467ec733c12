"""The `validate` step: score the candidate and the baseline on holdout data, decide by thresholds.

A failed validation must leave its evidence in the action's outputs, but a failure records no
outputs: so the verdict is recorded first (the action waits 0 s) and the step fails on that
immediate re-check. A re-check is told from a fresh attempt by ``not_before``, which only a wait
(or a retry, after which no verdict is recorded) sets; a replay clears it, so a replay evaluates again.
The models are evaluated in a process of their own (shared/executors/validate_evaluation.py).
"""

from __future__ import annotations

from shared.adapters import mlflow_evaluate as ev
from shared.config.gates import ValidationConfig
from shared.domain.outputs import ValidateOutputs
from shared.errors import PermanentError
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.validate_evaluation import BASELINE, CANDIDATE, Scored, evaluate_in_process

STATUS_TAG = "modelops.validation.status"
METRIC_TAG = "modelops.validation.{metric}"


def candidate(ctx: ActionContext) -> ModelRef:
    """The source version (where aliases and approval tags live); a run's model has none: its copy."""
    if ctx.action.model_version.startswith("run-"):
        return ctx.model()
    tracking_uri, registry_uri = ctx.source_uris()
    return ModelRef(tracking_uri, registry_uri, ctx.action.model_name, ctx.action.model_version)


class ValidateExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        earlier = ctx.earlier(ValidateOutputs)
        if earlier.passed is False and ctx.action.not_before is not None:
            raise PermanentError(f"validation {earlier.validation} failed: {earlier.summary()}")
        cfg = ctx.target(ValidationConfig)
        model = candidate(ctx)
        data = ev.local_holdout(cfg.data, ctx.scratch_dir)
        baseline_version = None
        note = None
        if cfg.baseline:
            baseline_version = ev.alias_holder(model.tracking_uri, model.registry_uri, model.name, cfg.baseline)
            if baseline_version == model.version:
                baseline_version, note = None, f"the candidate holds {cfg.baseline} itself: thresholds only"
            elif baseline_version is None:
                note = f"no version holds {cfg.baseline} yet (first model): thresholds only"
        else:
            note = "no baseline configured: thresholds only"
        scored = [Scored(CANDIDATE, model, f"{model.name} v{model.version}")]
        if baseline_version is not None:
            ref = ModelRef(model.tracking_uri, model.registry_uri, model.name, baseline_version)
            scored.append(Scored(BASELINE, ref, f"{model.name} v{baseline_version} (baseline)"))
        evaluated = evaluate_in_process(ctx, cfg, data, scored)
        cand, base = evaluated.by_role[CANDIDATE], evaluated.by_role.get(BASELINE)
        verdicts: list[dict[str, object]] = []
        for metric, bar in cfg.thresholds.items():
            passed, why = ev.verdict(
                metric,
                ev.Bar(bar.threshold, bar.min_absolute_change, bar.min_relative_change, bar.greater_is_better),
                cand,
                base,
            )
            verdicts.append(
                {
                    "metric": metric,
                    "candidate": cand.metrics.get(metric),
                    "baseline": base.metrics.get(metric) if base else None,
                    **bar.model_dump(exclude_none=True),
                    "passed": passed,
                    "why": why,
                }
            )
        outputs = ValidateOutputs(
            validation=ctx.action.target,
            model_name=model.name,
            model_version=model.version,
            baseline_alias=cfg.baseline,
            baseline_version=baseline_version,
            candidate_metrics=cand.metrics,
            baseline_metrics=base.metrics if base else None,
            verdicts=verdicts,
            passed=all(bool(v["passed"]) for v in verdicts),
            rows=evaluated.rows,
            data=cfg.data.split("?", 1)[0],
            candidate_run_id=cand.run_id,
            baseline_run_id=base.run_id if base else None,
            note=note,
        )
        tags = {STATUS_TAG: "passed" if outputs.passed else "failed"}
        tags.update(
            {METRIC_TAG.format(metric=m): f"{cand.metrics[m]:.6g}" for m in cfg.thresholds if m in cand.metrics}
        )
        ev.tag_version(model, tags)
        ctx.progress(
            f"validation {'passed' if outputs.passed else 'failed'}: {outputs.summary()}"
            + (f" ({note})" if note else "")
        )
        if not outputs.passed:
            return Outcome.waiting(0, outputs)
        return Outcome.done(outputs)
