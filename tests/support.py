"""Helpers for tests that run the real stack: models in real MLflow stores, a reactor process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests

from functions import build_function_app
from shared.bootstrap import Container
from shared.ingest.signatures import sign_databricks, sign_mlflow
from shared.local.processes import free_port, stop_process, wait_http

ROOT = Path(__file__).resolve().parents[1]


def doc(page: str) -> str:
    """A page of the user docs (docs/PAGE), whose examples and commands the tests run as written."""
    return (ROOT / "docs" / page).read_text()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def train_and_register(
    tracking_uri: str,
    name: str,
    *,
    bias: float = 0.0,
    accuracy: float = 0.95,
    run_tags: dict[str, str] | None = None,
    pip_requirements: list[str] | None = None,
) -> tuple[str, Any]:
    """Log a small sklearn model (with signature and input example) and register it. Returns
    (version, input example DataFrame). ``pip_requirements`` given skips MLflow's inference of them
    (a subprocess that re-imports the model: ~15 s on a busy machine)."""
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(7)
    x = pd.DataFrame(rng.normal(size=(64, 3)), columns=["a", "b", "c"])
    y = x["a"] * 2 - x["b"] + bias
    model = LinearRegression().fit(x, y)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name("tests") or client.get_experiment(client.create_experiment("tests"))
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri  # mlflow.<flavor>.log_model has no client argument
    try:
        mlflow.set_tracking_uri(tracking_uri)
        with mlflow.start_run(experiment_id=exp.experiment_id, tags=run_tags) as run:
            mlflow.log_metric("accuracy", accuracy)
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                signature=infer_signature(x, model.predict(x)),
                input_example=x.head(3),
                pip_requirements=pip_requirements,
            )
        mv = client.create_model_version(name=_ensure(client, name), source=info.model_uri, run_id=run.info.run_id)
    finally:
        # back to "unset" first: that also pops MLFLOW_TRACKING_URI, so restore it afterwards.
        # mlflow annotates `uri: str | Path`, but its body handles None (the initial value) as unset
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous
    return str(mv.version), x.head(5)


def _ensure(client: Any, name: str) -> str:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    return name


def write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


class ReactorProcess:
    """`modelops serve` (or `modelops worker`) as a real process with its own state dir."""

    def __init__(
        self,
        state_dir: Path,
        config: Path,
        *,
        command: str = "serve",
        env: dict[str, str] | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.port = free_port()
        self.env = {**os.environ, "MODELOPS_STATE_DIR": str(state_dir), "MODELOPS_CONFIG": str(config), **(env or {})}
        self.env.pop("MLFLOW_TRACKING_URI", None)
        self.command = [sys.executable, "-m", "shared.cli.main", command]
        if command == "serve":
            self.command += ["--port", str(self.port)]
        self.command += extra or []
        self.log = state_dir / f"{command}-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ReactorProcess:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        handle = self.log.open("ab")
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
        if self.command[3] == "serve":
            wait_http(f"{self.url}/api/health", timeout=90, process=self.process, log=self.log)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, like a crashed host."""
        assert self.process is not None
        os.killpg(self.process.pid, 9)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)

    def __enter__(self) -> ReactorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(predicate: Callable[[], Any], *, timeout: float = 180, interval: float = 0.3, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


def actions_for(base_url: str, model: str) -> list[dict[str, Any]]:
    response = requests.get(f"{base_url}/api/actions", params={"model": model}, timeout=10)
    response.raise_for_status()
    return list(response.json()["actions"])


def mlflow_delivery(
    secret: str, envelope: dict[str, Any], *, delivery_id: str | None = None, timestamp: int | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(envelope).encode()
    delivery_id = delivery_id or str(uuid.uuid4())
    ts = str(int(time.time()) if timestamp is None else timestamp)
    headers = {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": sign_mlflow(secret, delivery_id, ts, body),
    }
    return body, headers


def databricks_delivery(secret: str, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", "X-Databricks-Signature": sign_databricks(secret, body)}


_INDEXED: list[Any] = []


def indexed_functions(container: Container | None = None) -> dict[str, Any]:
    """The Functions app's functions by name, as the host indexes them.

    Without a container: `function_app`'s own, indexed once per process (the host indexes once
    too; azure-functions refuses a second get_functions() on the same app). With one: a fresh app
    built the way `function_app` builds it, over that container."""
    if container is not None:
        return {str(f.get_function_name()): f for f in build_function_app(container).get_functions()}
    if not _INDEXED:
        import function_app

        _INDEXED.extend(function_app.app.get_functions())
    return {f.get_function_name(): f for f in _INDEXED}
