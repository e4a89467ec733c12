"""Trigger adapters for the Functions host: each turns its input into a call on the container's reactor."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.bootstrap import Container


class HttpAppOnFirstCall:
    """The container's FastAPI app as an ASGI callable that builds it on its first call (a request
    or the lifespan start). Indexing needs the HTTP function's binding, not the routes: building
    them (shared.api, its pydantic models, OpenAPI) was a third of what `import function_app`
    added to its two frameworks. The config is validated before, by the container, at start."""

    def __init__(self, container: Container) -> None:
        self.container = container

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self.container.http_app()(scope, receive, send)


def build_function_app(container: Container) -> func.AsgiFunctionApp:
    """The HTTP app and every native function, all over one container (one reactor per process)."""
    from functions import eventgrid_trigger, queue_worker, timers

    app = func.AsgiFunctionApp(
        app=HttpAppOnFirstCall(container), http_auth_level=func.AuthLevel.FUNCTION, function_name="http_api"
    )
    app.register_functions(eventgrid_trigger.blueprint(container))
    app.register_functions(queue_worker.blueprint(container))
    app.register_functions(timers.blueprint(container))
    return app
