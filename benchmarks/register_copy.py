"""Benchmark: the register action copying a model with a 1 GB artifact, versus `cp -r`.

    .venv/bin/python benchmarks/register_copy.py [--size-mb 1024]

A real `mlflow server` (SQL backend, mlflow-artifacts) holds a model version whose artifacts are a
small sklearn model plus one file of random bytes. The real RegisterExecutor copies that version
into a local MLflow registry (SQLite + file artifact store) in a child process, while the parent
samples the RSS of the child's whole process tree; the child also reports its own VmHWM.
The baseline is `cp -r` of the same artifact directory on the same disk, run before and after;
a second one is MLflow's own download of the version plus a local copytree, without the reactor.
Goals: peak RSS < 300 MB, copy time <= 2x `cp -r`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _common import ROOT, verdict, write_result

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
    start = time.perf_counter()
    outputs = RegisterExecutor().execute(_context(spec, config, spec["version"])).outputs.to_dict()
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {"seconds": seconds, "vm_hwm_mb": vm_hwm_mb(), "vm_hwm_before_copy_mb": hwm_before, "outputs": outputs}
        )
    )


def bare_child(spec_path: Path) -> None:
    """The floor for any MLflow-to-MLflow copy: MLflow's own download, then a local file copy."""
    import shutil

    import mlflow

    spec = json.loads(spec_path.read_text())
    client = mlflow.MlflowClient(tracking_uri=spec["source"])
    work = Path(spec["state_dir"]) / "bare"
    start = time.perf_counter()
    uri = client.get_model_version_download_uri(MODEL, spec["version"])
    local = mlflow.artifacts.download_artifacts(uri, dst_path=str(work / "download"), tracking_uri=spec["source"])
    shutil.copytree(local, work / "copy")
    seconds = time.perf_counter() - start
    shutil.rmtree(work)
    print(json.dumps({"seconds": seconds, "vm_hwm_mb": vm_hwm_mb()}))


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


def bare_copy(spec: Path, env: dict[str, str]) -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, __file__, "--bare-child", str(spec)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def cp_r(src: Path, dst: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    elapsed = time.perf_counter() - start
    subprocess.run(["rm", "-rf", str(dst)], check=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bare-child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    if args.bare_child:
        bare_child(args.bare_child)
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
            cp_seconds = [cp_r(src_dir, tmp / "cp-copy")]
            config = tmp / "modelops.yaml"
            config.write_text(CONFIG % {"source": server.url, "tmp": tmp})
            spec = tmp / "spec.json"
            spec.write_text(
                json.dumps(
                    {
                        "config": str(config),
                        "source": server.url,
                        "version": version,
                        "warmup_version": warmup_version,
                        "state_dir": str(tmp / "state"),
                    }
                )
            )
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            env.pop("MLFLOW_TRACKING_URI", None)
            # baselines before and after the measured copy: load on the shared cores hits all alike
            bare_runs = [bare_copy(spec, env)]
            result, peak_tree_mb, wall = run_sampled([sys.executable, __file__, "--child", str(spec)], env)
            if result.returncode != 0:
                raise SystemExit(f"register child failed:\n{result.stderr[-4000:]}")
            copy: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
            cp_seconds.append(cp_r(src_dir, tmp / "cp-copy"))
            bare_runs.append(bare_copy(spec, env))
            bare = {
                "seconds": statistics.median(b["seconds"] for b in bare_runs),
                "vm_hwm_mb": max(b["vm_hwm_mb"] for b in bare_runs),
                "runs": bare_runs,
            }
            copied = tmp / "aml-art"
            copied_bytes = sum(p.stat().st_size for p in copied.rglob("*") if p.is_file())
            leftovers = list((tmp / "state" / "tmp").glob("copy-*"))

    cp_median = statistics.median(cp_seconds)
    peak_mb = max(peak_tree_mb, copy["vm_hwm_mb"])
    ratio = copy["seconds"] / cp_median
    print(f"model version with {source_bytes / 2**20:.0f} MB of artifacts ({args.size_mb} MB random file)")
    print(
        f"  register copy: {copy['seconds']:.1f} s (process wall incl. start/imports {wall:.1f} s),"
        f" peak RSS {peak_mb:.0f} MB (sampled tree {peak_tree_mb:.0f} MB, VmHWM {copy['vm_hwm_mb']:.0f} MB;"
        f" {copy['vm_hwm_before_copy_mb']:.0f} MB after imports and the warm-up copy)"
    )
    print(f"  cp -r:         {cp_median:.1f} s (runs: {', '.join(f'{s:.1f}' for s in cp_seconds)})")
    print(
        f"  MLflow download + copytree (no reactor): {bare['seconds']:.1f} s, peak RSS {bare['vm_hwm_mb']:.0f} MB;"
        f" register/that: {copy['seconds'] / bare['seconds']:.2f}x"
    )
    print(
        f"  ratio copy/cp: {ratio:.2f}x   copied bytes in target store: {copied_bytes / 2**20:.0f} MB;"
        f" temp dirs left: {len(leftovers)}"
    )
    met = {"peak_rss_under_300mb": peak_mb < 300, "time_within_2x_cp": ratio <= 2}
    for goal, ok in met.items():
        print(f"  goal {goal}: {verdict(ok)}")
    path = write_result(
        "register_copy",
        " ".join([sys.executable, "benchmarks/register_copy.py", *sys.argv[1:]]),
        {
            "size_mb": args.size_mb,
            "source_bytes": source_bytes,
            "copy_seconds": copy["seconds"],
            "copy_process_wall_seconds": wall,
            "peak_rss_mb": peak_mb,
            "peak_tree_rss_mb": peak_tree_mb,
            "vm_hwm_mb": copy["vm_hwm_mb"],
            "vm_hwm_before_copy_mb": copy["vm_hwm_before_copy_mb"],
            "cp_seconds": cp_seconds,
            "ratio": ratio,
            "copied_bytes": copied_bytes,
            "mlflow_download_copytree": bare,
            "temp_dirs_left": len(leftovers),
            "goals_met": met,
        },
    )
    print(f"result: {path}")
    if copied_bytes < source_bytes:
        raise SystemExit("the target store holds fewer bytes than the source")


if __name__ == "__main__":
    main()
