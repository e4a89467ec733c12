"""The one FastAPI app: hosted in Functions through AsgiFunctionApp, locally by uvicorn."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from shared import __version__, telemetry
from shared.api import errors, hooks, ops
from shared.api.deps import ReactorHolder
from shared.config.loader import load_config
from shared.service.reactor import Reactor, build_reactor
from shared.settings import Settings


def create_app(reactor_factory: Callable[[], Reactor] | None = None, *, settings: Settings | None = None) -> FastAPI:
    """Build the HTTP app. The config is validated now (an invalid one is refused at start);
    the ledger opens on the first request."""
    settings = settings or Settings.from_env()
    if reactor_factory is None:
        load_config(settings.config_path, env=settings.config_env())
        frozen = settings

        def reactor_factory() -> Reactor:
            return build_reactor(frozen)

    app = FastAPI(
        title="modelops-reactor",
        version=__version__,
        description="Model-registry events in, registered/deployed/scored models out.",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
    )
    telemetry.setup_logging()  # correlation + redaction; the host or the CLI owns the handlers
    telemetry.install_http_correlation(app)
    app.state.settings = settings
    app.state.reactor_holder = ReactorHolder(reactor_factory)
    errors.install(app)
    app.include_router(hooks.router)
    app.include_router(ops.router)
    return app
