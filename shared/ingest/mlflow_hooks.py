"""MLflow OSS webhooks (3.3+): envelope {entity, action, timestamp, data} -> ModelEvent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.domain import events as ev
from shared.errors import BadRequest
from shared.ingest.jsonbody import require, version_str

_KINDS = {
    ("registered_model", "created"): ev.REGISTERED_MODEL_CREATED,
    ("model_version", "created"): ev.MODEL_VERSION_CREATED,
    ("model_version_tag", "set"): ev.MODEL_VERSION_TAG_SET,
    ("model_version_tag", "deleted"): ev.MODEL_VERSION_TAG_DELETED,
    ("model_version_alias", "created"): ev.MODEL_VERSION_ALIAS_SET,
    ("model_version_alias", "deleted"): ev.MODEL_VERSION_ALIAS_DELETED,
}


def parse_mlflow(payload: Any, delivery_id: str | None, *, source: str) -> ev.ModelEvent:
    """An MLflow webhook body from the named source (a `sources:` entry of kind mlflow)."""
    entity = require(payload, "entity", str, "body")
    action = require(payload, "action", str, "body")
    data = require(payload, "data", dict, "body")
    source_type = f"{entity}.{action}"
    occurred = _timestamp(payload.get("timestamp"))
    kind = _KINDS.get((entity, action))
    if kind is None:
        return ev.ModelEvent(
            source=source,
            kind=None,
            source_type=source_type,
            delivery_id=delivery_id,
            raw=payload,
            occurred_at=occurred,
            ignored_reason=f"MLflow event {source_type} is not acted on",
        )
    name = require(data, "name", str, "data")
    common: dict[str, Any] = {
        "source": source,
        "kind": kind,
        "source_type": source_type,
        "model_name": name,
        "delivery_id": delivery_id,
        "raw": payload,
        "occurred_at": occurred,
    }
    if kind == ev.REGISTERED_MODEL_CREATED:
        return ev.ModelEvent(**common, tags=_tags(data.get("tags")))
    if kind == ev.MODEL_VERSION_ALIAS_DELETED:
        # MLflow does not say which version lost the alias
        return ev.ModelEvent(**common, alias=require(data, "alias", str, "data"))
    version = version_str(data.get("version"), "data.version")
    if kind == ev.MODEL_VERSION_CREATED:
        return ev.ModelEvent(
            **common, model_version=version, tags=_tags(data.get("tags")), run_id=data.get("run_id") or None
        )
    if kind == ev.MODEL_VERSION_ALIAS_SET:
        return ev.ModelEvent(**common, model_version=version, alias=require(data, "alias", str, "data"))
    key = require(data, "key", str, "data")
    value = data.get("value", "") if kind == ev.MODEL_VERSION_TAG_SET else ""
    if not isinstance(value, str):
        raise BadRequest("data.value must be a string")
    return ev.ModelEvent(**common, model_version=version, tags={key: value})


def _tags(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest("data.tags must be an object of strings")
    return {str(k): str(v) for k, v in value.items()}


def _timestamp(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        except ValueError:
            raise BadRequest(f"timestamp {value!r} is not ISO 8601") from None
    return datetime.now(UTC)
