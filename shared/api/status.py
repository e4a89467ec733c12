"""`GET /api/status`: desired against actual per (target, source, model) line (shared/service/status.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from starlette.concurrency import run_in_threadpool

from shared.api.deps import reactor
from shared.api.opsauth import reader
from shared.service.reactor import Reactor

router = APIRouter(prefix="/api", tags=["ops"])


@router.get(
    "/status",
    dependencies=[Depends(reader)],
    summary="What each target should serve (the registry), what it serves (the target), and their sync",
)
async def status(
    source: str | None = Query(default=None, description="only this source's lines"),
    app_reactor: Reactor = Depends(reactor),
) -> dict[str, Any]:
    from shared.errors import NotFound
    from shared.service.status import readable_line_statuses

    if source is not None and source not in app_reactor.config.sources:
        known = ", ".join(app_reactor.config.sources) or "none"
        raise NotFound(f"no source named {source!r}; configured: {known}", field="source")
    lines = await run_in_threadpool(readable_line_statuses, app_reactor, sources=[source] if source else None)
    return {"targets": [line.to_dict() for line in lines]}
