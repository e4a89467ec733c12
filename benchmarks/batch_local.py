"""Benchmark: `modelops score` on a local batch target versus the streaming engine alone.

    python benchmarks/batch_local.py [--rounds 5] [--rows 1000000] [--bytecode cached|source]
        [--registry sqlite|server] [--json benchmarks/results/batch_local.json]

Generates a Parquet input (``--rows`` x 8 features) and a small sklearn RandomForest registered in
a local MLflow registry (SQLite; ``--registry server``: an `mlflow server` on that file, reached
over REST as a deployment reaches its source, its own CPU not counted), then alternates, each in a
fresh process and timed whole (start to exit, imports included):
- baseline, the engine alone: `mlflow.pyfunc.load_model` of the saved model, then
  `shared.batch.local_engine.score` to Parquet;
- subject, the CLI: `modelops score bench-batch 1 --target bench` with a fresh state directory
  (config, ledger, the action through the worker, the model fetched from the registry, progress).
Ratios: the engine's seconds over the CLI's (rows/s of the CLI as a share of the engine's), on
CPU time (user + system of the child, from its rusage: the work done, less sensitive to other load
on shared cores), on wall time, and for the scoring loop alone. Goal: >= 0.9.

Each round also measures, in a third process, what resolving the version in the registry costs
the CLI beyond the engine (`registry_cpu_seconds`: an `MlflowClient` on the registry and
`get_model_version_download_uri`, after `import mlflow.pyfunc`, which both sides pay).

``--bytecode cached`` (the default) runs every child with a bytecode cache of its own in the
work dir (``PYTHONPYCACHEPREFIX``, warmed by one run of each side first), as an installed package
runs; ``--bytecode source`` keeps the environment's ``PYTHONDONTWRITEBYTECODE``, so that every
child compiles each module it imports from source (what this machine's shared venv, which holds no
``.pyc`` files, does: ~4 s of CPU on each side).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, Goal, Ratio, add_arguments, finish, run_rounds

FEATURES = [f"f{i}" for i in range(8)]
MODEL = "bench-batch"
CONFIG = """
sources:
  mlflow: {tracking_uri: "%(source)s"}
batch:
  bench: {kind: local, input: "%(w)s/input.parquet", output: "%(w)s/out/cli.parquet"}
"""


def generate(workdir: Path, rows: int, source: str) -> None:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("row_id", pa.int64())] + [(f, pa.float64()) for f in FEATURES])
    rng = np.random.default_rng(0)
    with pq.ParquetWriter(workdir / "input.parquet", schema) as writer:
        for start in range(0, rows, 500_000):
            n = min(500_000, rows - start)
            columns = {"row_id": np.arange(start, start + n, dtype=np.int64)}
            columns.update({f: rng.normal(size=n) for f in FEATURES})
            writer.write_table(pa.table(columns, schema=schema), row_group_size=131_072)
    _train_and_register(workdir, source)


def _train_and_register(workdir: Path, source: str) -> None:
    import mlflow
    import mlflow.sklearn
    import numpy as np
    import pandas as pd
    from mlflow.models import infer_signature
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(1)
    train = pd.DataFrame(rng.normal(size=(20_000, len(FEATURES))), columns=FEATURES)
    target = (train["f0"] + train["f1"] * train["f2"] - 0.3 * train["f3"] > 0).astype(int)
    model = RandomForestClassifier(n_estimators=20, max_depth=8, random_state=0).fit(train, target)
    signature = infer_signature(train.head(100), model.predict(train.head(100)))
    # we built these trees ourselves in this process, so skops may trust their node arrays
    trusted = ["sklearn.tree._tree.Tree"]
    mlflow.sklearn.save_model(model, str(workdir / "model"), signature=signature, skops_trusted_types=trusted)
    mlflow.set_tracking_uri(source)
    # a SQLite registry keeps the artifacts in a local directory; a server, behind its artifact proxy
    local = str(workdir / "artifacts") if source.startswith("sqlite") else None
    experiment = mlflow.create_experiment("bench", artifact_location=local)
    with mlflow.start_run(experiment_id=experiment):
        mlflow.sklearn.log_model(
            model, name="model", signature=signature, registered_model_name=MODEL, skops_trusted_types=trusted
        )


def child_engine(workdir: Path) -> None:
    """The baseline's process: load the saved model and stream the input through the engine."""
    sys.path.insert(0, str(ROOT))
    import mlflow.pyfunc

    from shared.batch.local_engine import score

    model = mlflow.pyfunc.load_model(str(workdir / "model"))
    features = list(model.metadata.get_input_schema().input_names())
    result = score(
        model, workdir / "input.parquet", workdir / "out" / "engine.parquet", model_version="1", features=features
    )
    print(json.dumps({"rows": result.rows, "score_seconds": result.seconds}))


def child_registry(source: str) -> None:
    """The registry lookup the CLI does beyond the engine, alone, after the import both pay."""
    import mlflow.pyfunc  # noqa: F401 - both sides import it; not what is measured
    from mlflow import MlflowClient

    started = time.process_time()
    MlflowClient(tracking_uri=source, registry_uri=source).get_model_version_download_uri(MODEL, "1")
    print(json.dumps({"registry_cpu_seconds": time.process_time() - started}))


def child_env(workdir: Path, bytecode: str) -> dict[str, str]:
    env = dict(os.environ)
    if bytecode == "cached":
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float, float]:
    """Wall seconds, stdout, peak RSS (MB) and CPU seconds of one child (its own rusage: wait4)."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)  # noqa: S603
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        if child.returncode != 0:
            raise SystemExit(f"{command} failed:\n{err.read().decode()[-3000:]}")
        return seconds, out.read().decode(), usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def run_engine(workdir: Path, bytecode: str) -> dict[str, float]:
    command = [sys.executable, __file__, "--child-engine", str(workdir)]
    seconds, stdout, peak, cpu = timed(command, child_env(workdir, bytecode))
    return {"seconds": seconds, "cpu_seconds": cpu, **json.loads(stdout.strip().splitlines()[-1]), "peak_mb": peak}


def run_cli(workdir: Path, round_no: int | str, bytecode: str, source: str) -> dict[str, float]:
    state = workdir / f"state-{round_no}"
    shutil.rmtree(workdir / "out" / "cli.parquet", ignore_errors=True)
    (workdir / "out" / "cli.parquet").unlink(missing_ok=True)
    env = child_env(workdir, bytecode)
    env.update(MODELOPS_STATE_DIR=str(state), MODELOPS_CONFIG=str(workdir / "modelops.yaml"))
    env.pop("MLFLOW_TRACKING_URI", None)
    command = [sys.executable, "-m", "shared.cli.main", "-o", "json", "score", MODEL, "1", "--target", "bench"]
    seconds, stdout, peak, cpu = timed(command, env)
    outputs = json.loads(stdout)[0]["outputs"]
    registry = timed([sys.executable, __file__, "--child-registry", source], child_env(workdir, bytecode))[1]
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "rows": outputs["rows"],
        "score_seconds": outputs["seconds"],
        "peak_mb": peak,
        **json.loads(registry.strip().splitlines()[-1]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=5)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=None, help="where the temporary files go")
    parser.add_argument("--bytecode", choices=["cached", "source"], default="cached", help="see the module doc")
    parser.add_argument("--child-engine", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--registry",
        choices=["sqlite", "server"],
        default="sqlite",
        help="where the version is registered: a SQLite file, or an `mlflow server` the CLI reaches over REST",
    )
    parser.add_argument("--child-registry", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_engine:
        child_engine(args.child_engine)
        return
    if args.child_registry:
        child_registry(args.child_registry)
        return
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-batch-", dir=args.workdir)))
        source = f"sqlite:///{workdir}/mlflow.db"
        if args.registry == "server":
            from shared.local.mlflow_server import MlflowServer

            source = stack.enter_context(MlflowServer(workdir / "server")).url
        (workdir / "out").mkdir()
        (workdir / "modelops.yaml").write_text(CONFIG % {"w": workdir, "source": source})
        print(f"generating {args.rows:,} rows x {len(FEATURES)} features and a registered model in {workdir} ...")
        generate(workdir, args.rows, source)
        run_engine(workdir, args.bytecode)  # warm the page cache (and with --bytecode cached, the .pyc files)
        run_cli(workdir, "warm", args.bytecode, source)
        result = run_rounds(
            lambda _: run_engine(workdir, args.bytecode),
            lambda i: run_cli(workdir, i, args.bytecode, source),
            rounds=args.rounds,
            ratios={
                "throughput_cpu": Ratio("cpu_seconds", inverse=True),
                "throughput_wall": Ratio("seconds", inverse=True),
                "scoring_loop": Ratio("score_seconds", inverse=True),
            },
        )
    finish(
        args,
        "batch_local" if args.registry == "sqlite" else "batch_local_server",
        result,
        goals=[Goal("throughput_cpu", ">=", 0.9), Goal("throughput_wall", ">=", 0.9)],
        subject=f"`modelops score` on a local batch target ({args.rows:,} rows x 8, RandomForest,"
        f" {'SQLite registry' if args.registry == 'sqlite' else 'registry behind `mlflow server`'},"
        f" bytecode {'cached' if args.bytecode == 'cached' else 'compiled from source'})",
        baseline="the streaming engine alone (load_model + score)",
        headline="{s[cpu_seconds]:.1f} s CPU ({s[registry_cpu_seconds]:.2f} s of it the registry lookup),"
        " {s[seconds]:.1f} s wall ({s[score_seconds]:.1f} s scoring), peak {s[peak_mb]:.0f} MB;"
        " {b[cpu_seconds]:.1f} s CPU, {b[seconds]:.1f} s wall ({b[score_seconds]:.1f} s scoring),"
        " peak {b[peak_mb]:.0f} MB",
        rows=args.rows,
        bytecode=args.bytecode,
        registry=args.registry,
    )


if __name__ == "__main__":
    main()
