"""Validation through MLflow: holdout data read in bounded memory, `mlflow.models.evaluate` on a model
version, `mlflow.validate_evaluation_results` per threshold, and the registry reads and tags around it.

`mlflow.models.evaluate` always logs into an MLflow run of the *global* tracking URI; it is pointed at
the candidate's tracking server (the evaluation runs are evidence there) under a process-wide lock,
so that two validations never swap it under each other. The model itself is downloaded through an
explicit client (shared/adapters/mlflow_models.py) and evaluated as a loaded pyfunc.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shared.adapters.mlflow_http import bound_retry_after, classify
from shared.adapters.mlflow_models import ModelVersionAt, loaded_pyfunc
from shared.errors import PermanentError, RetryableError

if TYPE_CHECKING:
    import pandas as pd

_GLOBAL_URI = threading.Lock()
DOWNLOAD_CHUNK = 1 << 20


@dataclass(frozen=True)
class Evaluated:
    metrics: dict[str, float]
    run_id: str
    result: Any  # mlflow.models.EvaluationResult, for validate_evaluation_results


@dataclass(frozen=True)
class Bar:
    """One threshold as configured (mirrors mlflow.models.MetricThreshold)."""

    threshold: float | None
    min_absolute_change: float | None
    min_relative_change: float | None
    greater_is_better: bool


def read_holdout(data: str, data_format: str, max_rows: int, scratch: Path) -> pd.DataFrame:
    """The first ``max_rows`` rows of a local or https:// Parquet/CSV file, read batch by batch; a
    missing or unreadable file is a PermanentError naming the file and the problem."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    path = _download(data, scratch) if data.startswith("https://") else Path(data)
    if not path.is_file():
        raise PermanentError(f"validation data {data}: no such file; set `data:` to a Parquet or CSV file")
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
        raise PermanentError(f"validation data {data}: not a readable {fmt} file ({exc})") from exc
    if not rows:
        raise PermanentError(f"validation data {data}: the file has no rows")
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


@contextmanager
def _tracking(uri: str) -> Iterator[None]:
    import mlflow

    with _GLOBAL_URI:
        before = mlflow.get_tracking_uri()
        mlflow.set_tracking_uri(uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(before)


def evaluate(
    model: ModelVersionAt,
    data: pd.DataFrame,
    *,
    targets: str,
    model_type: str,
    experiment: str,
    run_name: str,
    workdir: Path,
) -> Evaluated:
    """Score one model version on ``data`` with MLflow's default evaluator, logged as a run."""
    import mlflow
    from mlflow.exceptions import MlflowException

    if targets not in data.columns:
        raise PermanentError(
            f"the validation data has no column {targets!r} (`targets:`); its columns: {', '.join(data.columns)}"
        )
    with loaded_pyfunc(model, workdir=workdir) as loaded, _tracking(model.tracking_uri):
        try:
            found = mlflow.get_experiment_by_name(experiment)
            experiment_id = found.experiment_id if found else mlflow.create_experiment(experiment)
            with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
                mlflow.set_tags({"modelops.model": f"{model.name}/{model.version}"})
                result = mlflow.models.evaluate(
                    loaded,
                    data,
                    targets=targets,
                    model_type=model_type,
                    evaluators=["default"],
                    evaluator_config={"default": {"log_model_explainability": False}},
                )
        except MlflowException as exc:
            raise classify(exc, f"evaluating {model.uri}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentError(f"evaluating {model.uri} on the validation data failed: {exc}") from exc
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)}
    return Evaluated(metrics, run.info.run_id, result)


def verdict(metric: str, bar: Bar, candidate: Evaluated, baseline: Evaluated | None) -> tuple[bool, str]:
    """Whether the candidate passes one bar, decided by mlflow.validate_evaluation_results, and why."""
    import mlflow
    from mlflow.exceptions import MlflowException
    from mlflow.models import MetricThreshold

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
            {metric: threshold}, candidate.result, baseline.result if baseline is not None else None
        )
    except MlflowException as exc:
        return False, " ".join(str(exc.message).split())
    return True, "passed"
