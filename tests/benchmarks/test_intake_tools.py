"""The intake profiling tools docs/benchmarks.md shows: the in-process webhook driver
(reactor app and bare app, CPU per request) and the bucketed summary of py-spy's stacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def test_the_in_process_driver_answers_every_webhook_and_prints_cpu_per_request() -> None:
    run = subprocess.run(
        [sys.executable, "benchmarks/ingest_inproc.py", "--requests", "60", "--repeat", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # 60 deliveries, 30% of them exact duplicates: accepted 202 once each, duplicates answered 200
    assert "{202: 42, 200: 18}" in run.stdout, run.stdout
    assert "CPU per request (min of 1): reactor" in run.stdout and "bare" in run.stdout


def test_buckets_sort_the_loop_threads_samples_by_their_innermost_known_frame(tmp_path: Path) -> None:
    loop = "thread (1): MainThread;BaseEventLoop._run_once (asyncio/base_events.py:1)"
    stacks = [
        f"{loop};EpollSelector.select (selectors.py:468) 50",
        f"{loop};RequestResponseCycle.run_asgi (uvicorn/protocols/http/h11_impl.py:1);"
        "mlflow_hook (shared/api/hooks.py:1);verify_mlflow (shared/ingest/signatures.py:40) 10",
        f"{loop};SqliteFile._flush_loop (shared/ledger/sqlite_db.py:1);LedgerCore._intake (shared/ledger/core.py:1);"
        "SqliteStore.add_event (shared/ledger/sqlite.py:1);dumps (json/__init__.py:1);encode (json/encoder.py:1) 20",
        f"{loop};SqliteFile._flush_loop (shared/ledger/sqlite_db.py:1);SqliteStore._run (shared/ledger/sqlite.py:1) 30",
        "thread (2): ledger-checkpoint:ledger.db;Checkpointer._run (shared/ledger/sqlite_checkpoint.py:1) 99",
    ]
    profile = tmp_path / "profile.txt"
    profile.write_text("\n".join(stacks) + "\n")
    run = subprocess.run(
        [sys.executable, "benchmarks/profile_summary.py", str(profile), "--buckets", "--busy-us", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    lines = {line.split("us/request")[-1].strip(): line for line in run.stdout.splitlines() if "us/request" in line}
    assert "110 samples of MainThread, 60 busy" in run.stdout  # the checkpoint thread is not the loop
    assert "10.0 us/request" in lines["HMAC signature check"]
    assert "20.0 us/request" in lines["JSON encoding of stored fields"]  # json under a ledger frame
    assert "30.0 us/request" in lines["SQLite statements, BEGIN/COMMIT"]
