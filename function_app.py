"""modelops-reactor as an Azure Functions app (Python v2 model): builds the app, registers blueprints."""

import azure.functions as func

from functions import eventgrid_trigger, queue_worker, timers
from functions.http_app import build_http_app

app = func.AsgiFunctionApp(app=build_http_app(), http_auth_level=func.AuthLevel.FUNCTION, function_name="http_api")
app.register_functions(eventgrid_trigger.bp)
app.register_functions(queue_worker.bp)
app.register_functions(timers.bp)
