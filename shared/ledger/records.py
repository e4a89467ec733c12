"""Actions and events as flat stored fields: the same column names and encodings on every backend.

Every text a record carries is redacted here, as log lines are (shared/telemetry.py): an action's
error and outputs, an event's summary; the audit-log lines and reasons in shared/ledger/core.py.

``Action.params`` and ``Action.outputs`` are (de)serialized here and nowhere else
(``encode_params``/``decode_params``/``encode_outputs``/``decode_outputs``), so changing their types
changes these four functions, not the backends.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from shared.domain.actions import Action
from shared.domain.clock import iso, parse_dt
from shared.domain.events import ModelEvent
from shared.domain.outputs import Outputs, outputs_from_dict
from shared.domain.params import ActionParams
from shared.ledger.payloads import compact_key, shorten
from shared.telemetry import redact, redact_tree

ACTION_FIELDS = tuple(f.name for f in fields(Action))
# json.dumps(value, default=str[, ensure_ascii=False]), with the encoder made once, not on every call
encode_json = json.JSONEncoder(default=str).encode
encode_json_text = json.JSONEncoder(default=str, ensure_ascii=False).encode
ACTION_TIMES = ("lease_expires_at", "not_before", "created_at", "started_at", "finished_at")


def encode_params(params: ActionParams) -> str:
    # ensure_ascii=False: escapes would multiply non-ASCII text by 6 against the store's size limits
    return encode_json_text(params.to_dict())


def decode_params(text: str | None) -> ActionParams:
    return ActionParams.from_dict(json.loads(text) if text else {})


def encode_outputs(outputs: Outputs) -> str:
    # redacted as it is stored: an endpoint URL or a log path may carry a SAS signature or a token
    return encode_json_text(redact_tree(outputs.to_dict()))


def decode_outputs(kind: str, text: str | None) -> Outputs:
    return outputs_from_dict(kind, json.loads(text) if text else {})


def action_to_fields(action: Action) -> dict[str, Any]:
    """Column name -> stored value: instants as ISO text, params and outputs encoded."""
    out = {name: getattr(action, name) for name in ACTION_FIELDS}
    for name in ACTION_TIMES:
        out[name] = iso(out[name])
    out["error"] = redact(action.error) if action.error else action.error
    out["params"] = encode_params(action.params)
    out["outputs"] = encode_outputs(action.outputs)
    return out


def action_from_fields(stored: Mapping[str, Any]) -> Action:
    """The inverse of ``action_to_fields``; an absent (None) column takes the Action's default."""
    values: dict[str, Any] = {name: stored.get(name) for name in ACTION_FIELDS}
    for name in ACTION_TIMES:
        values[name] = parse_dt(values[name])
    values["params"] = decode_params(values["params"])
    values["outputs"] = decode_outputs(values["kind"], values["outputs"])
    return Action(**{name: value for name, value in values.items() if value is not None})


@dataclass(frozen=True)
class EventRecord:
    """An event as the ledger lists it; its replayable payload is stored beside it."""

    id: str
    dedupe_key: str
    source: str
    kind: str | None
    source_type: str
    model_name: str | None
    model_version: str | None
    status: str
    reason: str | None
    received_at: str
    deliveries: int
    summary: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        # shallow: dataclasses.asdict deep-copies the summary, a third of an intake's time
        return {name: getattr(self, name) for name in EVENT_FIELDS}


EVENT_FIELDS = tuple(f.name for f in fields(EventRecord))


def new_event(event: ModelEvent, *, event_id: str, status: str, reason: str | None, now: datetime) -> EventRecord:
    return EventRecord(
        id=event_id,
        dedupe_key=compact_key(event.dedupe_key),
        source=event.source,
        kind=event.kind,
        source_type=event.source_type,
        model_name=event.model_name,
        model_version=event.model_version,
        status=status,
        reason=reason,
        received_at=iso(now),
        deliveries=1,
        summary=shorten(redact_tree(event.summary())),
    )


def event_to_fields(record: EventRecord) -> dict[str, Any]:
    return {**record.to_dict(), "summary": encode_json(record.summary)}


def event_from_fields(stored: Mapping[str, Any]) -> EventRecord:
    values: dict[str, Any] = {name: stored.get(name) for name in EVENT_FIELDS}
    values["summary"] = json.loads(values["summary"]) if values["summary"] else {}
    values["deliveries"] = int(values["deliveries"] or 1)
    return EventRecord(**values)


@dataclass(frozen=True)
class ActionQuery:
    """Filters of ``Ledger.list_actions``; None matches anything."""

    model_name: str | None = None
    model_version: str | None = None
    kind: str | None = None
    status: str | None = None
    event_id: str | None = None
    limit: int = 100
    offset: int = 0

    def equal(self) -> dict[str, str]:
        """The column filters that are set (event_id aside: events link actions, it is not a column match)."""
        wanted = {"model_name": self.model_name, "model_version": self.model_version, "kind": self.kind}
        return {name: value for name, value in {**wanted, "status": self.status}.items() if value is not None}

    def matches(self, action: Action) -> bool:
        return all(getattr(action, name) == value for name, value in self.equal().items())


@dataclass(frozen=True)
class DeliveryRecord:
    """One delivery as a sender made it: its own id (an Event Grid event id, an MLflow
    ``X-MLflow-Delivery-Id``, a Databricks ``<webhook_id>:<event_timestamp>``), when, and the answer
    given: accepted, duplicate, ignored, or refused (with the reason; no event then)."""

    delivery_id: str | None
    source: str
    received_at: str
    answer: str
    event_id: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in DELIVERY_FIELDS}


DELIVERY_FIELDS = tuple(f.name for f in fields(DeliveryRecord))


def delivery_from_fields(stored: Mapping[str, Any]) -> DeliveryRecord:
    values: dict[str, Any] = {name: stored.get(name) for name in DELIVERY_FIELDS}
    return DeliveryRecord(**values)
