"""The one FastAPI app: hosted in Functions through AsgiFunctionApp, locally by uvicorn."""

from __future__ import annotations

from fastapi import FastAPI

from shared import __version__, telemetry
from shared.api import approvals, errors, hooks, openapi, ops, plan, rollback, status
from shared.api.deps import ReactorSource
from shared.api.opsauth import OpsGuard
from shared.api.ui import approvals as ui_approvals
from shared.api.ui import routes as ui


def create_app(container: ReactorSource) -> FastAPI:
    """The HTTP app over the container's reactor (its ledger opens on the first request)."""
    app = FastAPI(
        title="modelops-reactor",
        version=__version__,
        description="Model-registry events in, registered/deployed/scored models out.",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served by shared/api/openapi.py from the installed swagger-ui-bundle
        redoc_url=None,
    )
    telemetry.setup_logging(container.settings)  # correlation + redaction; the host or the CLI owns the handlers
    telemetry.install_http_correlation(app)
    app.state.settings = container.settings
    app.state.container = container
    app.state.ops_guard = guard = OpsGuard(container.settings.ops_auth)
    guard.warn_if_open()
    hooks.warn_unsigned(container.config, container.settings)
    errors.install(app)
    app.include_router(hooks.router)
    app.include_router(ops.router)
    app.include_router(plan.router)
    app.include_router(ui.router)
    app.include_router(ui.public)
    app.include_router(rollback.router)
    app.include_router(status.router)
    app.include_router(approvals.router)
    app.include_router(ui_approvals.router)
    openapi.install(app, guard, container.config)
    return app
