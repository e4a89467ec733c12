"""Operator routes: health, events, actions, replay, cleanup."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shared.api.deps import body_doc, reactor, strict_body
from shared.api.opsauth import guard, operator, reader
from shared.domain.actions import STATUSES
from shared.errors import Unauthorized
from shared.service.reactor import Reactor

router = APIRouter(prefix="/api", tags=["ops"])
# the ledger pages with SQLite LIMIT/OFFSET, whose integers are signed 64-bit: beyond that was a 500
MAX_OFFSET = 2**63 - 1
LIMIT_DOC = "at most this many, newest first; when more match, the answer's `next` is the request for the next page"


class ActionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["register", "deploy", "batch_score"] = Field(description="what to do")
    target: str = Field(min_length=1, description="name of a registries/deployments/batch entry")
    model_name: str = Field(min_length=1, description="registered model name in the source registry")
    model_version: str | int = Field(description="model version")
    source: str | None = Field(default=None, description="source the model lives in (default: the first)")
    force: bool = Field(default=False, description="run again even if it already succeeded")


class ReplayRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    force: bool = Field(default=False, description="also re-run actions that succeeded")


class CleanupRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dry_run: bool = Field(default=True, description="false to mark and delete for real")


@router.get("/health")
async def health(request: Request, app_reactor: Reactor = Depends(reactor)) -> dict[str, Any]:
    """Public (probes); where the ledger lives (its file path, its table) only with an operator credential."""
    from shared import __version__

    stats = await run_in_threadpool(app_reactor.ledger.stats)
    try:
        await guard(request).check(request, read=True)
    except Unauthorized:
        stats = {name: value for name, value in stats.items() if name not in ("path", "table")}
    return {"status": "ok", "version": __version__, "ledger": stats, "rules": len(app_reactor.config.rules)}


@router.head("/health", include_in_schema=False)
def health_head(app_reactor: Reactor = Depends(reactor)) -> Response:
    """HEAD answers as GET does (load balancers, uptime probes): the same checks, 200, no body."""
    app_reactor.ledger.stats()
    return Response(status_code=200)


READ = [Depends(reader)]
WRITE = [Depends(operator)]


@router.get("/events", dependencies=READ)
def list_events(
    request: Request,
    source: str | None = None,
    status: Literal["accepted", "ignored"] | None = None,
    delivery_id: str | None = Query(
        None,
        min_length=1,
        description="the sender's delivery id: an Event Grid event id, an MLflow X-MLflow-Delivery-Id, "
        "a Databricks <webhook_id>:<event_timestamp> or job-run:<run_id>",
    ),
    limit: int = Query(100, ge=1, le=1000, description=LIMIT_DOC),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    app_reactor: Reactor = Depends(reactor),
) -> dict[str, Any]:
    ledger = app_reactor.ledger
    found = ledger.list_events(source=source, status=status, delivery_id=delivery_id, limit=limit + 1, offset=offset)
    body = page_of("events", found, request, limit=limit, offset=offset)
    if delivery_id is None:
        return body
    return {**body, "deliveries": ledger.deliveries(delivery_id=delivery_id)}


@router.get("/events/{event_id}", dependencies=READ)
def get_event(event_id: str, app_reactor: Reactor = Depends(reactor)) -> dict[str, Any]:
    event = app_reactor.ledger.get_event(event_id)
    if event is None:
        raise HTTPException(404, detail=f"no event {event_id}")
    return event


@router.post(
    "/events/{event_id}/replay",
    status_code=202,
    dependencies=WRITE,
    openapi_extra=body_doc(ReplayRequest, required=False),
)
def replay(
    event_id: str,
    body: ReplayRequest | None = Depends(strict_body(ReplayRequest, required=False)),
    app_reactor: Reactor = Depends(reactor),
) -> dict[str, Any]:
    result = app_reactor.replay(event_id, force=bool(body and body.force))
    if result is None:
        raise HTTPException(404, detail=f"no event {event_id}")
    return result


@router.get("/actions", dependencies=READ)
def list_actions(
    request: Request,
    model: str | None = None,
    version: str | None = None,
    kind: Literal["register", "deploy", "batch_score", "rollback", "validate", "approve"] | None = None,
    status: Literal[STATUSES] | None = None,  # type: ignore[valid-type]
    limit: int = Query(100, ge=1, le=1000, description=LIMIT_DOC),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    app_reactor: Reactor = Depends(reactor),
) -> dict[str, Any]:
    actions = app_reactor.ledger.list_actions(
        model=model, version=version, kind=kind, status=status, limit=limit + 1, offset=offset
    )
    return page_of("actions", [a.to_dict() for a in actions], request, limit=limit, offset=offset)


def page_of(name: str, rows: list[Any], request: Request, *, limit: int, offset: int) -> dict[str, Any]:
    """``limit`` of ``rows`` (read one past it) and, when more match, ``next``: the request for the next page."""
    body: dict[str, Any] = {name: rows[:limit]}
    if len(rows) > limit and offset + limit <= MAX_OFFSET:
        query = urlencode({**request.query_params, "limit": limit, "offset": offset + limit})
        body["next"] = f"{request.url.path}?{query}"
    return body


@router.get("/actions/{action_id}", dependencies=READ)
def get_action(action_id: str, app_reactor: Reactor = Depends(reactor)) -> dict[str, Any]:
    action = app_reactor.ledger.get_action(action_id)
    if action is None:
        raise HTTPException(404, detail=f"no action {action_id}")
    return {**action.to_dict(), "log": app_reactor.ledger.action_log(action_id)}


@router.post("/actions", status_code=202, dependencies=WRITE, openapi_extra=body_doc(ActionRequest, required=True))
def request_action(
    body: ActionRequest = Depends(strict_body(ActionRequest, required=True)), app_reactor: Reactor = Depends(reactor)
) -> JSONResponse:
    result = app_reactor.request_action(
        kind=body.kind,
        target=body.target,
        model_name=body.model_name,
        model_version=str(body.model_version),
        source=body.source,
        force=body.force,
    )
    out = result.to_dict()
    out["action_id"] = result.action_ids[0]
    return JSONResponse(out, status_code=200 if result.duplicate else 202)


@router.get("/deployments", dependencies=READ)
def deployments(app_reactor: Reactor = Depends(reactor)) -> dict[str, Any]:
    """Local servers the reactor runs (with liveness) and the configured cloud targets."""
    from shared.deployments import list_managed_deployments

    return {"deployments": list_managed_deployments(app_reactor.config, app_reactor.settings.state_dir)}


@router.post("/cleanup", dependencies=WRITE, openapi_extra=body_doc(CleanupRequest, required=False))
async def cleanup(
    body: CleanupRequest | None = Depends(strict_body(CleanupRequest, required=False)),
    app_reactor: Reactor = Depends(reactor),
) -> dict[str, Any]:
    from shared.service.cleanup import run_cleanup_and_record

    dry_run = True if body is None else body.dry_run
    _, report = await run_in_threadpool(run_cleanup_and_record, app_reactor, apply=not dry_run)
    return report
