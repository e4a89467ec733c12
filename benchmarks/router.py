"""Benchmark: a local target's stable endpoint (the router in front of the version's server) vs
calling that `mlflow models serve` server directly: throughput and latency of /invocations.

    python benchmarks/router.py [--rounds 5] [--seconds 8] [--clients 4] [--json benchmarks/results/router.json]

One real server for one small registered model, one router routing 100% to it; each round loads the
direct URL, then the router's, with the same clients (threads, keep-alive sessions) and the same
request for the same time. The goal: the router costs at most 10% throughput.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from deploy_local import log_model  # noqa: E402
from harness import Goal, Ratio, add_arguments, finish, percentile, run_rounds, run_threads  # noqa: E402

from shared.adapters.local_deployments import kill_process_group  # noqa: E402
from shared.adapters.local_routers import ensure_router, stop_router  # noqa: E402
from shared.adapters.local_server import free_port, serve_command, server_env  # noqa: E402
from shared.adapters.router_state import state_path, update_state  # noqa: E402
from shared.local.processes import wait_http  # noqa: E402

BODY = {"dataframe_split": {"columns": ["a", "b"], "data": [[0.3, 0.9]]}}


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (the scoring server runs uvicorn under mlflow)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def measured(url: str, *, seconds: float, clients: int, server: int, router: int) -> dict[str, float]:
    """``load`` plus the CPU the server and the router spent on each request (ms)."""
    before = cpu_seconds(server), cpu_seconds(router)
    out = load(url, seconds=seconds, clients=clients)
    count = max(out["requests"], 1.0)
    out["server_cpu_ms_per_request"] = (cpu_seconds(server) - before[0]) * 1000 / count
    out["router_cpu_ms_per_request"] = (cpu_seconds(router) - before[1]) * 1000 / count
    return out


def load(url: str, *, seconds: float, clients: int) -> dict[str, float]:
    """``clients`` threads posting BODY to ``url`` for ``seconds``: requests/s and latency (ms)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        nonlocal errors
        session = requests.Session()
        mine, failed = [], 0
        while time.monotonic() < stop:
            started = time.perf_counter()
            response = session.post(url, json=BODY, timeout=30)
            mine.append((time.perf_counter() - started) * 1000)
            failed += response.status_code != 200
        with lock:
            latencies.extend(mine)
            errors += failed

    elapsed = run_threads(clients, client)
    return {
        "requests_per_s": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "errors": float(errors),
        "requests": float(len(latencies)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=5)
    parser.add_argument("--seconds", type=float, default=8.0, help="load per side per round")
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="modelops-bench-router-"))
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    version = log_model(tracking_uri, root / "artifacts")
    port = free_port("127.0.0.1")
    server_url = f"http://127.0.0.1:{port}"
    with open(root / "server.log", "ab") as log:
        server = subprocess.Popen(  # noqa: S603 - fixed argv
            serve_command(f"models:/bench/{version}", "127.0.0.1", port, 1),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_env(tracking_uri, None),
            start_new_session=True,
        )
    state_dir = root / "state"
    try:
        wait_http(f"{server_url}/ping", timeout=180, process=server, log=root / "server.log")
        router = ensure_router(state_dir, "local", host="127.0.0.1", port=None)
        update_state(
            state_path(state_dir, "local"), "local", lambda s: s.routed({f"bench/{version}": (server_url, 100)})
        )
        for url in (f"{server_url}/invocations", router.scoring_url):  # warm both paths
            requests.post(url, json=BODY, timeout=30).raise_for_status()
        pids = {"server": server.pid, "router": router.pid}
        result = run_rounds(
            lambda _: measured(f"{server_url}/invocations", seconds=args.seconds, clients=args.clients, **pids),
            lambda _: measured(router.scoring_url, seconds=args.seconds, clients=args.clients, **pids),
            rounds=args.rounds,
            ratios={
                "throughput": Ratio("requests_per_s"),
                "latency_p50": Ratio("p50_ms"),
                "latency_p99": Ratio("p99_ms"),
            },
        )
        finish(
            args,
            "router",
            result,
            goals=[Goal("throughput", ">=", 0.9)],
            subject=f"POST /invocations through the local target's router ({args.clients} clients)",
            baseline="the same request to the version's `mlflow models serve` directly",
            headline="{s[requests_per_s]:.0f} req/s, p50 {s[p50_ms]:.1f} ms, p99 {s[p99_ms]:.1f} ms, CPU per "
            "request: router {s[router_cpu_ms_per_request]:.2f} ms, server {s[server_cpu_ms_per_request]:.2f} ms; "
            "{b[requests_per_s]:.0f} req/s, p50 {b[p50_ms]:.1f} ms, p99 {b[p99_ms]:.1f} ms, server CPU per request "
            "{b[server_cpu_ms_per_request]:.2f} ms",
            seconds_per_side=args.seconds,
            clients=args.clients,
        )
    finally:
        stop_router(state_dir, "local")
        kill_process_group(server.pid)


if __name__ == "__main__":
    main()
