"""What ACI / AKS do with a web service the Model Management Service creates: build the environment,
start the container, run the entry script's `init()`, then answer `run()` on the scoring URI.

The container is an in-process ASGI app over HTTPS that executes the entry script azureml-core
*uploaded* (not a copy of ours), with `AZUREML_MODEL_DIR` pointing at the registered model's files,
as Azure ML's inference server does. A failing `init()` is a crash loop: the deployment fails with
the traceback in the service logs, as on ACI.
"""

from __future__ import annotations

import os
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from tests.contract.https import HttpsServer, TestCA

_env_lock = threading.Lock()  # AZUREML_MODEL_DIR is process-wide: one init() at a time


@dataclass
class Container:
    """One running scoring container: the entry script's namespace behind an HTTPS server."""

    server: HttpsServer
    namespace: dict[str, Any]
    keys: tuple[str, str]
    logs: list[str] = field(default_factory=list)
    requests: int = 0

    @property
    def scoring_uri(self) -> str:
        return f"{self.server.url}/score"

    def stop(self) -> None:
        self.server.__exit__(None, None, None)


class CrashLoop(Exception):
    """init() raised: the container restarts forever and the deployment fails."""

    def __init__(self, logs: str) -> None:
        super().__init__(logs)
        self.logs = logs


def start_container(script: str, model_dir: str, keys: tuple[str, str], ca: TestCA) -> Container:
    """Run ``script``'s init() on the model; on success serve run() at /score behind the service keys."""
    namespace: dict[str, Any] = {"__name__": "score"}
    logs = [
        "Starting gunicorn",
        "Initializing logger",
        "Starting up app insights client",
        "Invoking user's init function",
    ]
    try:
        with _env_lock:
            previous = os.environ.get("AZUREML_MODEL_DIR")
            os.environ["AZUREML_MODEL_DIR"] = model_dir
            try:
                exec(compile(script, "/var/azureml-app/score.py", "exec"), namespace)  # noqa: S102 - uploaded script
                namespace["init"]()
            finally:
                if previous is None:
                    os.environ.pop("AZUREML_MODEL_DIR", None)
                else:
                    os.environ["AZUREML_MODEL_DIR"] = previous
    except Exception:  # noqa: BLE001 - whatever init() raises crashes the container
        logs += ["User's init function failed", "Encountered Exception Traceback:", traceback.format_exc()]
        logs.append("Worker exiting (pid: 42)")
        raise CrashLoop("\n".join(logs)) from None
    logs.append("Users's init has completed successfully")
    app = FastAPI()
    container: Container

    @app.post("/score")
    async def score(request: Request) -> JSONResponse:
        if request.headers.get("authorization") not in {f"Bearer {k}" for k in keys}:
            return JSONResponse({"message": "Unauthorized"}, status_code=401)
        container.requests += 1
        try:
            return JSONResponse(namespace["run"]((await request.body()).decode()))
        except Exception as exc:  # noqa: BLE001 - the inference server answers 502 with the message
            container.logs.append(traceback.format_exc())
            return JSONResponse({"message": f"An unexpected error occurred in scoring script: {exc}"}, status_code=502)

    server = HttpsServer(app, ca).__enter__()
    container = Container(server=server, namespace=namespace, keys=keys, logs=logs)
    return container
