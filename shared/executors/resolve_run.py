"""Resolve a finished run: read its metrics and logged model from its tracking server, then let
the rules decide (metric gates, register under the configured name)."""

from __future__ import annotations

from dataclasses import replace

from shared.adapters.mlflow_runs import read_run
from shared.domain.events import event_from_payload
from shared.domain.outputs import ResolveRunOutputs
from shared.errors import PermanentError
from shared.executors.base import ActionContext, Outcome


class ResolveRunExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        params = ctx.action.params
        tracking_uri, registry_uri = ctx.source_uris()
        run = read_run(tracking_uri, registry_uri, run_id=params.run_id, job_run_id=params.job_run_id)
        outputs = ResolveRunOutputs(run_id=run.run_id, metrics=run.metrics, model_uri=run.model_uri)
        if not params.event_payload:
            raise PermanentError("the run event's payload is missing from the action; replay the event")
        stored = event_from_payload(params.event_payload)
        if run.model_uri is None:
            ctx.follow_up(replace(stored, kind=None, ignored_reason=f"run {run.run_id} has no logged model"))
            ctx.progress(f"run {run.run_id} has no logged model: nothing to register")
            return Outcome.done(replace(outputs, planned=[]))
        enriched = replace(
            stored,
            run_id=run.run_id,
            metrics=run.metrics,
            model_uri=run.model_uri,
            tags={**run.tags, **stored.tags},
            experiment=stored.experiment or run.experiment_id,
        )
        planned = ctx.follow_up(enriched)
        ctx.progress(f"run {run.run_id}: metrics {run.metrics}, model {run.model_uri}")
        return Outcome.done(replace(outputs, planned=planned))
