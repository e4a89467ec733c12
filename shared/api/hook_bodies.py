"""OpenAPI request bodies of the webhook routes: what each sender posts (the parsers in
shared/ingest/ decide; these describe them for clients and for the schemathesis suite)."""

from __future__ import annotations

from typing import Any

_VERSION = {"oneOf": [{"type": "string", "minLength": 1}, {"type": "integer"}], "description": "model version"}

MLFLOW: dict[str, Any] = {
    "type": "object",
    "description": "MLflow OSS (3.3+) webhook envelope, signed with X-MLflow-Signature over the raw body",
    "required": ["entity", "action", "data"],
    "properties": {
        "entity": {"type": "string", "examples": ["model_version", "model_version_alias", "registered_model"]},
        "action": {"type": "string", "examples": ["created", "deleted", "set"]},
        "timestamp": {"type": "string", "format": "date-time"},
        "data": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "version": _VERSION,
                "alias": {"type": "string"},
                "key": {"type": "string"},
                "value": {"type": "string"},
                "run_id": {"type": ["string", "null"]},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
    },
}

DATABRICKS: dict[str, Any] = {
    "type": "object",
    "description": "Databricks registry webhook (X-Databricks-Signature) or job notification (HTTP Basic)",
    "properties": {
        "event": {"type": "string", "examples": ["MODEL_VERSION_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE"]},
        "event_type": {"type": "string", "examples": ["jobs.on_success"]},
        "webhook_id": {"type": "string"},
        "event_timestamp": {"type": "integer", "description": "milliseconds since the epoch"},
        "model_name": {"type": "string"},
        "version": _VERSION,
        "to_stage": {"type": "string"},
        "from_stage": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "object"}},
        "run": {"type": "object"},
        "job": {"type": "object"},
    },
}

_GRID_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "Event Grid schema event (an object with `specversion` is read as a CloudEvent)",
    "required": ["id", "eventType"],
    "not": {"required": ["specversion"]},
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "eventType": {"type": "string", "minLength": 1},
        "subject": {"type": "string"},
        "eventTime": {"type": "string", "format": "date-time"},
        "topic": {"type": "string"},
        "data": {"type": "object"},
        "dataVersion": {"type": "string"},
    },
}
_CLOUD_EVENT: dict[str, Any] = {
    "type": "object",
    "description": "CloudEvents 1.0 event",
    "required": ["specversion", "id", "type"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "type": {"type": "string", "minLength": 1},
        "source": {"type": "string"},
        "subject": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "data": {"type": "object"},
    },
}
EVENTGRID: dict[str, Any] = {
    "description": "an Event Grid schema array, one CloudEvent, or a CloudEvents batch (Azure ML system topic)",
    "oneOf": [
        {"type": "array", "minItems": 1, "items": _GRID_EVENT},
        _CLOUD_EVENT,
        {"type": "array", "minItems": 1, "items": _CLOUD_EVENT},
    ],
}


SIGNED: dict[str, Any] = {
    "description": "what the named source's kind posts: an MLflow webhook envelope or a Databricks webhook",
    "anyOf": [MLFLOW, DATABRICKS],
}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    """`openapi_extra` of a webhook route: its body, read raw (the signature covers the bytes)."""
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
