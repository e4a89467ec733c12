"""Webhook routes: verify -> parse -> normalize -> record -> answer. No long work inline."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from shared.api import hook_bodies
from shared.api.deps import read_body
from shared.config.schema import ReactorConfig
from shared.domain.events import ModelEvent
from shared.errors import BadRequest, Unauthorized
from shared.ingest.eventgrid import parse_delivery
from shared.ingest.jsonbody import parse_json
from shared.ingest.sources import (
    SOURCE_TABLE,
    SourceKind,
    grid_events,
    secret_setting,
    single_source,
    unsigned_sources,
    webhook_kind,
)
from shared.ledger.base import IntakeResult
from shared.service.reactor import Reactor
from shared.settings import Settings

router = APIRouter(prefix="/api/hooks", tags=["hooks"])
log = logging.getLogger("modelops.hooks")
ORIGIN = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": "^[!-~]+$",
    "description": "host name of the event sender",
}
_ORIGIN = re.compile(r"[!-~]{1,253}")
SOURCE_PARAMETER = {
    "name": "source",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "title": "Source"},
    "description": "the source's name in the config (`sources:`)",
}


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def warn_unsigned(config: ReactorConfig, settings: Settings) -> None:
    """At start, once: each webhook source without its secret, refused or accepted unsigned."""
    for unsigned in unsigned_sources(config, settings.webhook_secret, in_azure=settings.in_azure):
        log.warning("%s", unsigned.notice)


class _Json(JSONResponse):
    """JSONResponse's bytes exactly (compact, UTF-8, no NaN), from one encoder made once: json.dumps
    with options builds a new JSONEncoder on every call."""

    def render(self, content: Any) -> bytes:
        return _ENCODE(content).encode("utf-8")


_ENCODE = json.JSONEncoder(ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode


def answer(result: IntakeResult) -> JSONResponse:
    code = 202 if result.status == "accepted" and not result.duplicate else 200
    return _Json(result.to_dict(), status_code=code)


async def _accept(app_reactor: Reactor, event: ModelEvent) -> IntakeResult:
    if app_reactor.intake_awaitable:  # SQLite: group-committed on the event loop, no threadpool hop
        return await app_reactor.accept_async(event)
    return await run_in_threadpool(app_reactor.accept, event)


@dataclass(frozen=True)
class SignedSource:
    """What a signed webhook route needs of its source, looked up once per app (config and
    settings do not change under a running app): its name, kind, secret setting and secret."""

    name: str
    kind: SourceKind
    setting: str
    secret: str | None


class HookState:
    """The webhook routes' per-app lookups: the reactor, and each route's or source's SignedSource
    (only sources that resolved: an unknown one is refused again each time, with the same error)."""

    def __init__(self, reactor: Reactor, settings: Settings) -> None:
        self.reactor = reactor
        self.settings = settings
        self.max_body_bytes = settings.max_body_bytes
        self.sources: dict[str, SignedSource] = {}

    def signed(self, name: str, kind: SourceKind) -> SignedSource:
        setting = str(secret_setting(self.reactor.config, name, kind))
        return SignedSource(name, kind, setting, self.settings.webhook_secret(setting))


def hook_state(request: Request) -> HookState:
    state = request.app.state
    found: HookState | None = getattr(state, "hooks", None)
    if found is None:
        found = state.hooks = HookState(state.container.reactor(), state.settings)
    return found


def reactor_of(request: Request) -> Reactor:
    # not a FastAPI dependency: resolving one cost a tenth of a webhook's time in the app
    return hook_state(request).reactor


def _route_source(request: Request, route: str) -> tuple[HookState, SignedSource]:
    """The source a kind's own route (`/api/hooks/mlflow`, `/databricks`) means, once per app."""
    hooks = hook_state(request)
    found = hooks.sources.get(route)
    if found is None:
        name = single_source(hooks.reactor.config, route)
        found = hooks.sources[route] = hooks.signed(name, SOURCE_TABLE[route])
    return hooks, found


def _named_source(request: Request, source: str) -> tuple[HookState, SignedSource]:
    hooks = hook_state(request)
    found = hooks.sources.get("/" + source)
    if found is None:
        found = hooks.signed(source, webhook_kind(hooks.reactor.config, source))
        hooks.sources["/" + source] = found
    return hooks, found


async def _signed(request: Request, hooks: HookState, source: SignedSource) -> Response:
    """A signed webhook of a named source: checked with its kind's scheme and its own secret."""
    app_reactor, name, kind, setting, secret = hooks.reactor, source.name, source.kind, source.setting, source.secret
    assert kind.parse is not None and kind.verify is not None
    if not secret and (hooks.settings.in_azure or setting != kind.secret_setting):
        # unsigned deliveries are a local convenience: never in Azure, never for a source naming its own setting
        where = "in Azure every unsigned delivery is refused" if hooks.settings.in_azure else "it is refused unsigned"
        raise Unauthorized(
            f"source {name!r} is signed with the app setting {setting}, which is not set ({where}): set it"
        )
    body = await read_body(request, hooks.max_body_bytes)
    if not secret:
        events = kind.parse(parse_json(body), name, kind.delivery_id(request.headers))
        return await _answer_all(app_reactor, events)
    verified = kind.verify(secret, request.headers, body, hooks.settings.webhook_max_skew_seconds)
    payload: Any = None
    try:
        payload = parse_json(body)
        events = kind.parse(payload, name, verified)
    except BadRequest as exc:
        # a verified delivery the parser cannot use is kept in the audit trail as refused, under the
        # sender's delivery id (only then: an unsigned or badly signed delivery records nothing)
        refused_id = verified or (kind.body_delivery_id(payload) if payload is not None else None)
        await run_in_threadpool(app_reactor.ledger.record_refusal, name, refused_id, str(exc))
        raise
    return await _answer_all(app_reactor, events)


async def _answer_all(app_reactor: Reactor, events: list[ModelEvent]) -> Response:
    results = [await _accept(app_reactor, event) for event in events]
    if len(results) == 1:
        return answer(results[0])
    accepted = any(r.status == "accepted" and not r.duplicate for r in results)
    body_out: dict[str, Any] = {"results": [r.to_dict() for r in results]}
    return _Json(body_out, status_code=202 if accepted else 200)


@router.post(
    "/mlflow",
    summary="MLflow OSS registry webhook of the one mlflow source (signed with X-MLflow-Signature)",
    openapi_extra=hook_bodies.body(hook_bodies.MLFLOW),
)
async def mlflow_hook(request: Request) -> Response:
    return await _signed(request, *_route_source(request, "mlflow"))


@router.post(
    "/databricks",
    summary="Databricks workspace registry webhook of the one databricks source (X-Databricks-Signature)",
    openapi_extra=hook_bodies.body(hook_bodies.DATABRICKS),
)
async def databricks_hook(request: Request) -> Response:
    return await _signed(request, *_route_source(request, "databricks"))


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
    if not _ORIGIN.fullmatch(origin):
        # echoed in a response header: only a host name as the schema (ORIGIN) says, never what a header could smuggle
        raise BadRequest(
            "WebHook-Request-Origin must be the sender's host name (printable ASCII, no spaces, up to 253 characters)",
            field="WebHook-Request-Origin",
        )
    return Response(
        status_code=200,
        headers={"WebHook-Allowed-Origin": origin, "WebHook-Allowed-Rate": "*", "Allow": "POST, OPTIONS"},
    )


@router.post(
    "/eventgrid",
    summary="Azure ML events through Event Grid (Event Grid schema or CloudEvents), routed by workspace",
    openapi_extra=hook_bodies.body(hook_bodies.EVENTGRID),
)
async def eventgrid_hook(request: Request) -> Response:
    app_reactor = reactor_of(request)
    settings = _settings(request)
    body = await read_body(request, settings.max_body_bytes)
    delivery = parse_delivery(parse_json(body))
    if delivery.validation_code is not None:
        log.info("Event Grid subscription validation answered")
        return JSONResponse({"validationResponse": delivery.validation_code})
    events = [event for grid in delivery.events for event in grid_events(app_reactor.config, grid)]
    return await _answer_all(app_reactor, events)


@router.post(
    "/{source}",
    summary="Webhook of a named mlflow or databricks source, verified with its own secret setting",
    openapi_extra={**hook_bodies.body(hook_bodies.SIGNED), "parameters": [SOURCE_PARAMETER]},
)
async def source_hook(request: Request) -> Response:
    # the path parameter is read from the request, not declared: a typed parameter makes FastAPI
    # import pydantic.v1 to rule out v1 models, which a cold start's first webhook then pays (~70 ms)
    return await _signed(request, *_named_source(request, str(request.path_params["source"])))
