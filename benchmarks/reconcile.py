"""Reconcile over a large catalog: a quiet pass and a pass with 10 changes, against a real `mlflow server`
holding 2,000 registered models x 5 versions (200 of them with a `champion` alias the rules listen to),
against the bare listing of the changed versions, in the same rounds.

    python benchmarks/reconcile.py [--rounds 5] [--models 2000] [--versions 5] [--changes 10]
        [--json benchmarks/results/reconcile.json]

Each round: 10 new versions are registered on 10 models (untimed); the baseline lists exactly those
models' versions (one `search_model_versions` per name: MLflow's filter takes no list of names); the
subject is one reconcile pass, which has to find them, then a quiet pass over the unchanged catalog.
Requests are counted by the reconciler itself (every registry call). The catalog is written into the
server's SQLite database before it starts (its schema made by MLflow's own store): registering
10,000 versions over REST would take minutes.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Ratio, add_arguments, finish, run_rounds  # noqa: E402

CONFIG = """
sources:
  mlflow: {tracking_uri: "%(uri)s", poll_lookback_seconds: 0}
deployments:
  local: {kind: local}
rules:
  - name: copy-new
    on: model_version.created
    models: ["*"]
    do: [{deploy: local}]
  - name: serve-the-champion
    on: model_version.alias_set
    alias: champion
    models: ["*"]
    do: [{deploy: local}]
"""


def build_catalog(db: Path, models: int, versions: int, aliased: int) -> None:
    """Registered models with versions and aliases, written straight into MLflow's schema."""
    from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(f"sqlite:///{db}")  # creates the schema with MLflow's own migrations
    now = int(time.time() * 1000) - 3_600_000  # an hour ago: older than any watermark
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO registered_models(name, creation_time, last_updated_time, description) VALUES (?,?,?,'')",
            [(f"bench-{i:05d}", now, now + i) for i in range(models)],
        )
        conn.executemany(
            "INSERT INTO model_versions(name, version, creation_time, last_updated_time, description, user_id,"
            " current_stage, source, run_id, status, status_message, run_link, storage_location)"
            " VALUES (?,?,?,?,'','bench','None','s3://bench/model','','READY','','','s3://bench/model')",
            [(f"bench-{i:05d}", v, now + i, now + i) for i in range(models) for v in range(1, versions + 1)],
        )
        conn.executemany(
            "INSERT INTO registered_model_aliases(alias, version, name) VALUES ('champion', ?, ?)",
            [(versions, f"bench-{i:05d}") for i in range(aliased)],
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--models", type=int, default=2000)
    parser.add_argument("--versions", type=int, default=5)
    parser.add_argument("--aliased", type=int, default=200)
    parser.add_argument("--changes", type=int, default=10)
    args = parser.parse_args()

    from mlflow import MlflowClient

    from shared.bootstrap import Container
    from shared.local.mlflow_server import MlflowServer
    from shared.service.dispatch import LocalDispatcher
    from shared.service.reconcile import reconcile_sources
    from shared.settings import Settings

    root = Path(tempfile.mkdtemp(prefix="bench-reconcile-"))
    print(f"catalog: {args.models} models x {args.versions} versions, {args.aliased} champions ({root})")
    (root / "server").mkdir()
    build_catalog(root / "server" / "mlflow.db", args.models, args.versions, args.aliased)
    with MlflowServer(root / "server") as server:
        config = root / "modelops.yaml"
        config.write_text(CONFIG % {"uri": server.url})
        env = {"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(root / "state")}
        reactor = Container(Settings.from_env(env), dispatcher=LocalDispatcher()).reactor()
        first = reactor_pass(reactor, reconcile_sources)  # the first pass records the champions it finds
        print(f"first pass: {first['seconds']:.2f}s, {first['requests']:.0f} requests, {first['aliases']:.0f} aliases")
        client = MlflowClient(tracking_uri=server.url)
        changed: dict[int, list[str]] = {}

        def baseline(i: int) -> dict[str, float]:
            names = [f"bench-{(i * args.changes + k) % args.models:05d}" for k in range(args.changes)]
            for name in names:
                client.create_model_version(name, "s3://bench/model")
            changed[i] = names
            start = time.perf_counter()  # MLflow searches versions by one name at a time (`IN` is run_id only)
            found = [mv for name in names for mv in client.search_model_versions(f"name='{name}'")]
            assert len(found) >= args.changes
            return {"seconds": time.perf_counter() - start, "requests": float(len(names))}

        def subject(i: int) -> dict[str, float]:
            changes = reactor_pass(reactor, reconcile_sources)
            assert changes["versions"] == args.changes, changes
            quiet = reactor_pass(reactor, reconcile_sources)
            assert quiet["versions"] == 0 and quiet["aliases"] == 0, quiet
            return {
                "seconds": changes["seconds"],
                "requests": changes["requests"],
                "quiet_seconds": quiet["seconds"],
                "quiet_requests": quiet["requests"],
            }

        result = run_rounds(
            baseline,
            subject,
            rounds=args.rounds,
            ratios={"change_time": Ratio("seconds"), "requests": Ratio("requests")},
        )
    finish(
        args,
        "reconcile",
        result,
        goals=[],
        subject=f"one reconcile pass over {args.models} models x {args.versions} versions with {args.changes} changes",
        baseline=f"listing the versions of the {args.changes} changed models alone (one search each)",
        headline=(
            "quiet pass {s[quiet_requests]:.0f} requests in {s[quiet_seconds]:.2f}s; pass with "
            f"{args.changes} changes "
            + "{s[requests]:.0f} requests in {s[seconds]:.2f}s (bare listing {b[seconds]:.3f}s)"
        ),
        extra_goals={
            "a quiet pass costs a fixed, small number of requests (<= 5)": result["subject_median"]["quiet_requests"]
            <= 5
        },
    )


def reactor_pass(reactor: object, run: object) -> dict[str, float]:
    start = time.perf_counter()
    summary = run(reactor)  # type: ignore[operator]
    counts = summary["mlflow"]
    if "error" in counts:
        raise SystemExit(f"reconcile failed: {counts['error']}")
    return {
        "seconds": time.perf_counter() - start,
        "requests": float(counts["requests"]),
        "versions": float(counts["versions"]),
        "aliases": float(counts["aliases"]),
    }


if __name__ == "__main__":
    main()
