"""Trigger adapters for the Functions host: each turns its input into a call on the container's reactor."""

from __future__ import annotations

import azure.functions as func

from shared.bootstrap import Container


def build_function_app(container: Container) -> func.AsgiFunctionApp:
    """The HTTP app and every native function, all over one container (one reactor per process)."""
    from functions import eventgrid_trigger, queue_worker, timers

    app = func.AsgiFunctionApp(
        app=container.http_app(), http_auth_level=func.AuthLevel.FUNCTION, function_name="http_api"
    )
    app.register_functions(eventgrid_trigger.blueprint(container))
    app.register_functions(queue_worker.blueprint(container))
    app.register_functions(timers.blueprint(container))
    return app
