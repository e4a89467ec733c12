"""How much one ``log_batch`` may carry into a target, by the target's kind (cited where they come from)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BatchLimits:
    """What one ``log_batch`` may carry, and the longest tag the target keeps."""

    metrics: int
    params: int
    tags: int
    tag_key: int
    tag_value: int


# MLflow's LogBatch limits (mlflow/utils/validation.py MAX_METRICS_PER_BATCH, MAX_PARAMS_TAGS_PER_BATCH,
# MAX_TAG_VAL_LENGTH, MAX_ENTITY_KEY_LENGTH), the same as Databricks' REST reference for runs/log-batch
MLFLOW_LIMITS = BatchLimits(metrics=1000, params=100, tags=100, tag_key=250, tag_value=8000)
# Azure ML "Service limits" (learn.microsoft.com/azure/machine-learning/resource-limits-capacity): runs keep
# tag keys of up to 100 and values of up to 1,000 characters; 250 metric rows per uploaded batch (the
# workspace answers 400 "FieldName=MetricV2Dto.Value/Count, Limit=250" beyond it, mlflow/mlflow#11462)
AZUREML_LIMITS = BatchLimits(metrics=250, params=100, tags=50, tag_key=100, tag_value=1000)


def limits_for(tracking_uri: str) -> BatchLimits:
    return AZUREML_LIMITS if tracking_uri.startswith("azureml:") else MLFLOW_LIMITS
