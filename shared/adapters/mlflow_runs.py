"""A finished MLflow run, read from its own tracking server: metrics, tags and the model it logged."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.adapters.mlflow_copy import client
from shared.errors import PermanentError, RetryableError

JOB_RUN_TAG = "mlflow.databricks.jobRunID"  # set by MLflow on runs created inside a Databricks job run


@dataclass(frozen=True)
class FinishedRun:
    run_id: str
    experiment_id: str
    metrics: dict[str, float]
    tags: dict[str, str]
    model_uri: str | None  # None: the run logged no model


def read_run(
    tracking_uri: str, registry_uri: str | None, *, run_id: object = None, job_run_id: object = None
) -> FinishedRun:
    """The run by its id, else the run that the Databricks job run ``job_run_id`` created."""
    mlflow_client = client(tracking_uri, registry_uri)
    try:
        run = _find_run(mlflow_client, run_id, job_run_id)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            raise PermanentError(f"run {run_id or job_run_id} not found: {exc.message}") from exc
        raise RetryableError(f"cannot read run {run_id or job_run_id}: {exc.message}") from exc
    return FinishedRun(
        run_id=run.info.run_id,
        experiment_id=run.info.experiment_id,
        metrics=dict(run.data.metrics),
        tags=dict(run.data.tags),
        model_uri=_logged_model_uri(mlflow_client, run),
    )


def _find_run(mlflow_client: MlflowClient, run_id: object, job_run_id: object) -> Run:
    if run_id:
        return mlflow_client.get_run(str(run_id))
    runs = mlflow_client.search_runs(
        experiment_ids=[e.experiment_id for e in mlflow_client.search_experiments()],
        filter_string=f"tags.`{JOB_RUN_TAG}` = '{job_run_id}'",
        max_results=1,
    )
    if not runs:
        raise PermanentError(f"no MLflow run carries {JOB_RUN_TAG}={job_run_id}")
    return runs[0]


def _logged_model_uri(mlflow_client: MlflowClient, run: Run) -> str | None:
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
