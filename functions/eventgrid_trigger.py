"""Native Event Grid trigger for the Azure ML workspace system topic."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import azure.functions as func

from shared.bootstrap import Container
from shared.ingest.eventgrid import GridEvent
from shared.ingest.sources import grid_events

log = logging.getLogger("modelops.functions.eventgrid")


def blueprint(container: Container) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("aml_events")
    @bp.event_grid_trigger(arg_name="event")
    def aml_events(event: func.EventGridEvent) -> None:
        grid = GridEvent(
            id=event.id,
            type=event.event_type,
            subject=event.subject or "",
            time=event.event_time or datetime.now(UTC),
            data=event.get_json() or {},
            topic=event.topic,
        )
        reactor = container.reactor()
        # the azureml source of the event's workspace; a ModelDeployed names several models
        for model_event in grid_events(reactor.config, grid):
            result = reactor.accept(model_event)
            log.info("event grid %s -> %s", event.id, result.to_dict(), extra={"event_id": result.event_id})

    return bp
