"""`modelops demo`: the whole loop on embedded defaults, on this machine, leaving nothing running.

A real MLflow server sends signed webhooks to the reactor; the reactor copies the model into
the local stand-in for Azure ML, serves the champion with `mlflow models serve`, batch-scores a
file with it, and dry-runs the cleanup policy. Every step is read back from the ledger.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from shared.local.mlflow_server import MlflowServer
from shared.local.processes import free_port
from shared.settings import Settings

MODEL = "demo-churn"


@dataclass
class DemoResult:
    """How it went, with the events and actions of the run (as the ledger returns them) for the summary."""

    ok: bool
    finished: str
    events: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)


def run_demo(
    state_dir: Path, base_env: Mapping[str, str], *, rows: int = 200_000, say: Callable[[str], None] = print
) -> DemoResult:
    """The loop; ``base_env`` is the app settings it starts from (the embedded default config is used)."""
    state_dir = state_dir.resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(24)
    started = time.monotonic()
    say(f"demo state: {state_dir}")
    say("1/7 starting a local MLflow server (SQL backend, webhooks to loopback allowed) ...")
    with MlflowServer(state_dir / "mlflow-source") as server:
        # the embedded default config, pointed at this MLflow server, signed with a fresh secret
        settings = Settings.from_env(
            {
                **{k: v for k, v in base_env.items() if k != "MODELOPS_CONFIG"},
                "MLFLOW_TRACKING_URI": server.url,
                "MODELOPS_STATE_DIR": str(state_dir),
                "MLFLOW_WEBHOOK_SECRET": secret,
            }
        )
        with _reactor(settings) as (reactor, url):
            try:
                return _loop(reactor, url, server, secret, state_dir, rows, say, started)
            finally:  # whatever happened, leave no scoring server behind
                from shared.deployments import undeploy_local

                undeploy_local(reactor.config, reactor.settings.state_dir, "local", ledger=reactor.ledger)


@contextmanager
def _reactor(settings: Settings) -> Iterator[tuple[Any, str]]:
    import uvicorn

    from shared.bootstrap import Container
    from shared.service.dispatch import LocalDispatcher

    dispatcher = LocalDispatcher()
    container = Container(settings, dispatcher=dispatcher)
    reactor = container.reactor()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            container.http_app(),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="off",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    stop = threading.Event()
    workers = reactor.start_workers(2, stop, dispatcher.wakeup)
    while not server.started:
        time.sleep(0.05)
    try:
        yield reactor, f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        dispatcher.wakeup.set()
        server.should_exit = True
        thread.join(timeout=15)
        for worker in workers:
            worker.join(timeout=60)


def _loop(
    reactor: Any,
    url: str,
    server: MlflowServer,
    secret: str,
    state_dir: Path,
    rows: int,
    say: Callable[[str], None],
    started: float,
) -> DemoResult:
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=server.url)
    say(f"2/7 reactor listening on {url}/api; registering its webhook in MLflow (signed) ...")
    client.create_webhook(
        name="modelops-reactor",
        url=f"{url}/api/hooks/mlflow",
        secret=secret,
        events=["model_version.created", "model_version_alias.created"],
    )
    say(f"3/7 training a small model and registering {MODEL} ...")
    version, example = _train_and_register(server.url, state_dir, rows)
    register = _wait(reactor, lambda: _finished(_actions(reactor, "register"), 1), "the register action")
    say(f"    copied into the local Azure ML stand-in as {register[0].outputs.to_dict().get('model_uri')}")
    say("4/7 setting alias 'champion': register (reused) -> deploy locally -> batch score ...")
    client.set_registered_model_alias(MODEL, "champion", version)
    _wait(reactor, lambda: _chain_done(reactor), "deploy and batch_score", timeout=900)
    deploy = _actions(reactor, "deploy")[0]
    batch = _actions(reactor, "batch_score")[0]
    ok = deploy.status == "succeeded" and batch.status == "succeeded"
    prediction = None
    if deploy.status == "succeeded":
        say(f"5/7 scoring a request at {deploy.outputs.to_dict()['scoring_url']} ...")
        response = requests.post(
            deploy.outputs.to_dict()["scoring_url"], json={"dataframe_split": example.to_dict("split")}, timeout=60
        )
        ok = ok and response.ok
        prediction = response.json()
        say(f"    {response.status_code}: {str(prediction)[:120]}")
    if batch.status == "succeeded":
        say(f"6/7 batch-scored {batch.outputs.to_dict().get('rows'):,} rows -> {batch.outputs.to_dict().get('output')}")
    say("7/7 cleanup dry run over local deployments ...")
    from shared.service.cleanup import run_cleanup_and_record

    report, _ = run_cleanup_and_record(reactor, apply=False)
    say(f"    {report.counts()}")
    ok = ok and all(a.status == "succeeded" for a in reactor.ledger.list_actions(limit=1000))
    actions = sorted(reactor.ledger.list_actions(limit=1000), key=lambda a: (a.started_at or a.created_at, a.id))
    return DemoResult(
        ok=ok,
        finished=f"demo finished in {time.monotonic() - started:.0f}s: "
        f"{'all actions succeeded' if ok else 'SOME ACTIONS FAILED'}",
        events=list(reversed(reactor.ledger.list_events(limit=100))),
        actions=[a.to_dict() for a in actions],
    )


def _train_and_register(tracking_uri: str, state_dir: Path, rows: int) -> tuple[str, Any]:
    import mlflow
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(42)
    x = pd.DataFrame(rng.normal(size=(rows, 4)), columns=["tenure", "spend", "tickets", "usage"])
    y = (x["tickets"] - x["tenure"] + rng.normal(scale=0.5, size=rows) > 0).astype(int)
    model = LogisticRegression().fit(x.head(20_000), y.head(20_000))
    batch_input = state_dir / "batch" / "input.parquet"
    batch_input.parent.mkdir(parents=True, exist_ok=True)
    x.to_parquet(batch_input)
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name("demo") or client.get_experiment(client.create_experiment("demo"))
    mlflow.set_tracking_uri(tracking_uri)
    try:
        with mlflow.start_run(experiment_id=experiment.experiment_id) as run:
            mlflow.log_metric("accuracy", float(model.score(x.head(5000), y.head(5000))))
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=x.head(5),
                signature=infer_signature(x.head(5), model.predict(x.head(5))),
            )
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # None restores the default
    try:
        client.create_registered_model(MODEL)
    except mlflow.exceptions.MlflowException:
        pass  # a re-run of the demo on the same state dir
    mv = client.create_model_version(MODEL, source=info.model_uri, run_id=run.info.run_id)
    return str(mv.version), x.head(5)


def _actions(reactor: Any, kind: str) -> list[Any]:
    return reactor.ledger.list_actions(model=MODEL, kind=kind)


def _finished(actions: list[Any], count: int) -> list[Any] | None:
    done = len(actions) == count and all(a.status in ("succeeded", "failed", "skipped") for a in actions)
    return actions if done else None


def _chain_done(reactor: Any) -> list[Any] | None:
    return _finished(_actions(reactor, "deploy") + _actions(reactor, "batch_score"), 2)


def _wait(reactor: Any, predicate: Callable[[], Any], what: str, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; see `modelops actions`")
