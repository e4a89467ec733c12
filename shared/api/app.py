"""The one FastAPI app: hosted in Functions through AsgiFunctionApp, locally by uvicorn."""

from __future__ import annotations

from fastapi import FastAPI

from shared.api import approvals, hooks, openapi, ops, plan, rollback, status
from shared.api.deps import ReactorSource
from shared.api.frame import new_app
from shared.api.ui import approvals as ui_approvals
from shared.api.ui import routes as ui


def create_app(container: ReactorSource) -> FastAPI:
    """The HTTP app over the container's reactor (its ledger opens on the first request)."""
    app = new_app(
        container,
        description="Model-registry events in, registered/deployed/scored models out.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served by shared/api/openapi.py from the installed swagger-ui-bundle
        redoc_url=None,
    )
    app.include_router(hooks.router)
    app.include_router(ops.router)
    app.include_router(plan.router)
    app.include_router(ui.router)
    app.include_router(ui.public)
    app.include_router(rollback.router)
    app.include_router(status.router)
    app.include_router(approvals.router)
    app.include_router(ui_approvals.router)
    openapi.install(app, app.state.ops_guard, container.config)
    return app
