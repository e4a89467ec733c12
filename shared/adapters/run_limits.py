"""What a target's runs take: per ``log_batch`` call and per run, by the target's kind (cited where they come from)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchLimits:
    """What one ``log_batch`` may carry, the longest values the target keeps, and what one run may hold."""

    metrics: int
    params: int
    tags: int
    tag_key: int
    tag_value: int
    param_value: int
    metric_keys_per_run: int | None = None  # None: no documented limit
    points_per_metric: int | None = None


# MLflow's LogBatch limits (mlflow/utils/validation.py MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH,
# MAX_TAG_VAL_LENGTH, MAX_ENTITY_KEY_LENGTH, MAX_PARAM_VAL_LENGTH)
MLFLOW_LIMITS = BatchLimits(metrics=1000, params=100, tags=100, tag_key=250, tag_value=8000, param_value=6000)
# Databricks' REST reference: runs/log-batch takes up to 1,000 metrics, 100 params and 100 tags; a param value is
# "Maximum size is 500 bytes", a tag key up to 250 bytes and a value up to 64 KB (LogParam, SetTag requests)
DATABRICKS_LIMITS = BatchLimits(metrics=1000, params=100, tags=100, tag_key=250, tag_value=65536, param_value=500)
# Azure ML "Service limits" (learn.microsoft.com/azure/machine-learning/resource-limits-capacity): a run keeps 50
# tags, keys of up to 100 and values of up to 1,000 characters, 50 metric names of up to 1 million metric rows
# each; 250 metric rows per uploaded batch (the workspace answers 400 "FieldName=MetricV2Dto.Value/Count,
# Limit=250" beyond it, mlflow/mlflow#11462).
# What the page does not give is left to the workspace's answer, each refused item logged: its 200 params per run
# ("FieldName=Parameters, Limit=200", Azure/azure-sdk-for-python#35685) and any param value length (MLflow's is kept).
AZUREML_LIMITS = BatchLimits(
    metrics=250,
    params=100,
    tags=50,
    tag_key=100,
    tag_value=1000,
    param_value=6000,
    metric_keys_per_run=50,
    points_per_metric=1_000_000,
)


def limits_for(tracking_uri: str) -> BatchLimits:
    if tracking_uri.startswith("azureml:"):
        return AZUREML_LIMITS
    if tracking_uri == "databricks" or tracking_uri.startswith("databricks:"):
        return DATABRICKS_LIMITS
    return MLFLOW_LIMITS
