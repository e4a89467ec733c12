"""One cold start, as the Functions host pays it: index an app, then make one first call.

    python benchmarks/first_call.py {reactor|bare} {import|webhook|eventgrid|queue} [ID]

`cold_start.py` runs this in a fresh interpreter per sample. ``reactor`` indexes `function_app`
(the settings read, the config validated, every function declared); ``bare`` indexes the floor: a
`func.AsgiFunctionApp` over a one-route FastAPI app, with an Event Grid and a queue function that
only decode their input. Then the first call, through the indexed function's user function, as the
host's Python worker calls it:

- ``import``: none (the old import-only figure);
- ``webhook``: one signed MLflow `model_version.created` delivery to `POST /api/hooks/mlflow`
  (the reactor records the event and its action: 202); the bare route reads the body, answers 202;
- ``eventgrid``: one Azure ML `ModelRegistered` event (the reactor records it);
- ``queue``: one `run_action` message naming an action that is already done (a host retry's
  duplicate: the ledger is read, nothing runs; what runs an action is the action's own work).

``ID`` makes the call new: the file of a signed delivery (``webhook``), a version number
(``eventgrid``) or the action id (``queue``). The environment names the config and the state dir
(cold_start.py sets them). Prints one line of JSON: what the call answered.
"""

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench-model"


def bare_app() -> Any:
    # (no `from __future__ import annotations` in this file: FastAPI resolves the route's `Request`
    # annotation from the function's globals, which a string annotation of a local import misses)
    import azure.functions as func
    from fastapi import FastAPI, Request, Response

    api = FastAPI()

    @api.post("/api/hooks/mlflow")
    async def hook(request: Request) -> Response:
        await request.body()
        return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")

    app = func.AsgiFunctionApp(app=api, http_auth_level=func.AuthLevel.FUNCTION, function_name="http_api")

    @app.function_name("aml_events")
    @app.event_grid_trigger(arg_name="event")
    def aml_events(event: func.EventGridEvent) -> None:
        event.get_json()

    @app.function_name("run_action")
    @app.queue_trigger(arg_name="message", queue_name="actions", connection="AzureWebJobsStorage")
    def run_action(message: func.QueueMessage) -> None:
        json.loads(message.get_body())

    return app


def webhook_request(path: str) -> Any:
    """The delivery cold_start.py signed and wrote to ``path`` (signing is not what is measured)."""
    import azure.functions as func

    delivery = json.loads(Path(path).read_text())
    url, body = "http://localhost/api/hooks/mlflow", delivery["body"].encode()
    return func.HttpRequest(method="POST", url=url, body=body, headers=delivery["headers"])


def first_call(functions: dict[str, Any], scenario: str, ident: str) -> dict[str, Any]:
    import azure.functions as func

    if scenario == "webhook":
        response = asyncio.run(functions["http_api"].get_user_function()(webhook_request(ident), None))
        return {"status": response.status_code, "body": json.loads(response.get_body() or b"{}")}
    if scenario == "eventgrid":
        event = func.EventGridEvent(
            id=str(uuid.uuid4()),
            data={"ModelName": MODEL, "ModelVersion": ident},
            topic="/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws",
            subject=f"models/{MODEL}:{ident}",
            event_type="Microsoft.MachineLearningServices.ModelRegistered",
            event_time=None,
            data_version="2",
        )
        functions["aml_events"].get_user_function()(event)
        return {"status": "called"}
    if scenario == "queue":
        functions["run_action"].get_user_function()(func.QueueMessage(body=json.dumps({"action_id": ident}).encode()))
        return {"status": "called"}
    return {"status": "indexed"}


def main() -> None:
    side, scenario = sys.argv[1], sys.argv[2]
    ident = sys.argv[3] if len(sys.argv) > 3 else "1"
    if side == "reactor":
        sys.path.insert(0, os.environ.get("COLD_START_TREE") or str(ROOT))  # cold_start.py --reactor-tree
        import function_app

        app = function_app.app
    else:
        app = bare_app()
    functions = {f.get_function_name(): f for f in app.get_functions()}
    print(json.dumps(first_call(functions, scenario, ident)))


if __name__ == "__main__":
    main()
