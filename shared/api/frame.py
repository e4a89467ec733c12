"""What every FastAPI app of the reactor shares: state, correlation, the error shape, one start-up notice.

Two apps are built from it over one container. `shared.api.app.create_app` is the whole surface
(webhooks, ops API, audit page, docs). `create_hooks_app` is the webhook routes alone, with the same
middleware and refusals: under the Functions host a webhook after a cold start builds only that
(the ops API's and audit page's 30-odd routes are most of what building the whole app costs, and
FastAPI resolves every route's dependencies when it is declared).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from shared import __version__, telemetry
from shared.api import errors, hooks
from shared.api.deps import ReactorSource
from shared.api.opsauth import OpsGuard


def new_app(container: ReactorSource, **options: Any) -> FastAPI:
    """A FastAPI app over ``container`` with its state, correlation middleware and error handlers."""
    app = FastAPI(title="modelops-reactor", version=__version__, **options)
    telemetry.setup_logging(container.settings)  # correlation + redaction; the host or the CLI owns the handlers
    telemetry.install_http_correlation(app)
    app.state.settings = container.settings
    app.state.container = container
    app.state.ops_guard = guard = OpsGuard(container.settings.ops_auth)
    if not getattr(container, "http_announced", False):  # once per process, however many apps it builds
        guard.warn_if_open()
        hooks.warn_unsigned(container.config, container.settings)
        container.http_announced = True  # type: ignore[attr-defined]
    errors.install(app)
    return app


def create_hooks_app(container: ReactorSource) -> FastAPI:
    """The webhook routes alone (no docs: `create_app`'s OpenAPI document describes them)."""
    app = new_app(container, openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(hooks.router)
    return app
