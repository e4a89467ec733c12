"""Benchmark: the register action copying a model with a 1 GB artifact, versus `cp -r`.

    python benchmarks/register_copy.py [--rounds 5] [--size-mb 1024] [--json benchmarks/results/register_copy.json]

A real `mlflow server` (SQL backend, mlflow-artifacts) holds a model version whose artifacts are a
small sklearn model plus one file of random bytes. The real RegisterExecutor copies that version
into a local MLflow registry (SQLite + file artifact store) in a child process, while the parent
samples the RSS of the child's whole process tree; the child also reports its own VmHWM.
The baseline is `cp -r` of the same artifact directory on the same disk; each round runs it, then
the copy (into a fresh target store). The bytes that went through the copying process (read and
written by its system calls, /proc/self/io rchar/wchar) are recorded. Goals: peak RSS < 300 MB,
copy time <= 3x `cp -r`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from harness import ROOT, Goal, Ratio, add_arguments, finish, run_rounds

MODEL = "bench-big"
CONFIG = """
sources:
  mlflow: {tracking_uri: "%(source)s"}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db", artifact_location: "%(tmp)s/aml-art"}
"""


def child(spec_path: Path) -> None:
    """Run the register actions in this process and print the big copy's figures as JSON.

    A small version is copied first, as a worker that has run before would have: it creates the
    target's SQLite schema (MLflow's migrations take seconds, once per store, not per copy).
    """
    from shared.config.loader import load_config
    from shared.executors.register import RegisterExecutor

    spec = json.loads(spec_path.read_text())
    config = load_config(spec["config"], env={})
    RegisterExecutor().execute(_context(spec, config, spec["warmup_version"]))
    hwm_before = vm_hwm_mb()
    io_before = proc_io()
    start = time.perf_counter()
    outputs = RegisterExecutor().execute(_context(spec, config, spec["version"])).outputs.to_dict()
    seconds = time.perf_counter() - start
    io_after = proc_io()
    moved = {f"{k}_mb": (io_after[k] - io_before[k]) / 2**20 for k in ("rchar", "wchar")}
    print(
        json.dumps(
            {
                "seconds": seconds,
                "vm_hwm_mb": vm_hwm_mb(),
                "vm_hwm_before_copy_mb": hwm_before,
                **moved,
                "outputs": outputs,
            }
        )
    )


def proc_io() -> dict[str, int]:
    """Bytes this process read and wrote through system calls (sockets and files alike)."""
    return {k: int(v) for k, v in (line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())}


def _context(spec: dict[str, str], config: Any, version: str) -> Any:
    from shared.domain.actions import Action, action_key
    from shared.domain.outputs import RegisterOutputs
    from shared.domain.params import ActionParams
    from shared.executors.base import ActionContext

    action = Action(
        id=f"act_{version}",
        key=action_key("register", "local-aml", MODEL, version),
        kind="register",
        target="local-aml",
        model_name=MODEL,
        model_version=version,
        event_id="evt_bench",
        status="running",
        params=ActionParams(source="mlflow", source_tracking_uri=spec["source"]),
        outputs=RegisterOutputs(),
    )
    return ActionContext(
        action=action, config=config, state_dir=Path(spec["state_dir"]), upstream=(), log=logging.getLogger("bench")
    )


def vm_hwm_mb() -> float:
    """This process's peak RSS since exec (ru_maxrss would include the parent's pages from before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tree_rss_mb(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def run_sampled(command: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run ``command``, sampling its process tree's RSS every 20 ms. Returns (result, peak MB, wall s)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0.0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss_mb(process.pid))
            done.wait(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - start
    return subprocess.CompletedProcess(command, process.returncode, out, err), peak, wall


def make_source(url: str, tmp: Path, size_mb: int) -> tuple[str, str]:
    """Register a version whose run artifacts are a small model plus ``size_mb`` of random bytes."""
    import mlflow

    from tests.support import train_and_register

    version, _ = train_and_register(url, MODEL)
    client = mlflow.MlflowClient(tracking_uri=url)
    run_id = client.get_model_version(MODEL, version).run_id
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            client.get_model_version_download_uri(MODEL, version), dst_path=str(tmp / "upload"), tracking_uri=url
        )
    )
    with (model_dir / "weights.bin").open("wb") as f:
        for _ in range(size_mb):
            f.write(os.urandom(1 << 20))
    client.log_artifacts(run_id, str(model_dir), artifact_path="model")
    big = client.create_model_version(MODEL, source=f"runs:/{run_id}/model", run_id=run_id)
    return version, str(big.version)


def cp_r(src: Path, dst: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    elapsed = time.perf_counter() - start
    subprocess.run(["rm", "-rf", str(dst)], check=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=5)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    from shared.local.mlflow_server import MlflowServer

    with tempfile.TemporaryDirectory(prefix="bench-copy-") as tmp_name:
        tmp = Path(tmp_name)
        with MlflowServer(tmp / "source") as server:
            warmup_version, version = make_source(server.url, tmp, args.size_mb)
            # the server keeps the run's artifacts under its --artifacts-destination
            src_dir = next((tmp / "source" / "artifacts").rglob("weights.bin")).parent
            assert (src_dir / "weights.bin").stat().st_size == args.size_mb << 20, src_dir
            source_bytes = sum(p.stat().st_size for p in src_dir.rglob("*") if p.is_file())
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            env.pop("MLFLOW_TRACKING_URI", None)
            checks: list[dict[str, Any]] = []

            def copy_round(i: int) -> dict[str, float]:
                work = tmp / f"round-{i}"  # a fresh target store: each round copies the version anew
                work.mkdir()
                (work / "modelops.yaml").write_text(CONFIG % {"source": server.url, "tmp": work})
                spec = work / "spec.json"
                spec.write_text(
                    json.dumps(
                        {
                            "config": str(work / "modelops.yaml"),
                            "source": server.url,
                            "version": version,
                            "warmup_version": warmup_version,
                            "state_dir": str(work / "state"),
                        }
                    )
                )
                result, peak_tree_mb, wall = run_sampled([sys.executable, __file__, "--child", str(spec)], env)
                if result.returncode != 0:
                    raise SystemExit(f"register child failed:\n{result.stderr[-4000:]}")
                copy: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
                copied = sum(p.stat().st_size for p in (work / "aml-art").rglob("*") if p.is_file())
                checks.append({"copied_bytes": copied, "temp_dirs_left": len(list((work / "state").rglob("copy-*")))})
                subprocess.run(["rm", "-rf", str(work)], check=True)
                return {
                    "seconds": copy["seconds"],
                    "process_wall_seconds": wall,
                    "peak_rss_mb": max(peak_tree_mb, copy["vm_hwm_mb"]),
                    "vm_hwm_before_copy_mb": copy["vm_hwm_before_copy_mb"],
                    "read_through_process_mb": copy["rchar_mb"],
                    "written_through_process_mb": copy["wchar_mb"],
                }

            result = run_rounds(
                lambda _: {"seconds": cp_r(src_dir, tmp / "cp-copy")},
                copy_round,
                rounds=args.rounds,
                ratios={"time": Ratio("seconds")},
            )
    peak = max(r["subject"]["peak_rss_mb"] for r in result["rounds"])
    complete = all(c["copied_bytes"] >= source_bytes and c["temp_dirs_left"] == 0 for c in checks)
    finish(
        args,
        "register_copy",
        result,
        goals=[Goal("time", "<=", 3)],
        extra_goals={"peak RSS < 300 MB": peak < 300, "every byte copied, no temp dir left": complete},
        subject=f"register copy of a version with {source_bytes / 2**20:.0f} MB of artifacts from a real"
        " `mlflow server` into a local MLflow store",
        baseline="`cp -r` of the same files",
        headline="{s[seconds]:.1f} s, peak RSS {s[peak_rss_mb]:.0f} MB; through the process: the artifacts in over"
        " the socket, {s[written_through_process_mb]:.0f} MB written and {s[read_through_process_mb]:.0f} MB read"
        " from files (the target store gets hard links); {b[seconds]:.2f} s",
        size_mb=args.size_mb,
        source_bytes=source_bytes,
        peak_rss_mb=peak,
        checks=checks,
    )
    if not complete:
        raise SystemExit("a target store holds fewer bytes than the source, or a temp dir was left")


if __name__ == "__main__":
    main()
