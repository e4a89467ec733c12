"""Benchmark: webhook ingest of the reactor (SQLite ledger) versus a bare FastAPI route.

    python benchmarks/ingest.py [--rounds 6] [--requests 1500] [--concurrency 16] [--duplicates 0.3]
        [--json benchmarks/results/ingest.json] [--profile PATH.txt [--native]] [--baseline-tree DIR]

Both servers are real uvicorn processes started the same way (`modelops serve --no-worker`, so
only intake is measured, and a bare app whose one route reads the body and answers 202). Both get
the same signed MLflow `model_version.created` deliveries: distinct versions, plus a share of
exact duplicate deliveries (same delivery id, timestamp and signature), from 16 client threads on
keep-alive connections. Both servers run through the whole benchmark; each round sends
``--requests`` fresh deliveries to the bare route, then as many to the reactor, and takes the
ratios of that round. Then the reactor's ledger is checked: every 202 is one event with one
register action, duplicates were answered 200 and recorded as extra deliveries, no action key
appears twice. Goals: throughput >= 0.75x the bare route's, p99 <= 2x, ledger consistent.
``--profile PATH`` samples the serving process with py-spy during the rounds (collapsed stacks;
`python benchmarks/profile_summary.py PATH` sums them by function).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from harness import ROOT, Goal, Ratio, add_arguments, finish, percentile, run_rounds, run_threads

from shared.ingest.signatures import sign_mlflow
from shared.local.processes import free_port, stop_process, wait_http

SECRET = "bench-secret"
MODEL = "bench-model"

CONFIG = """
sources:
  mlflow: {tracking_uri: "http://127.0.0.1:9"}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
rules:
  - name: copy
    on: model_version.created
    models: ["bench-*"]
    do: [{register: local-aml}]
"""

BARE_APP = """
import sys
import uvicorn
from fastapi import FastAPI, Request, Response

app = FastAPI()


@app.post("/api/hooks/mlflow")
async def hook(request: Request) -> Response:
    await request.body()
    return Response(b'{"status":"accepted"}', status_code=202, media_type="application/json")


@app.get("/api/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""

Delivery = tuple[bytes, dict[str, str]]


def deliveries(count: int, duplicate_share: float, rng: random.Random, first: int = 1) -> tuple[list[Delivery], int]:
    """Signed deliveries, distinct versions from ``first`` on, with exact duplicates mixed in."""
    distinct = round(count * (1 - duplicate_share))
    originals = [signed_delivery(MODEL, str(v)) for v in range(first, first + distinct)]
    out = originals + [rng.choice(originals) for _ in range(count - distinct)]
    rng.shuffle(out)
    return out, distinct


def signed_delivery(model: str, version: str) -> Delivery:
    """A signed MLflow `model_version.created` delivery of ``model`` ``version`` (body, headers)."""
    envelope = {
        "entity": "model_version",
        "action": "created",
        "timestamp": "2025-01-01T00:00:00Z",
        "data": {
            "name": model,
            "version": version,
            "source": f"models:/m-{version}",
            "run_id": uuid.uuid4().hex,
            "tags": {"team": "bench"},
            "description": None,
        },
    }
    body = json.dumps(envelope).encode()
    delivery_id, ts = str(uuid.uuid4()), str(int(time.time()))
    return body, {
        "Content-Type": "application/json",
        "X-MLflow-Delivery-Id": delivery_id,
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": sign_mlflow(SECRET, delivery_id, ts, body),
    }


def blast(port: int, work: list[Delivery], concurrency: int) -> dict[str, Any]:
    """Send every delivery once from ``concurrency`` threads; latency is per request, client side."""
    latencies: list[float] = []
    codes: Counter[int] = Counter()
    lock = threading.Lock()
    cursor = iter(range(len(work)))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        seen: Counter[int] = Counter()
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                break
            body, headers = work[index]
            start = time.perf_counter()
            conn.request("POST", "/api/hooks/mlflow", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            mine.append(time.perf_counter() - start)
            seen[response.status] += 1
        conn.close()
        with lock:
            latencies.extend(mine)
            codes.update(seen)

    elapsed = run_threads(concurrency, client)
    return {
        "requests": len(work),
        "seconds": elapsed,
        "throughput_rps": len(work) / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
        "codes": dict(sorted(codes.items())),
    }


def start(command: list[str], port: int, env: dict[str, str], log: Path, cwd: Path = ROOT) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    wait_http(f"http://127.0.0.1:{port}/api/health", timeout=90, process=process, log=log)
    return process


def _commit(tree: Path) -> str:
    done = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h"], capture_output=True, text=True)
    return f"commit {done.stdout.strip()}" if done.returncode == 0 else str(tree)


def profile(pid: int, out: Path, *, native: bool = False) -> subprocess.Popen[bytes]:
    """py-spy sampling every thread of the serving process (loop, writer, threadpool), idle frames
    included, one stack per thread, as collapsed stacks in ``out``: without pausing it, or with
    ``native`` pausing it at each sample to add the C frames (SQLite, the JSON and HMAC code)."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    options = ["--rate", "250", "--idle", "--threads", "--format", "raw"]
    options += ["--native"] if native else ["--nonblocking"]
    command = [spy, "record", "--pid", str(pid), *options, "-o", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def check_ledger(db: Path, accepted: int, duplicates: int) -> dict[str, Any]:
    with sqlite3.connect(db) as conn:
        events = conn.execute(
            "SELECT count(*), coalesce(sum(deliveries), 0) FROM events WHERE model_name = ?", (MODEL,)
        ).fetchone()
        actions = conn.execute(
            "SELECT count(*), count(DISTINCT key) FROM actions WHERE model_name = ?", (MODEL,)
        ).fetchone()
        per_event = conn.execute(
            "SELECT count(*) FROM (SELECT e.id FROM events e LEFT JOIN event_actions ea ON ea.event_id = e.id"
            " WHERE e.model_name = ? GROUP BY e.id HAVING count(ea.action_id) != 1)",
            (MODEL,),
        ).fetchone()[0]
    out = {
        "accepted_202": accepted,
        "duplicates_200": duplicates,
        "ledger_events": events[0],
        "ledger_deliveries": events[1],
        "ledger_actions": actions[0],
        "distinct_action_keys": actions[1],
        "events_without_exactly_one_action": per_event,
    }
    out["consistent"] = (
        accepted == events[0] == actions[0] == actions[1] and events[1] == accepted + duplicates and per_event == 0
    )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=6)
    parser.add_argument("--requests", type=int, default=1500, help="deliveries per side and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duplicates", type=float, default=0.3, help="share of exact duplicate deliveries")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--serve-args", default="", help="extra `modelops serve` options, e.g. '--http-workers 2'")
    parser.add_argument(
        "--profile", type=Path, default=None, help="py-spy collapsed stacks of the reactor, written here"
    )
    parser.add_argument("--native", action="store_true", help="with --profile: C frames too (pauses the process)")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="baseline: the reactor served from this checkout (e.g. a worktree of main), not the bare route",
    )
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp_name:
        tmp = Path(tmp_name)
        config = tmp / "modelops.yaml"
        config.write_text(CONFIG % {"tmp": tmp})
        (tmp / "bare.py").write_text(BARE_APP)
        env = {
            **os.environ,
            "MODELOPS_STATE_DIR": str(tmp / "state"),
            "MODELOPS_CONFIG": str(config),
            "MLFLOW_WEBHOOK_SECRET": SECRET,
        }
        env.pop("MLFLOW_TRACKING_URI", None)
        warmup = [signed_delivery("warmup", str(v)) for v in range(200)]
        serve = ["-m", "shared.cli.main", "serve", "--no-worker", *args.serve_args.split()]
        bare_port, port = free_port(), free_port()
        if args.baseline_tree is None:
            bare = start([sys.executable, str(tmp / "bare.py"), str(bare_port)], bare_port, env, tmp / "bare.log")
        else:  # the reactor as another checkout has it (before/after), on a ledger of its own
            tree = args.baseline_tree.resolve()
            other = {**env, "PYTHONPATH": str(tree), "MODELOPS_STATE_DIR": str(tmp / "baseline-state")}
            command = [sys.executable, *serve, "--port", str(bare_port)]
            bare = start(command, bare_port, other, tmp / "baseline.log", cwd=tree)
        reactor = start([sys.executable, *serve, "--port", str(port)], port, env, tmp / "serve.log")
        answered = Counter[int]()
        distinct_total = 0
        spy = None
        try:
            blast(bare_port, warmup, args.concurrency)
            blast(port, warmup, args.concurrency)
            if args.profile is not None:
                spy = profile(reactor.pid, args.profile, native=args.native)

            def side(target: int, i: int) -> dict[str, float]:
                nonlocal distinct_total
                # fresh versions each round and side, so no round sees another's deliveries
                work, distinct = deliveries(args.requests, args.duplicates, rng, first=1 + (2 * i + target) * 100_000)
                got = blast(bare_port if target == 0 else port, work, args.concurrency)
                codes = got.pop("codes")
                if target == 1:
                    answered.update(codes)
                    distinct_total += distinct
                    got["accepted_per_s"] = codes.get(202, 0) / got["seconds"]
                return got

            result = run_rounds(
                lambda i: side(0, i),
                lambda i: side(1, i),
                rounds=args.rounds,
                ratios={"throughput": Ratio("throughput_rps"), "p99": Ratio("p99_ms"), "p50": Ratio("p50_ms")},
            )
        finally:
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its samples when interrupted
                spy.wait(timeout=60)
            stop_process(bare)
            stop_process(reactor, grace=60)
        ledger = check_ledger(tmp / "state" / "ledger.db", answered.get(202, 0), answered.get(200, 0))
        ledger["expected_distinct"] = distinct_total
        ledger["consistent"] = ledger["consistent"] and ledger["accepted_202"] == distinct_total
    print(f"  ledger: {ledger}")
    against_tree = args.baseline_tree is not None
    finish(
        args,
        "ingest_vs_tree" if against_tree else "ingest",
        result,
        goals=[] if against_tree else [Goal("throughput", ">=", 0.75), Goal("p99", "<=", 2)],
        extra_goals={"ledger consistent": ledger["consistent"]},
        subject=f"reactor `serve --no-worker`, SQLite ledger, signed MLflow webhooks, {args.duplicates:.0%}"
        f" duplicates, concurrency {args.concurrency}",
        baseline=f"the reactor at {_commit(args.baseline_tree)} (same command, its own ledger)"
        if against_tree
        else "bare FastAPI/uvicorn route reading the body",
        headline="{s[throughput_rps]:.0f} req/s, p50 {s[p50_ms]:.1f} ms, p99 {s[p99_ms]:.1f} ms; "
        "{b[throughput_rps]:.0f} req/s, p50 {b[p50_ms]:.1f} ms, p99 {b[p99_ms]:.1f} ms",
        requests_per_round=args.requests,
        concurrency=args.concurrency,
        ledger=ledger,
    )
    if not ledger["consistent"]:
        raise SystemExit("ledger does not match what was answered")


if __name__ == "__main__":
    main()
