"""Trigger adapters for the Functions host: each turns its input into a call on the container's reactor."""

from __future__ import annotations

from typing import Any

import azure.functions as func

from shared.bootstrap import Container

HOOKS_PREFIX = "/api/hooks/"


class HttpAppOnFirstCall:
    """The container's FastAPI apps as one ASGI callable that builds them on first use. Indexing
    needs the HTTP function's binding, not the routes. A webhook (`/api/hooks/...`) is answered by
    the webhook routes alone (`Container.hooks_app`): the first webhook after a cold start, what a
    registry waits on, does not build the ops API and audit page; any other path builds the whole
    app. Neither app has start-up or shutdown work, so the host's lifespan messages are answered
    here without building either. The config is validated before, by the container, at start."""

    def __init__(self, container: Container) -> None:
        self.container = container

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
        elif str(scope.get("path", "")).startswith(HOOKS_PREFIX):
            await self.container.hooks_app()(scope, receive, send)
        else:
            await self.container.http_app()(scope, receive, send)


async def answer_lifespan(receive: Any, send: Any) -> None:
    """The ASGI lifespan protocol for apps with nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


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
