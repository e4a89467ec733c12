"""Webhook routes: verify -> parse -> normalize -> record -> answer. No long work inline."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.api import hook_bodies
from shared.api.deps import reactor, read_body
from shared.domain.events import ModelEvent
from shared.errors import BadRequest
from shared.ingest.databricks_hooks import delivery_id_of, parse_databricks
from shared.ingest.eventgrid import parse_delivery, to_model_events
from shared.ingest.jsonbody import parse_json
from shared.ingest.mlflow_hooks import parse_mlflow
from shared.ingest.signatures import verify_databricks, verify_mlflow
from shared.ledger.base import IntakeResult
from shared.service.reactor import Reactor
from shared.settings import Settings

router = APIRouter(prefix="/api/hooks", tags=["hooks"])
log = logging.getLogger("modelops.hooks")
_warned: set[str] = set()
ORIGIN = {"type": "string", "minLength": 1, "pattern": "^[!-~]+$", "description": "host name of the event sender"}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _unsigned(source: str) -> None:
    if source not in _warned:
        _warned.add(source)
        log.warning("no %s webhook secret is set: accepting unsigned %s webhooks", source, source)


def answer(result: IntakeResult) -> JSONResponse:
    code = 202 if result.status == "accepted" and not result.duplicate else 200
    return JSONResponse(result.to_dict(), status_code=code)


async def _accept(app_reactor: Reactor, event: ModelEvent) -> IntakeResult:
    return await run_in_threadpool(app_reactor.accept, event)


async def _parse_verified(
    app_reactor: Reactor, source: str, delivery_id: str | None, parse: Callable[[], ModelEvent]
) -> ModelEvent:
    """Parse a delivery whose signature was verified: a body it cannot use is answered 400 and kept
    in the audit trail as refused, with the reason, under the sender's delivery id (only then: an
    unsigned or badly signed delivery records nothing)."""
    try:
        return parse()
    except BadRequest as exc:
        await run_in_threadpool(app_reactor.ledger.record_refusal, source, delivery_id, str(exc))
        raise


@router.post(
    "/mlflow",
    summary="MLflow OSS registry webhook (signed with X-MLflow-Signature)",
    openapi_extra=hook_bodies.body(hook_bodies.MLFLOW),
)
async def mlflow_hook(request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    settings = _settings(request)
    body = await read_body(request, settings.max_body_bytes)
    delivery_id = request.headers.get("X-MLflow-Delivery-Id")
    if not settings.mlflow_webhook_secret:
        _unsigned("mlflow")
        return answer(await _accept(app_reactor, parse_mlflow(parse_json(body), delivery_id)))
    verified = verify_mlflow(
        settings.mlflow_webhook_secret, request.headers, body, max_skew_seconds=settings.webhook_max_skew_seconds
    )
    event = await _parse_verified(app_reactor, "mlflow", verified, lambda: parse_mlflow(parse_json(body), verified))
    return answer(await _accept(app_reactor, event))


@router.post(
    "/databricks",
    summary="Databricks workspace registry webhook (X-Databricks-Signature)",
    openapi_extra=hook_bodies.body(hook_bodies.DATABRICKS),
)
async def databricks_hook(request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    settings = _settings(request)
    body = await read_body(request, settings.max_body_bytes)
    if not settings.databricks_webhook_secret:
        _unsigned("databricks")
        return answer(await _accept(app_reactor, parse_databricks(parse_json(body))))
    verify_databricks(settings.databricks_webhook_secret, request.headers, body)
    payload = parse_json(body)  # not JSON: no delivery id to keep it under
    event = await _parse_verified(app_reactor, "databricks", delivery_id_of(payload), lambda: parse_databricks(payload))
    return answer(await _accept(app_reactor, event))


@router.options(
    "/eventgrid",
    summary="CloudEvents webhook abuse-protection handshake",
    openapi_extra={
        "parameters": [{"name": "WebHook-Request-Origin", "in": "header", "required": True, "schema": ORIGIN}]
    },
)
async def eventgrid_options(request: Request) -> Response:
    origin = request.headers.get("WebHook-Request-Origin")
    if not origin:
        raise BadRequest("WebHook-Request-Origin header is required", field="WebHook-Request-Origin")
    return Response(
        status_code=200,
        headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST, OPTIONS"},
    )


@router.post(
    "/eventgrid",
    summary="Azure ML events through Event Grid (Event Grid schema or CloudEvents)",
    openapi_extra=hook_bodies.body(hook_bodies.EVENTGRID),
)
async def eventgrid_hook(request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    settings = _settings(request)
    body = await read_body(request, settings.max_body_bytes)
    delivery = parse_delivery(parse_json(body))
    if delivery.validation_code is not None:
        log.info("Event Grid subscription validation answered")
        return JSONResponse({"validationResponse": delivery.validation_code})
    results = [await _accept(app_reactor, event) for grid in delivery.events for event in to_model_events(grid)]
    if len(results) == 1:
        return answer(results[0])
    accepted = any(r.status == "accepted" and not r.duplicate for r in results)
    body_out: dict[str, Any] = {"results": [r.to_dict() for r in results]}
    return JSONResponse(body_out, status_code=202 if accepted else 200)
