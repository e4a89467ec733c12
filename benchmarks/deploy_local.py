"""Benchmark: local deploy (execute() -> endpoint answers) vs a bare `mlflow models serve` start (-> /ping).

    python benchmarks/deploy_local.py [--rounds 5] [--json benchmarks/results/deploy_local.json]

Both sides serve the same registered model from the same sqlite registry in the same run; the
reactor side includes its bookkeeping, the /ping wait, the smoke test and the first answer.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Ratio, add_arguments, finish, run_rounds  # noqa: E402

from shared.adapters.local_deployments import LocalDeploymentStore, kill_process_group, stop_deployment  # noqa: E402
from shared.adapters.local_routers import stop_router  # noqa: E402
from shared.adapters.local_server import free_port, serve_command, server_env  # noqa: E402
from shared.config.loader import load_config  # noqa: E402
from shared.domain.actions import Action, action_key  # noqa: E402
from shared.domain.outputs import DeployOutputs
from shared.domain.params import ActionParams
from shared.executors.base import ActionContext  # noqa: E402
from shared.executors.deploy_local import LocalDeployExecutor  # noqa: E402


def log_model(tracking_uri: str, artifacts: Path) -> str:
    import mlflow
    import pandas as pd
    from mlflow import MlflowClient
    from sklearn.linear_model import LogisticRegression

    os.environ["MLFLOW_TRACKING_URI"] = tracking_uri  # this process only: the benchmark owns it
    x = pd.DataFrame({"a": [0.1, 0.9, 0.4, 0.8], "b": [0.2, 0.5, 0.1, 0.9]})
    model = LogisticRegression().fit(x, (x["a"] + x["b"] > 1.0).astype(int))
    experiment = MlflowClient(tracking_uri).create_experiment("bench", artifact_location=artifacts.as_uri())
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(model, name="model", input_example=x.head(2), registered_model_name="bench")
    return "1"


def bare_serve(tracking_uri: str, uri: str, log: Path) -> float:
    port = free_port("127.0.0.1")
    start = time.perf_counter()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            serve_command(uri, "127.0.0.1", port, 1),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=server_env(tracking_uri, None),
            start_new_session=True,
        )
    try:
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/ping", timeout=1).status_code == 200:
                    return time.perf_counter() - start
            except requests.RequestException:
                pass
            if proc.poll() is not None:
                raise SystemExit(f"bare mlflow models serve exited; see {log}")
            time.sleep(0.05)
    finally:
        kill_process_group(proc.pid)


def reactor_deploy(tracking_uri: str, state_dir: Path, config_path: Path, version: str) -> float:
    config = load_config(config_path, env={})
    action = Action(
        id="bench",
        key=action_key("deploy", "local", "bench", version),
        kind="deploy",
        target="local",
        model_name="bench",
        model_version=version,
        event_id="bench",
        status="running",
        params=ActionParams(source="mlflow", source_tracking_uri=tracking_uri),
        outputs=DeployOutputs(),
    )
    ctx = ActionContext(action=action, config=config, state_dir=state_dir, upstream=(), log=logging.getLogger("bench"))
    start = time.perf_counter()
    outputs = LocalDeployExecutor().execute(ctx).outputs.to_dict()
    answer = requests.post(
        outputs["scoring_url"], json={"dataframe_split": {"columns": ["a", "b"], "data": [[0.3, 0.9]]}}, timeout=30
    )
    elapsed = time.perf_counter() - start
    answer.raise_for_status()
    store = LocalDeploymentStore(state_dir)
    for rec in store.list():
        stop_deployment(store, rec)
    stop_router(state_dir, "local")  # the target's stable endpoint, started by the deploy
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="modelops-bench-"))
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    version = log_model(tracking_uri, root / "artifacts")
    config_path = root / "modelops.yaml"
    config_path.write_text("deployments:\n  local:\n    kind: local\n")
    result = run_rounds(
        lambda _: {"seconds": bare_serve(tracking_uri, f"models:/bench/{version}", root / "bare.log")},
        lambda i: {"seconds": reactor_deploy(tracking_uri, root / f"state-{i}", config_path, version)},
        rounds=args.rounds,
        ratios={"time": Ratio("seconds")},
    )
    finish(
        args,
        "deploy_local",
        result,
        goals=[],
        subject="local deploy, execute() -> the endpoint's first answer",
        baseline="bare `mlflow models serve` start -> /ping",
        headline="{s[seconds]:.1f} s; {b[seconds]:.1f} s",
    )


if __name__ == "__main__":
    main()
