"""Resolve a finished run: read its metrics and logged model from its tracking server, then let
the rules decide (metric gates, register under the configured name)."""

from __future__ import annotations

from dataclasses import replace

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.adapters.mlflow_copy import client
from shared.domain.events import event_from_payload
from shared.errors import PermanentError, RetryableError
from shared.executors.base import ActionContext, Outcome

JOB_RUN_TAG = "mlflow.databricks.jobRunID"  # set by MLflow on runs created inside a Databricks job run


class ResolveRunExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        params = ctx.action.params
        tracking_uri, registry_uri = ctx.source_uris()
        mlflow_client = client(tracking_uri, registry_uri)
        run = _find_run(mlflow_client, params.run_id, params.job_run_id)
        metrics = dict(run.data.metrics)
        model_uri = logged_model_uri(mlflow_client, run)
        outputs = {"run_id": run.info.run_id, "metrics": metrics, "model_uri": model_uri}
        if not params.event_payload:
            raise PermanentError("the run event's payload is missing from the action; replay the event")
        stored = event_from_payload(params.event_payload)
        if model_uri is None:
            ctx.follow_up(replace(stored, kind=None, ignored_reason=f"run {run.info.run_id} has no logged model"))
            ctx.progress(f"run {run.info.run_id} has no logged model: nothing to register")
            return Outcome.done(**outputs, planned=[])
        enriched = replace(
            stored,
            run_id=run.info.run_id,
            metrics=metrics,
            model_uri=model_uri,
            tags={**run.data.tags, **stored.tags},
            experiment=stored.experiment or run.info.experiment_id,
        )
        planned = ctx.follow_up(enriched)
        ctx.progress(f"run {run.info.run_id}: metrics {metrics}, model {model_uri}")
        return Outcome.done(**outputs, planned=planned)


def _find_run(mlflow_client: MlflowClient, run_id: object, job_run_id: object) -> Run:
    try:
        if run_id:
            return mlflow_client.get_run(str(run_id))
        runs = mlflow_client.search_runs(
            experiment_ids=[e.experiment_id for e in mlflow_client.search_experiments()],
            filter_string=f"tags.`{JOB_RUN_TAG}` = '{job_run_id}'",
            max_results=1,
        )
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise PermanentError(f"run {run_id or job_run_id} not found: {exc.message}") from exc
        raise RetryableError(f"cannot read run {run_id or job_run_id}: {exc.message}") from exc
    if not runs:
        raise PermanentError(f"no MLflow run carries {JOB_RUN_TAG}={job_run_id}")
    return runs[0]


def logged_model_uri(mlflow_client: MlflowClient, run: Run) -> str | None:
    """The run's model: an MLflow 3 LoggedModel, else an `MLmodel` directory among its artifacts."""
    run_id = run.info.run_id
    try:
        models = mlflow_client.search_logged_models(
            experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}'", max_results=10
        )
        if models:
            return str(models[0].artifact_location)
    except (MlflowException, AttributeError):
        pass  # servers before MLflow 3 have no logged models; fall back to the run's artifacts
    for entry in mlflow_client.list_artifacts(run_id):
        if entry.is_dir and any(f.path.endswith("MLmodel") for f in mlflow_client.list_artifacts(run_id, entry.path)):
            return f"{run.info.artifact_uri.rstrip('/')}/{entry.path}"
    return None
