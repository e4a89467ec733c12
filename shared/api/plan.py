"""`POST /api/plan`: what the current rules would plan for an event; nothing recorded or dispatched."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from shared.api import hook_bodies
from shared.api.deps import body_doc, reactor, strict_body
from shared.api.opsauth import operator
from shared.domain.events import KINDS
from shared.errors import BadRequest
from shared.service.reactor import Reactor
from shared.service.whatif import from_fields, from_payload, what_if

router = APIRouter(prefix="/api", tags=["ops"])


class PlanEvent(BaseModel):
    """An event described by its fields."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal[tuple(sorted(KINDS))] = Field(description="normalized event kind")  # type: ignore[valid-type]
    model_name: str | None = Field(default=None, description="registered model name")
    model_version: str | int | None = Field(default=None, description="model version")
    alias: str | None = Field(default=None, description="alias (model_version.alias_set)")
    stage: str | None = Field(default=None, description="stage (model_version.stage_changed)")
    source: str | None = Field(default=None, description="the source it comes from (default: the first)")
    tags: dict[str, str] = Field(default_factory=dict, description="the event's tags")
    run_id: str | None = Field(default=None, description="run id (run events)")
    metrics: dict[str, float] = Field(default_factory=dict, description="run metrics (run events)")
    model_uri: str | None = Field(default=None, description="a run's logged model; without it a run is resolved first")


class PlanRequest(BaseModel):
    """A sender's body (`payload`, optionally read as the named `source`'s), or an `event`'s fields."""

    model_config = ConfigDict(extra="forbid")
    payload: dict[str, Any] | list[Any] | None = Field(default=None, description="a sender's webhook body")
    source: str | None = Field(default=None, description="the source the payload is read as (with payload)")
    event: PlanEvent | None = Field(default=None, description="the event's fields (instead of a payload)")


@router.post(
    "/plan",
    dependencies=[Depends(operator)],
    summary="What the current rules would plan for an event (what-if; nothing recorded or dispatched)",
    openapi_extra=body_doc(PlanRequest, required=True),
)
def plan(
    body: PlanRequest = Depends(strict_body(PlanRequest, required=True)), app_reactor: Reactor = Depends(reactor)
) -> dict[str, Any]:
    config = app_reactor.config
    if (body.payload is None) == (body.event is None):
        raise BadRequest("give either `payload` (a sender's body) or `event` (its fields)", field="body")
    if body.event is not None:
        if body.source is not None:
            raise BadRequest("`source` goes with `payload`; an `event` names its own `source`", field="source")
        e = body.event
        version = None if e.model_version is None else str(e.model_version)
        fields = {**e.model_dump(exclude={"model_version"}), "model_version": version}
        return {"format": "event", "events": [what_if(config, from_fields(config, **fields))]}
    kind, events = from_payload(config, body.payload, source=body.source)
    return {"format": kind, "events": [what_if(config, event) for event in events]}


_VERSION = {"oneOf": [{"type": "string", "pattern": "\\S"}, {"type": "integer"}], "description": "model version"}
# the payloads `POST /api/plan` documents: narrower than the webhook bodies (every field a parser
# requires is required here), so that any body the document allows is one the route plans
PLAN_PAYLOADS: dict[str, dict[str, Any]] = {
    "mlflow": {
        **hook_bodies.MLFLOW,
        "properties": {
            **hook_bodies.MLFLOW["properties"],
            "data": {
                **hook_bodies.MLFLOW["properties"]["data"],
                "required": ["name", "version", "alias", "key"],
                "properties": {**hook_bodies.MLFLOW["properties"]["data"]["properties"], "version": _VERSION},
            },
        },
    },
    "databricks": {
        "description": hook_bodies.DATABRICKS["description"],
        "oneOf": [
            {
                "type": "object",
                "required": ["event", "model_name", "version"],
                "not": {"required": ["event_type"]},
                "properties": {
                    **hook_bodies.DATABRICKS["properties"],
                    "event": {"type": "string", "minLength": 1},
                    "model_name": {"type": "string", "minLength": 1},
                    "version": _VERSION,
                },
            },
            {
                "type": "object",
                "required": ["event_type", "run"],
                "properties": {
                    "event_type": {"type": "string", "examples": ["jobs.on_success", "jobs.on_failure"]},
                    "workspace_id": {"type": ["string", "integer"]},
                    "run": {
                        "type": "object",
                        "required": ["run_id"],
                        "properties": {"run_id": {"oneOf": [{"type": "string", "minLength": 1}, {"type": "integer"}]}},
                    },
                    "job": {"type": "object"},
                },
            },
        ],
    },
    "azureml": hook_bodies.EVENTGRID,
}
