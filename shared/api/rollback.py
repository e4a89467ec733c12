"""`POST /api/deployments/{target}/rollback`: a deployment target back to the version it kept."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shared.api.deps import body_doc, reactor, strict_body
from shared.api.opsauth import operator
from shared.service.reactor import Reactor

router = APIRouter(prefix="/api", tags=["ops"])


class RollbackRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(
        default=None, min_length=1, description="only this model's versions (default: the one serving)"
    )
    to: str | int | None = Field(default=None, description="the version to go back to (default: the one served before)")


@router.post(
    "/deployments/{target}/rollback",
    status_code=202,
    dependencies=[Depends(operator)],
    summary="Roll a deployment target back to the version it kept (smoke-tested before the switch)",
    openapi_extra=body_doc(RollbackRequest, required=False),
)
async def rollback(
    target: str,
    body: RollbackRequest | None = Depends(strict_body(RollbackRequest, required=False)),
    app_reactor: Reactor = Depends(reactor),
) -> JSONResponse:
    model = body.model if body else None
    to = None if body is None or body.to is None else str(body.to)
    result = await run_in_threadpool(app_reactor.request_rollback, target, model=model, to=to)
    out = {**result.to_dict(), "action_id": result.action_ids[0]}
    return JSONResponse(out, status_code=200 if result.duplicate else 202)
