"""`GET /api/approvals` (pending approvals with their evidence) and `POST /api/actions/{id}/approve`."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from shared.api.approverauth import approver
from shared.api.deps import body_doc, reactor, strict_body
from shared.api.opsauth import reader
from shared.service import approvals
from shared.service.reactor import Reactor

router = APIRouter(prefix="/api", tags=["ops"])


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["approve", "reject"] = Field(description="approve or reject")
    comment: str | None = Field(default=None, max_length=2000, description="why (kept in the audit trail)")


@router.get("/approvals", dependencies=[Depends(reader)], summary="Approvals waiting for a decision")
def pending(app_reactor: Reactor = Depends(reactor)) -> dict[str, Any]:
    return {"approvals": approvals.pending(app_reactor)}


@router.post(
    "/actions/{action_id}/approve",
    summary="Approve or reject a waiting approval (the approver role); a second decision is refused (409)",
    openapi_extra=body_doc(DecisionRequest, required=True),
)
async def decide(
    action_id: str,
    who: str = Depends(approver),
    body: DecisionRequest = Depends(strict_body(DecisionRequest, required=True)),
    app_reactor: Reactor = Depends(reactor),
) -> dict[str, Any]:
    decision = approvals.Decision(body.decision, who, body.comment, via="api")
    action = await run_in_threadpool(approvals.decide, app_reactor, action_id, decision)
    return {"action_id": action.id, "status": action.status, "outputs": action.outputs.to_dict()}
