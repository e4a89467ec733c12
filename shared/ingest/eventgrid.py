"""Event Grid deliveries (Event Grid schema arrays, CloudEvents 1.0 single or batch) and the
Azure ML system-topic events inside them."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.domain import events as ev
from shared.errors import BadRequest
from shared.ingest.jsonbody import version_str

VALIDATION_TYPE = "Microsoft.EventGrid.SubscriptionValidationEvent"
AML_PREFIX = "Microsoft.MachineLearningServices."
TERMINAL_RUN_STATUSES = {"completed", "failed", "canceled", "cancelled"}


@dataclass(frozen=True)
class GridEvent:
    """One event, schema-neutral."""

    id: str
    type: str
    subject: str
    time: datetime
    data: dict[str, Any]
    topic: str | None = None


@dataclass
class Delivery:
    events: list[GridEvent] = field(default_factory=list)
    validation_code: str | None = None


def parse_delivery(payload: Any) -> Delivery:
    """Accepts an Event Grid schema array, one CloudEvent, or a CloudEvents batch."""
    items = payload if isinstance(payload, list) else [payload]
    if not items:
        raise BadRequest("empty event batch")
    out = Delivery()
    for index, item in enumerate(items):
        where = f"body[{index}]" if isinstance(payload, list) else "body"
        grid = parse_one(item, where)
        if grid.type == VALIDATION_TYPE:
            code = grid.data.get("validationCode")
            if not isinstance(code, str) or not code:
                raise BadRequest(f"{where}.data.validationCode is required for subscription validation")
            out.validation_code = code
        out.events.append(grid)
    return out


def parse_one(item: Any, where: str = "event") -> GridEvent:
    if not isinstance(item, dict):
        raise BadRequest(f"{where} must be a JSON object")
    if "specversion" in item:  # CloudEvents 1.0
        if str(item["specversion"]) != "1.0":
            raise BadRequest(f"{where}.specversion {item['specversion']!r} is not supported (use 1.0)")
        keys = {"id": "id", "type": "type", "subject": "subject", "time": "time"}
        topic = item.get("source")
    else:  # Event Grid schema
        keys = {"id": "id", "type": "eventType", "subject": "subject", "time": "eventTime"}
        topic = item.get("topic")
    for field_name in ("id", "type"):
        value = item.get(keys[field_name])
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{where}.{keys[field_name]} is required")
    data = item.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise BadRequest(f"{where}.data must be a JSON object")
    subject = item.get(keys["subject"]) or ""
    if not isinstance(subject, str):
        raise BadRequest(f"{where}.{keys['subject']} must be a string")
    return GridEvent(
        id=item[keys["id"]],
        type=item[keys["type"]],
        subject=subject,
        time=_time(item.get(keys["time"]), f"{where}.{keys['time']}"),
        data=data,
        topic=topic if isinstance(topic, str) else None,
    )


def _time(value: Any, where: str) -> datetime:
    if value in (None, ""):
        return datetime.now(UTC)
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be an RFC 3339 timestamp")
    text = re.sub(r"(\.\d{6})\d+", r"\1", value.replace("Z", "+00:00"))  # Event Grid sends 7 digits
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"{where} {value!r} is not an RFC 3339 timestamp") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _camel(data: dict[str, Any]) -> dict[str, Any]:
    """Azure ML sends PascalCase or camelCase keys; normalize to camelCase."""
    return {(k[:1].lower() + k[1:]) if isinstance(k, str) else k: v for k, v in data.items()}


def _str_map(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def to_model_events(grid: GridEvent, *, source: str) -> list[ev.ModelEvent]:
    """Normalize an Azure ML event: one ModelEvent per model of a ModelDeployed (its `modelIds` is a
    comma-separated `name:version` list), one for any other event (kept as ignored if not acted on)."""
    first = to_model_event(grid, source=source)
    if first.kind != ev.MODEL_DEPLOYED:
        return [first]
    return [dataclasses.replace(first, model_name=name, model_version=version) for name, version in _model_ids(grid)]


def to_model_event(grid: GridEvent, *, source: str) -> ev.ModelEvent:
    """Normalize an Azure ML event; other event types are kept as ignored (a ModelDeployed: its
    first model; `to_model_events` gives every one)."""
    base: dict[str, Any] = {
        "source": source,
        "via": ev.EVENTGRID,
        "source_type": grid.type,
        "delivery_id": grid.id,
        "occurred_at": grid.time,
        "subject": grid.subject,
        "raw": {"id": grid.id, "type": grid.type, "subject": grid.subject, "topic": grid.topic, "data": grid.data},
    }
    if not grid.type.startswith(AML_PREFIX):
        return ev.ModelEvent(**base, kind=None, ignored_reason=f"{grid.type} is not an Azure ML event")
    name = grid.type.removeprefix(AML_PREFIX)
    data = _camel(grid.data)
    if name == "ModelRegistered":
        model, version = _model_from(data, grid.subject)
        return ev.ModelEvent(
            **base,
            kind=ev.MODEL_REGISTERED,
            model_name=model,
            model_version=version,
            tags=_str_map(data.get("modelTags")),
        )
    if name == "ModelDeployed":
        deployed, deployed_version = (_model_ids(grid) or [(None, None)])[0]
        return ev.ModelEvent(
            **base,
            kind=ev.MODEL_DEPLOYED,
            model_name=deployed,
            model_version=deployed_version,
            tags=_str_map(data.get("serviceTags")),
        )
    if name in ("RunCompleted", "RunStatusChanged"):
        run_id = data.get("runId")
        if not isinstance(run_id, str) or not run_id:
            raise BadRequest(f"data.runId is required for {grid.type}")
        status = str(data.get("runStatus") or ("Completed" if name == "RunCompleted" else ""))
        if name == "RunStatusChanged" and status.lower() not in TERMINAL_RUN_STATUSES:
            return ev.ModelEvent(
                **base,
                kind=None,
                run_id=run_id,
                run_status=status,
                ignored_reason=f"run status {status or '(none)'} is not terminal",
            )
        kind = ev.RUN_COMPLETED if status.lower() == "completed" else ev.RUN_STATUS_CHANGED
        return ev.ModelEvent(
            **base,
            kind=kind,
            run_id=run_id,
            run_status=status,
            experiment=str(data.get("experimentName") or data.get("experimentId") or "") or None,
            tags=_str_map(data.get("runTags")),
        )
    return ev.ModelEvent(**base, kind=None, ignored_reason=f"{grid.type} is not acted on")


def _model_ids(grid: GridEvent) -> list[tuple[str | None, str | None]]:
    """`modelIds` of a ModelDeployed (`name:version,name:version`), in order, each once."""
    ids = _camel(grid.data).get("modelIds") or ""
    pairs: list[tuple[str | None, str | None]] = []
    for item in str(ids).split(","):
        model, _, version = item.strip().rpartition(":")
        pair = (model or None, version or None)
        if item.strip() and pair not in pairs:
            pairs.append(pair)
    return pairs


def _model_from(data: dict[str, Any], subject: str) -> tuple[str, str]:
    name, version = data.get("modelName"), data.get("modelVersion")
    if (not name or version in (None, "")) and subject.startswith("models/"):
        rest = subject.removeprefix("models/")
        subject_name, _, subject_version = rest.rpartition(":") if ":" in rest else (rest, "", "")
        name, version = name or subject_name, version if version not in (None, "") else subject_version
    if not isinstance(name, str) or not name:
        raise BadRequest("data.modelName (or a subject models/{name}:{version}) is required")
    return name, version_str(version, "data.modelVersion")
