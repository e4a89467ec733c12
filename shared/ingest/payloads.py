"""A sender's body read without its HTTP request (for `modelops plan` and `POST /api/plan`): which
sender's format it is, and the events it carries, parsed by the same parsers as the webhooks."""

from __future__ import annotations

from typing import Any

from shared.config.schema import ReactorConfig
from shared.domain.events import ModelEvent
from shared.errors import BadRequest
from shared.ingest.eventgrid import VALIDATION_TYPE, parse_delivery, to_model_events
from shared.ingest.sources import SOURCE_TABLE, grid_events, single_source

FORMATS = ("mlflow", "databricks", "azureml")


def payload_format(payload: Any) -> str:
    """mlflow (webhook envelope), databricks (registry webhook or job notification) or azureml
    (Event Grid schema array or event, CloudEvent or CloudEvents batch)."""
    if isinstance(payload, list) or (
        isinstance(payload, dict) and ("specversion" in payload or "eventType" in payload)
    ):
        return "azureml"
    if isinstance(payload, dict) and "entity" in payload and "action" in payload:
        return "mlflow"
    if isinstance(payload, dict) and ("event" in payload or "event_type" in payload):
        return "databricks"
    raise BadRequest(
        "payload is not a format this app reads: an MLflow webhook envelope {entity, action, data}, a "
        "Databricks registry webhook {event, ...} or job notification {event_type, run, ...}, or Event Grid "
        "events (an array of {id, eventType, ...}, or CloudEvents with specversion 1.0)",
        field="payload",
    )


def payload_events(config: ReactorConfig, payload: Any, *, source: str | None = None) -> tuple[str, list[ModelEvent]]:
    """The payload's format and the events it carries, as the webhook routes would read them: as the
    named source's, or by default as its kind's route would (the one source of the kind; Event Grid
    events by their workspace). An Event Grid schema event may come alone, not only in an array."""
    kind = payload_format(payload)
    if kind == "azureml":
        grids = [grid for grid in parse_delivery(payload).events if grid.type != VALIDATION_TYPE]
        if not grids:
            raise BadRequest("a subscription validation handshake carries no event to plan", field="payload")
        if source is None:
            return kind, [event for grid in grids for event in grid_events(config, grid)]
        return kind, [event for grid in grids for event in to_model_events(grid, source=source)]
    parse = SOURCE_TABLE[kind].parse
    assert parse is not None
    return kind, parse(payload, source or single_source(config, kind), None)
