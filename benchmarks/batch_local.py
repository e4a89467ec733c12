"""Benchmark the local batch engine against raw pyfunc.predict and `mlflow models predict`.

    .venv/bin/python benchmarks/batch_local.py            # 3,000,000 rows
    .venv/bin/python benchmarks/batch_local.py --rows 500000

Generates a Parquet input and a small sklearn model, then runs each variant in its own
subprocess (so peak RSS is that variant's alone) on the same rows:
- engine: shared.batch.local_engine.score (streams record batches, writes Parquet);
- raw:    pd.read_parquet -> one pyfunc.predict on all rows -> to_parquet;
- cli:    `mlflow models predict --env-manager local` (reads CSV, the only tabular input
          format it takes, and writes JSON).
Seconds are the scoring work (read + predict + write) inside each process, without interpreter
start and imports, except for the CLI, whose whole command is timed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FEATURES = [f"f{i}" for i in range(8)]


def generate(workdir: Path, rows: int) -> tuple[Path, Path, Path]:
    import numpy as np
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    parquet, csv, model_dir = workdir / "input.parquet", workdir / "input.csv", workdir / "model"
    rng = np.random.default_rng(0)
    chunk = 500_000
    with pq.ParquetWriter(parquet, _schema(pa)) as writer, open(csv, "wb") as csv_out:
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            columns = {"row_id": np.arange(start, start + n, dtype=np.int64)}
            columns.update({f: rng.normal(size=n) for f in FEATURES})
            table = pa.table(columns, schema=_schema(pa))
            writer.write_table(table, row_group_size=131_072)
            # the CLI gets the feature columns only, as it would pass every column to the model
            options = pacsv.WriteOptions(include_header=start == 0)
            pacsv.write_csv(table.select(FEATURES), csv_out, write_options=options)
    _train(model_dir)
    return parquet, csv, model_dir


def _schema(pa):  # type: ignore[no-untyped-def]
    return pa.schema([("row_id", pa.int64())] + [(f, pa.float64()) for f in FEATURES])


def _train(model_dir: Path) -> None:
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
    mlflow.sklearn.save_model(
        model, str(model_dir), signature=signature, skops_trusted_types=["sklearn.tree._tree.Tree"]
    )


def variant_engine(model_dir: Path, parquet: Path, output: Path) -> dict[str, float]:
    import mlflow.pyfunc

    from shared.batch.local_engine import score

    model = mlflow.pyfunc.load_model(str(model_dir))
    features = list(model.metadata.get_input_schema().input_names())
    started = time.perf_counter()
    result = score(model, parquet, output, model_version="1", features=features)
    return {"rows": result.rows, "seconds": time.perf_counter() - started}


def variant_raw(model_dir: Path, parquet: Path, output: Path) -> dict[str, float]:
    import mlflow.pyfunc
    import pandas as pd

    model = mlflow.pyfunc.load_model(str(model_dir))
    started = time.perf_counter()
    frame = pd.read_parquet(parquet)
    predicted = time.perf_counter()
    frame["prediction"] = model.predict(frame[FEATURES])
    predict_seconds = time.perf_counter() - predicted
    frame.to_parquet(output)
    return {"rows": len(frame), "seconds": time.perf_counter() - started, "predict_seconds": predict_seconds}


def variant_cli(model_dir: Path, csv: Path, output: Path) -> dict[str, float]:
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "models",
        "predict",
        "-m",
        str(model_dir),
        "-i",
        str(csv),
        "-t",
        "csv",
        "-o",
        str(output),
        "--env-manager",
        "local",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    seconds = time.perf_counter() - started
    rows = len(json.loads(output.read_text())["predictions"])
    # the CLI did the work in a child: its peak, not this wrapper's
    return {"rows": rows, "seconds": seconds, "child_peak_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}


def run_variant(name: str, workdir: Path, parquet: Path, csv: Path, model_dir: Path) -> dict[str, float]:
    command = [sys.executable, __file__, "--variant", name, "--workdir", str(workdir)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)  # noqa: S603
    return json.loads(done.stdout.strip().splitlines()[-1])


def child(name: str, workdir: Path) -> None:
    sys.path.insert(0, str(ROOT))
    parquet, csv, model_dir = workdir / "input.parquet", workdir / "input.csv", workdir / "model"
    if name == "engine":
        result = variant_engine(model_dir, parquet, workdir / "engine.parquet")
    elif name == "raw":
        result = variant_raw(model_dir, parquet, workdir / "raw.parquet")
    else:
        result = variant_cli(model_dir, csv, workdir / "cli.json")
    peak_kb = result.pop("child_peak_kb", None) or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({**result, "peak_mb": peak_kb / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--variant", choices=["engine", "raw", "cli"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        child(args.variant, args.workdir)
        return
    with tempfile.TemporaryDirectory(prefix="modelops-bench-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        print(f"generating {args.rows:,} rows x {len(FEATURES)} features + a model in {workdir} ...")
        parquet, csv, model_dir = generate(workdir, args.rows)
        results = {}
        for name in ("raw", "engine", "cli"):
            print(f"running {name} ...", flush=True)
            results[name] = run_variant(name, workdir, parquet, csv, model_dir)
        _report(results, args.rows)


def _report(results: dict[str, dict[str, float]], rows: int) -> None:
    raw = results["raw"]
    raw_rate = raw["rows"] / raw["seconds"]
    print(f"\n{rows:,} rows; raw predict() alone took {raw['predict_seconds']:.2f}s of raw's time")
    print(f"{'variant':<8} {'rows':>10} {'seconds':>9} {'rows/s':>11} {'vs raw':>7} {'peak MB':>8} {'vs raw':>7}")
    for name, r in results.items():
        rate = r["rows"] / r["seconds"]
        print(
            f"{name:<8} {int(r['rows']):>10,} {r['seconds']:>9.2f} {rate:>11,.0f} "
            f"{rate / raw_rate:>6.0%} {r['peak_mb']:>8.0f} {r['peak_mb'] / raw['peak_mb']:>6.0%}"
        )


if __name__ == "__main__":
    main()
