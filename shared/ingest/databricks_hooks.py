"""Databricks workspace model registry webhooks -> ModelEvent (parsed leniently)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.domain import events as ev
from shared.errors import BadRequest
from shared.ingest.jsonbody import version_str

_STAGE_EVENTS = {
    "MODEL_VERSION_TRANSITIONED_STAGE": None,
    "MODEL_VERSION_TRANSITIONED_TO_STAGING": "Staging",
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION": "Production",
    "MODEL_VERSION_TRANSITIONED_TO_ARCHIVED": "Archived",
}
_REQUEST_EVENTS = {
    "TRANSITION_REQUEST_CREATED": None,
    "TRANSITION_REQUEST_TO_STAGING_CREATED": "Staging",
    "TRANSITION_REQUEST_TO_PRODUCTION_CREATED": "Production",
    "TRANSITION_REQUEST_TO_ARCHIVED_CREATED": "Archived",
}


def parse_databricks(payload: Any, *, source: str) -> ev.ModelEvent:
    """A Databricks registry webhook or job notification body from the named source (kind databricks)."""
    if not isinstance(payload, dict):
        raise BadRequest("body must be a JSON object")
    if isinstance(payload.get("event_type"), str):
        return _job_notification(payload, source)
    name = payload.get("event")
    if not isinstance(name, str) or not name:
        raise BadRequest("body.event is required (e.g. MODEL_VERSION_CREATED)")
    occurred = _millis(payload.get("event_timestamp"))
    model = payload.get("model_name")
    version_raw = payload.get("version")
    base: dict[str, Any] = {
        "source": source,
        "source_type": name,
        "raw": payload,
        "occurred_at": occurred,
        "delivery_id": _delivery_id(payload),
    }
    kind = _kind(name)
    if kind is None:
        return ev.ModelEvent(**base, kind=None, ignored_reason=f"Databricks event {name} is not acted on")
    if not isinstance(model, str) or not model:
        raise BadRequest(f"body.model_name is required for {name}")
    version = None if kind == ev.REGISTERED_MODEL_CREATED else version_str(version_raw, "body.version")
    stage = payload.get("to_stage") or _STAGE_EVENTS.get(name) or _REQUEST_EVENTS.get(name)
    return ev.ModelEvent(
        **base,
        kind=kind,
        model_name=model,
        model_version=version,
        stage=stage if isinstance(stage, str) else None,
        from_stage=payload.get("from_stage") if isinstance(payload.get("from_stage"), str) else None,
        tags=_tags(payload.get("tags")),
    )


def _kind(name: str) -> str | None:
    if name == "MODEL_VERSION_CREATED":
        return ev.MODEL_VERSION_CREATED
    if name in _STAGE_EVENTS:
        return ev.MODEL_VERSION_STAGE_CHANGED
    if name in _REQUEST_EVENTS or name.startswith("TRANSITION_REQUEST_") and name.endswith("_CREATED"):
        return ev.MODEL_VERSION_TRANSITION_REQUESTED
    if name == "MODEL_VERSION_TAG_SET":
        return ev.MODEL_VERSION_TAG_SET
    if name == "REGISTERED_MODEL_CREATED":
        return ev.REGISTERED_MODEL_CREATED
    if name == "COMMENT_CREATED":
        return ev.COMMENT_CREATED
    return None


def _tags(value: Any) -> dict[str, str]:
    """Databricks sends tags as [{key, value}]; a plain object is accepted too."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    if not isinstance(value, list):  # lenient: a scalar where tags belong is dropped, not a 500
        return out
    for item in value:
        if isinstance(item, dict) and "key" in item:
            out[str(item["key"])] = str(item.get("value", ""))
    return out


def _millis(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        try:
            return datetime.fromtimestamp(value / 1000, UTC)
        except (ValueError, OverflowError, OSError):  # beyond year 9999 (or inf): lenient, like a missing one
            pass
    return datetime.now(UTC)


def _delivery_id(payload: dict[str, Any]) -> str | None:
    webhook, ts = payload.get("webhook_id"), payload.get("event_timestamp")
    return f"{webhook}:{ts}" if webhook and ts else None


def delivery_id_of(payload: Any) -> str | None:
    """What identifies a Databricks delivery: it sends no delivery id, so a registry webhook's is
    ``<webhook_id>:<event_timestamp>`` (both in its body) and a job notification's ``job-run:<run_id>``."""
    if not isinstance(payload, dict):
        return None
    if isinstance(payload.get("event_type"), str):
        run = payload.get("run")
        run_id = run.get("run_id") if isinstance(run, dict) else None
        return f"job-run:{run_id}" if run_id not in (None, "") and not isinstance(run_id, bool) else None
    return _delivery_id(payload)


_JOB_EVENTS = {"jobs.on_success": (ev.RUN_COMPLETED, "SUCCESS"), "jobs.on_failure": (ev.RUN_STATUS_CHANGED, "FAILED")}


def _job_notification(payload: dict[str, Any], source: str) -> ev.ModelEvent:
    """Job notification destinations (HTTP webhook): {event_type, workspace_id, run: {run_id}, job: {...}}."""
    event_type = payload["event_type"]
    run: dict[str, Any] = payload["run"] if isinstance(payload.get("run"), dict) else {}
    job: dict[str, Any] = payload["job"] if isinstance(payload.get("job"), dict) else {}
    base: dict[str, Any] = {"source": source, "source_type": event_type, "occurred_at": datetime.now(UTC)}
    known = _JOB_EVENTS.get(event_type)
    base["delivery_id"] = delivery_id_of(payload)
    if known is None:
        return ev.ModelEvent(**base, raw=payload, kind=None, ignored_reason=f"job event {event_type} is not acted on")
    run_id = run.get("run_id")
    if run_id in (None, "") or isinstance(run_id, bool):
        raise BadRequest(f"run.run_id is required for {event_type}")
    kind, status = known
    return ev.ModelEvent(
        **base,
        kind=kind,
        run_status=status,
        raw={**payload, "job_run_id": str(run_id)},
        experiment=str(job.get("name") or job.get("job_id") or "") or None,
    )
