"""What the Azure ML workspace's MLflow endpoint refuses in `runs/log-batch`, as the service documents it.

Limits, from "Service limits in Azure Machine Learning" (learn.microsoft.com/azure/machine-learning/
resource-limits-capacity, aka.ms/azure-machine-learning-limits): a run keeps at most 50 tags, tag keys of up
to 100 and values of up to 1,000 characters, and 50 metric names; a batch uploads at most 250 metric rows. Runs
keep at most 200 params (Azure/azure-sdk-for-python#35685: "FieldName=Parameters, Limit=200, Size=210").

The refusal, as the service answers it (mlflow/mlflow#11462, a log-batch of 699 metric rows): HTTP 400
with `error_code` INVALID_PARAMETER_VALUE and no `message` beside an `Error` object whose message reads
"A field of the entity is over the size limit. FieldName=MetricV2Dto.Value/Count, Limit=250, Size=699.
See https://aka.ms/azure-machine-learning-limits for service limits documentation." The whole batch is
refused; nothing of it is written. The field names for tags and metric names follow the same form
(RunDto.Tags..., RunDto.Metrics/Count): the limits are the service's, those two field names are not quoted from it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.responses import JSONResponse

METRICS_PER_BATCH = 250
METRIC_NAMES_PER_RUN = 50
PARAMS_PER_RUN = 200
TAGS_PER_RUN = 50
TAG_KEY_LENGTH = 100
TAG_VALUE_LENGTH = 1000


def over_limit(field: str, limit: int, size: int) -> JSONResponse:
    message = (
        f"A field of the entity is over the size limit. FieldName={field}, Limit={limit}, Size={size}. "
        "See https://aka.ms/azure-machine-learning-limits for service limits documentation."
    )
    body = {
        "Error": {
            "Code": "ValidationError",
            "Severity": None,
            "Message": message,
            "MessageFormat": None,
            "MessageParameters": None,
            "ReferenceCode": None,
            "DetailsUri": None,
            "Target": None,
            "Details": [],
            "InnerError": None,
            "DebugInfo": None,
            "AdditionalInfo": None,
        },
        "Correlation": {"operation": "0" * 32, "request": "0" * 16},
        "Environment": "westeurope",
        "Location": "westeurope",
        "Time": dt.datetime.now(dt.UTC).isoformat(),
        "ComponentName": "mlflow",
        "statusCode": 400,
        "error_code": "INVALID_PARAMETER_VALUE",
    }
    return JSONResponse(body, status_code=400)


def log_batch_refusal(payload: dict[str, Any], held: dict[str, Any]) -> JSONResponse | None:
    """Why the workspace refuses this log-batch, given what the run ``held`` holds (its `data`), or None."""
    metrics = payload.get("metrics") or []
    if len(metrics) > METRICS_PER_BATCH:
        return over_limit("MetricV2Dto.Value/Count", METRICS_PER_BATCH, len(metrics))
    tags = payload.get("tags") or []
    for tag in tags:
        if len(str(tag.get("key", ""))) > TAG_KEY_LENGTH:
            return over_limit("RunDto.Tags.Key/Length", TAG_KEY_LENGTH, len(str(tag["key"])))
        if len(str(tag.get("value", ""))) > TAG_VALUE_LENGTH:
            return over_limit("RunDto.Tags.Value/Length", TAG_VALUE_LENGTH, len(str(tag["value"])))
    held_params = {p["key"] for p in held.get("params") or []}
    params = held_params | {p.get("key") for p in payload.get("params") or []}
    if len(params) > PARAMS_PER_RUN:
        return over_limit("Parameters", PARAMS_PER_RUN, len(params))
    names = {m["key"] for m in held.get("metrics") or []} | {m.get("key") for m in metrics}
    if len(names) > METRIC_NAMES_PER_RUN:
        return over_limit("RunDto.Metrics/Count", METRIC_NAMES_PER_RUN, len(names))
    held_tags = {t["key"] for t in held.get("tags") or []}
    all_tags = held_tags | {t.get("key") for t in tags}
    if len(all_tags) > TAGS_PER_RUN:
        return over_limit("RunDto.Tags/Count", TAGS_PER_RUN, len(all_tags))
    return None
