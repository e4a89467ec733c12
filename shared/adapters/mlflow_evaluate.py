"""Validation through MLflow: holdout data read in bounded memory, `mlflow.models.evaluate` of a
model, `mlflow.validate_evaluation_results` per threshold, and the registry reads and tags around it.

The model's code runs in a process of its own (shared/executors/validate_process.py): there,
``evaluate_local`` loads the downloaded model and evaluates it into a throwaway tracking store (the
process's own, so MLflow's global tracking URI is never swapped in the reactor and the model's
process needs no tracking credential). The reactor then records each evaluation as a run of the
candidate's tracking server (``record_evaluation``: the metrics and the evaluator's artifacts) through
an explicit client, and decides each threshold from the metrics (``verdict``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shared.adapters.mlflow_http import bound_retry_after, classify
from shared.adapters.mlflow_models import ModelVersionAt
from shared.errors import PermanentError, RetryableError

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.pyfunc import PyFuncModel

DOWNLOAD_CHUNK = 1 << 20
EVALUATION_EXPERIMENT = "evaluations"  # in the model process's throwaway store


@dataclass(frozen=True)
class Evaluated:
    metrics: dict[str, float]
    run_id: str


@dataclass(frozen=True)
class Bar:
    """One threshold as configured (mirrors mlflow.models.MetricThreshold)."""

    threshold: float | None
    min_absolute_change: float | None
    min_relative_change: float | None
    greater_is_better: bool


def local_holdout(data: str, scratch: Path) -> Path:
    """The holdout file on this machine: an https:// file streamed to ``scratch``; a missing one is a
    PermanentError naming it."""
    path = _download(data, scratch) if data.startswith("https://") else Path(data)
    if not path.is_file():
        raise PermanentError(f"validation data {data}: no such file; set `data:` to a Parquet or CSV file")
    return path


def read_holdout(path: Path, data_format: str, max_rows: int, *, named: str) -> pd.DataFrame:
    """The first ``max_rows`` rows of a Parquet/CSV file, read batch by batch; an unreadable or empty
    file is a PermanentError naming the file as configured (``named``) and the problem."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    fmt = data_format if data_format != "auto" else ("csv" if path.suffix.lower() in (".csv", ".txt") else "parquet")
    batches: list[pa.RecordBatch] = []
    rows = 0
    try:
        reader = pq.ParquetFile(path).iter_batches(batch_size=65536) if fmt == "parquet" else pacsv.open_csv(path)
        for batch in reader:
            batches.append(batch.slice(0, max_rows - rows))
            rows += batches[-1].num_rows
            if rows >= max_rows:
                break
    except (pa.ArrowInvalid, OSError) as exc:
        raise PermanentError(f"validation data {named}: not a readable {fmt} file ({exc})") from exc
    if not rows:
        raise PermanentError(f"validation data {named}: the file has no rows")
    return pa.Table.from_batches(batches).to_pandas()


def _download(url: str, scratch: Path) -> Path:
    """Stream an https:// file to the scratch dir, a chunk at a time."""
    import requests

    scratch.mkdir(parents=True, exist_ok=True)
    name = url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "holdout"
    target = scratch / name
    try:
        with requests.get(url, stream=True, timeout=(10, 60)) as response:
            if response.status_code in (401, 403, 404, 410):
                raise PermanentError(f"validation data {url.split('?', 1)[0]}: HTTP {response.status_code}")
            response.raise_for_status()
            with target.open("wb") as out:
                for chunk in response.iter_content(DOWNLOAD_CHUNK):
                    out.write(chunk)
    except requests.RequestException as exc:
        raise RetryableError(f"validation data {url.split('?', 1)[0]}: {exc}") from exc
    return target


def alias_holder(tracking_uri: str, registry_uri: str | None, name: str, alias: str) -> str | None:
    """The version of ``name`` holding ``alias``, or None when no version does."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    bound_retry_after()
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri)
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            return None
        raise classify(exc, f"reading alias {alias} of {name}") from exc


def version_tags(model: ModelVersionAt) -> dict[str, str]:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    bound_retry_after()
    client = MlflowClient(tracking_uri=model.tracking_uri, registry_uri=model.registry_uri)
    try:
        return dict(client.get_model_version(model.name, model.version).tags or {})
    except MlflowException as exc:
        raise classify(exc, f"reading the tags of {model.uri}") from exc


def tag_version(model: ModelVersionAt, tags: dict[str, str]) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    bound_retry_after()
    client = MlflowClient(tracking_uri=model.tracking_uri, registry_uri=model.registry_uri)
    try:
        for key, value in tags.items():
            client.set_model_version_tag(model.name, model.version, key, value)
    except MlflowException as exc:
        raise classify(exc, f"tagging {model.uri}") from exc


def evaluate_local(
    loaded: PyFuncModel, data: pd.DataFrame, *, targets: str, model_type: str, tracking_uri: str, artifacts: Path
) -> tuple[dict[str, float], Path]:
    """Score a loaded model on ``data`` with MLflow's default evaluator, logged into the throwaway
    store at ``tracking_uri``; its numeric metrics and the directory of the evaluator's artifacts
    (plots, confusion matrix). Only ever called in a model's own process."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri)  # this process's own store: nothing else here reads it
    found = mlflow.get_experiment_by_name(EVALUATION_EXPERIMENT)
    experiment_id = (
        found.experiment_id
        if found
        else mlflow.create_experiment(EVALUATION_EXPERIMENT, artifact_location=artifacts.resolve().as_uri())
    )
    # its logged model (MLflow 3) lives in the registry's tracking server, not in this store: evaluated
    # under that id, MLflow looks it up here and fails. PyFuncModel has no setter for it (mlflow 3.x,
    # mlflow/pyfunc/__init__.py: load_model passes model_meta.model_id to the constructor).
    loaded._model_id = None
    with mlflow.start_run(experiment_id=experiment_id) as run:
        result = mlflow.models.evaluate(
            loaded,
            data,
            targets=targets,
            model_type=model_type,
            evaluators=["default"],
            evaluator_config={"default": {"log_model_explainability": False}},
        )
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    return metrics, artifacts / run.info.run_id / "artifacts"


def record_evaluation(
    model: ModelVersionAt, *, experiment: str, run_name: str, metrics: dict[str, float], artifacts: Path
) -> Evaluated:
    """One evaluation as a finished run of the model's tracking server: its metrics, the evaluator's
    artifacts and the version it scored (tag ``modelops.model``)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    from mlflow.exceptions import MlflowException

    bound_retry_after()
    client = MlflowClient(tracking_uri=model.tracking_uri)
    try:
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        run = client.create_run(
            experiment_id, run_name=run_name, tags={"modelops.model": f"{model.name}/{model.version}"}
        )
        run_id = run.info.run_id
        now = int(run.info.start_time or 0)
        client.log_batch(run_id, metrics=[Metric(key, value, now, 0) for key, value in sorted(metrics.items())])
        if artifacts.is_dir():
            client.log_artifacts(run_id, str(artifacts))
        client.set_terminated(run_id)
    except MlflowException as exc:
        raise classify(exc, f"recording the evaluation of {model.uri}") from exc
    except (ConnectionError, TimeoutError, OSError) as exc:
        raise RetryableError(f"recording the evaluation of {model.uri}: {exc}") from exc
    return Evaluated(metrics, run_id)


def verdict(metric: str, bar: Bar, candidate: Evaluated, baseline: Evaluated | None) -> tuple[bool, str]:
    """Whether the candidate passes one bar, decided by mlflow.validate_evaluation_results, and why."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import MetricThreshold
    from mlflow.models.evaluation import EvaluationResult

    changes = (bar.min_absolute_change, bar.min_relative_change) if baseline is not None else (None, None)
    if bar.threshold is None and changes == (None, None):
        return True, "no baseline: only a change over the baseline was asked for, not applied"
    threshold = MetricThreshold(
        threshold=bar.threshold,
        min_absolute_change=changes[0],
        min_relative_change=changes[1],
        greater_is_better=bar.greater_is_better,
    )
    try:
        mlflow.validate_evaluation_results(
            {metric: threshold},
            EvaluationResult(candidate.metrics, {}),
            EvaluationResult(baseline.metrics, {}) if baseline is not None else None,
        )
    except MlflowException as exc:
        return False, " ".join(str(exc.message).split())
    return True, "passed"
