"""Resolve a finished run: read its metrics and logged model from its tracking server, then let
the rules decide (metric gates, register under the configured name)."""

from __future__ import annotations

from dataclasses import replace

from shared.adapters.mlflow_runs import read_run
from shared.adapters.registry_uris import registry_uris
from shared.domain.events import event_from_payload
from shared.errors import PermanentError
from shared.executors.base import ActionContext, Outcome


class ResolveRunExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        params = ctx.action.params
        tracking_uri, registry_uri = _source_uris(ctx)
        run = read_run(tracking_uri, registry_uri, run_id=params.get("run_id"), job_run_id=params.get("job_run_id"))
        outputs = {"run_id": run.run_id, "metrics": run.metrics, "model_uri": run.model_uri}
        if not params.get("event_payload"):
            raise PermanentError("the run event's payload is missing from the action; replay the event")
        stored = event_from_payload(params["event_payload"])
        if run.model_uri is None:
            ctx.follow_up(replace(stored, kind=None, ignored_reason=f"run {run.run_id} has no logged model"))
            ctx.progress(f"run {run.run_id} has no logged model: nothing to register")
            return Outcome.done(**outputs, planned=[])
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
        return Outcome.done(**outputs, planned=planned)


def _source_uris(ctx: ActionContext) -> tuple[str, str | None]:
    params = ctx.action.params
    if params.get("source_tracking_uri"):
        return str(params["source_tracking_uri"]), params.get("source_registry_uri")
    if params.get("source_registry"):
        return registry_uris(ctx.config.registries[str(params["source_registry"])])
    raise PermanentError(
        f"source {params.get('source')!r} has no location: add `sources: {{{params.get('source')}: "
        "{tracking_uri: ...}}` (or `registry: <name>`) so the run can be read"
    )
