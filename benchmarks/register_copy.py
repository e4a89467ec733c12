"""Benchmark: the register action copying a model with a 1 GB artifact, versus `cp -r`; or (dual
tracking, ``--metric-points``) a version whose training run has that many metric points, versus the same
copy of a version whose run has none.

    python benchmarks/register_copy.py [--rounds 5] [--size-mb 1024] [--json benchmarks/results/register_copy.json]
    python benchmarks/register_copy.py --metric-points 100000 --size-mb 1 --rounds 3 \
        --json benchmarks/results/register_copy_run.json

A real `mlflow server` (SQL backend, mlflow-artifacts) holds a model version whose artifacts are a
small sklearn model plus one file of random bytes. The real RegisterExecutor copies that version
into a local MLflow registry (SQLite + file artifact store) in a child process, while the parent
samples the RSS of the child's whole process tree; the child also reports its own VmHWM.
The baseline is `cp -r` of the same artifact directory on the same disk; each round runs it, then
the copy (into a fresh target store). The bytes that went through the copying process (read and
written by its system calls, /proc/self/io rchar/wchar) are recorded. Goals: peak RSS < 300 MB,
copy time <= 3x `cp -r`.

With ``--metric-points N`` both sides copy a version of the same model files from a run of their own:
the subject's run holds N points (4 metrics, N/4 steps each, plus 20 params), the baseline's none. The
copy pages through each history and writes it in batches (shared/adapters/run_mirror.py); the figures
are its time and the copying process's peak RSS, which must stay bounded (goal: < 300 MB).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness import ROOT, Goal, Ratio, add_arguments, finish, run_rounds
from process_metrics import cpu_seconds, proc_io, profile, run_sampled, tree_cpu_seconds, vm_hwm_mb

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
    spec = json.loads(spec_path.read_text())
    sys.path.insert(0, spec["tree"])  # the checkout whose copy is measured (--baseline-tree: another one)
    from shared.config.loader import load_config
    from shared.executors.register import RegisterExecutor

    config = load_config(spec["config"], env={})
    RegisterExecutor().execute(_context(spec, config, spec["warmup_version"]))
    hwm_before = vm_hwm_mb()
    spies = [profile(pid or os.getpid(), Path(out)) for pid, out in spec.get("profile", [])]
    io_before = proc_io()
    cpu_before, server_before = cpu_seconds(), tree_cpu_seconds(spec.get("server_pid"))
    phases: list[tuple[float, str]] = []
    start = time.perf_counter()
    context = _context(spec, config, spec["version"])
    context.progress = lambda message: phases.append((round(time.perf_counter() - start, 3), message))
    outputs = RegisterExecutor().execute(context).outputs.to_dict()
    seconds = time.perf_counter() - start
    io_after = proc_io()
    cpu = cpu_seconds() - cpu_before
    server_cpu = tree_cpu_seconds(spec.get("server_pid")) - server_before
    for spy in spies:
        spy.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        spy.wait(timeout=60)
    moved = {f"{k}_mb": (io_after[k] - io_before[k]) / 2**20 for k in ("rchar", "wchar")}
    print(
        json.dumps(
            {
                "seconds": seconds,
                "vm_hwm_mb": vm_hwm_mb(),
                "vm_hwm_before_copy_mb": hwm_before,
                **moved,
                "cpu_seconds": cpu,
                "server_cpu_seconds": server_cpu,
                "phases": phases,
                "shared_from": str(Path(sys.modules["shared"].__file__ or "").parent.parent),
                "outputs": outputs,
            }
        )
    )


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


def make_run_versions(url: str, tmp: Path, points: int) -> tuple[str, str, str]:
    """(warm-up version, a version whose run has no metrics, one whose run has ``points`` metric points)."""
    import mlflow
    from mlflow.entities import Metric, Param

    from tests.support import train_and_register

    warmup, _ = train_and_register(url, MODEL)
    client = mlflow.MlflowClient(tracking_uri=url)
    model_dir = Path(
        mlflow.artifacts.download_artifacts(
            client.get_model_version_download_uri(MODEL, warmup), dst_path=str(tmp / "upload"), tracking_uri=url
        )
    )
    experiment = client.get_model_version(MODEL, warmup)
    experiment_id = client.get_run(str(experiment.run_id)).info.experiment_id
    versions = []
    for n in (0, points):
        run_id = client.create_run(experiment_id, run_name=f"train-{n}-points").info.run_id
        client.log_artifacts(run_id, str(model_dir), artifact_path="model")
        client.log_batch(run_id, params=[Param(f"hp_{i}", str(i)) for i in range(20)])
        keys, start = ["loss", "val_loss", "lr", "accuracy"], 1_780_000_000_000
        series = (Metric(keys[i % 4], 1.0 / (i + 1), start + i, i // 4) for i in range(n))
        while batch := [m for _, m in zip(range(1000), series, strict=False)]:
            client.log_batch(run_id, metrics=batch)
        client.set_terminated(run_id)
        versions.append(str(client.create_model_version(MODEL, source=f"runs:/{run_id}/model", run_id=run_id).version))
    return warmup, versions[0], versions[1]


def cp_r(src: Path, dst: Path) -> dict[str, float]:
    """`cp -r` of the artifact directory: its wall time and CPU time (user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(["cp", "-r", str(src), str(dst)], check=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["rm", "-rf", str(dst)], check=True)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"seconds": elapsed, "cpu_seconds": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=5)
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        metavar="DIR",
        help="py-spy collapsed stacks of the copying process and the mlflow server during each copy, written here",
    )
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="baseline: the same copy run from this checkout (e.g. a worktree of main), besides `cp -r`",
    )
    parser.add_argument(
        "--metric-points",
        type=int,
        default=0,
        help="dual tracking: copy a version whose run has this many metric points, vs one whose run has none",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    from shared.local.mlflow_server import MlflowServer

    with tempfile.TemporaryDirectory(prefix="bench-copy-") as tmp_name:
        tmp = Path(tmp_name)
        with MlflowServer(tmp / "source") as server:
            assert server.process is not None
            if args.metric_points:
                warmup_version, bare_version, version = make_run_versions(server.url, tmp, args.metric_points)
                src_dir = next((tmp / "source" / "artifacts").rglob("MLmodel")).parent
            else:
                warmup_version, version = make_source(server.url, tmp, args.size_mb)
                # the server keeps the run's artifacts under its --artifacts-destination
                src_dir = next((tmp / "source" / "artifacts").rglob("weights.bin")).parent
                assert (src_dir / "weights.bin").stat().st_size == args.size_mb << 20, src_dir
            source_bytes = sum(p.stat().st_size for p in src_dir.rglob("*") if p.is_file())
            checks: list[dict[str, Any]] = []
            server_pid = server.process.pid

            def copy_round(i: int, tree: Path = ROOT, side: str = "subject", which: str = "") -> dict[str, Any]:
                work = tmp / f"round-{i}-{side}"  # a fresh target store: each round copies the version anew
                work.mkdir()
                (work / "modelops.yaml").write_text(CONFIG % {"source": server.url, "tmp": work})
                spec = work / "spec.json"
                profiles = []
                if args.profile is not None:
                    args.profile.mkdir(parents=True, exist_ok=True)
                    name = f"{side}-round{i + 1}"
                    profiles = [[server_pid, str(args.profile / f"{name}-server.txt")]]
                    profiles.append([0, str(args.profile / f"{name}-copy.txt")])  # 0: the child itself
                spec.write_text(
                    json.dumps(
                        {
                            "config": str(work / "modelops.yaml"),
                            "source": server.url,
                            "version": which or version,
                            "warmup_version": warmup_version,
                            "state_dir": str(work / "state"),
                            "profile": profiles,
                            "server_pid": server_pid,
                            "tree": str(tree),
                        }
                    )
                )
                env = {**os.environ, "PYTHONPATH": str(tree)}
                env.pop("MLFLOW_TRACKING_URI", None)
                command = [sys.executable, str(Path(__file__).resolve()), "--child", str(spec)]  # that tree's `shared`
                result, peak_tree_mb, wall = run_sampled(command, env, tree)
                if result.returncode != 0:
                    raise SystemExit(f"register child failed:\n{result.stderr[-4000:]}")
                copy: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
                copied = sum(p.stat().st_size for p in (work / "aml-art").rglob("*") if p.is_file())
                checks.append({"copied_bytes": copied, "temp_dirs_left": len(list((work / "state").rglob("copy-*")))})
                subprocess.run(["rm", "-rf", str(work)], check=True)
                assert copy["shared_from"] == str(tree), (copy["shared_from"], tree)
                print(
                    f"    {side}: {copy['seconds']:.2f} s, CPU {copy['cpu_seconds']:.2f} s (server"
                    f" {copy['server_cpu_seconds']:.2f} s); phases {copy['phases']}"
                )
                return {
                    "metric_points": int(copy["outputs"].get("metric_points_copied") or 0),
                    "seconds": copy["seconds"],
                    "process_wall_seconds": wall,
                    "peak_rss_mb": max(peak_tree_mb, copy["vm_hwm_mb"]),
                    "vm_hwm_before_copy_mb": copy["vm_hwm_before_copy_mb"],
                    "read_through_process_mb": copy["rchar_mb"],
                    "written_through_process_mb": copy["wchar_mb"],
                    "cpu_seconds": copy["cpu_seconds"],
                    "server_cpu_seconds": copy["server_cpu_seconds"],
                    "cpu_with_server_seconds": copy["cpu_seconds"] + copy["server_cpu_seconds"],
                }

            if args.metric_points:
                result = run_rounds(
                    lambda i: copy_round(i, side="baseline", which=bare_version),
                    copy_round,
                    rounds=args.rounds,
                    ratios={"time": Ratio("seconds"), "peak_rss": Ratio("peak_rss_mb")},
                )
                return report_run_case(args, result, checks)
            if args.baseline_tree is None:
                result = run_rounds(
                    lambda _: cp_r(src_dir, tmp / "cp-copy"),
                    copy_round,
                    rounds=args.rounds,
                    ratios={
                        "time": Ratio("seconds"),
                        "cpu": Ratio("cpu_seconds"),
                        "cpu_with_server": Ratio("cpu_with_server_seconds", baseline_metric="cpu_seconds"),
                    },
                )
            else:  # the copy as another checkout has it (before/after); `cp -r` timed in the same round
                tree = args.baseline_tree.resolve()

                def before(i: int) -> dict[str, Any]:
                    cp = cp_r(src_dir, tmp / "cp-copy")
                    return {"cp_seconds": cp["seconds"], **copy_round(i, tree, "baseline")}

                result = run_rounds(
                    before,
                    copy_round,
                    rounds=args.rounds,
                    ratios={
                        "time": Ratio("seconds"),
                        "cpu": Ratio("cpu_seconds"),
                        "cpu_with_server": Ratio("cpu_with_server_seconds"),
                        "time_vs_cp": Ratio("seconds", baseline_metric="cp_seconds"),
                    },
                )
    against_tree = args.baseline_tree is not None
    peak = max(r["subject"]["peak_rss_mb"] for r in result["rounds"])
    complete = all(c["copied_bytes"] >= source_bytes and c["temp_dirs_left"] == 0 for c in checks)
    finish(
        args,
        "register_copy_vs_tree" if against_tree else "register_copy",
        result,
        goals=[Goal("time_vs_cp" if against_tree else "time", "<=", 3)],
        extra_goals={"peak RSS < 300 MB": peak < 300, "every byte copied, no temp dir left": complete},
        subject=f"register copy of a version with {source_bytes / 2**20:.0f} MB of artifacts from a real"
        " `mlflow server` into a local MLflow store",
        baseline=f"the same copy at {_commit(args.baseline_tree)} (and `cp -r` in the same round)"
        if against_tree
        else "`cp -r` of the same files",
        headline=(
            "{s[seconds]:.1f} s, CPU {s[cpu_seconds]:.2f} s (the mlflow server's {s[server_cpu_seconds]:.2f} s),"
            " peak RSS {s[peak_rss_mb]:.0f} MB; through the process: the artifacts over its socket, spliced to the"
            " file in the kernel (read/write calls: {s[read_through_process_mb]:.0f} MB read,"
            " {s[written_through_process_mb]:.0f} MB written), hard links into the target store; "
            + (
                "{b[seconds]:.1f} s, CPU {b[cpu_seconds]:.2f} s (server {b[server_cpu_seconds]:.2f} s), `cp -r`"
                " {b[cp_seconds]:.2f} s"
                if against_tree
                else "{b[seconds]:.2f} s, CPU {b[cpu_seconds]:.2f} s"
            )
        ),
        size_mb=args.size_mb,
        source_bytes=source_bytes,
        peak_rss_mb=peak,
        checks=checks,
    )
    if not complete:
        raise SystemExit("a target store holds fewer bytes than the source, or a temp dir was left")


def report_run_case(args: argparse.Namespace, result: dict[str, Any], checks: list[dict[str, Any]]) -> None:
    peak = max(r["subject"]["peak_rss_mb"] for r in result["rounds"])
    every_point = all(r["subject"]["metric_points"] == args.metric_points for r in result["rounds"])
    finish(
        args,
        "register_copy_run",
        result,
        goals=[],
        extra_goals={
            "peak RSS < 300 MB": peak < 300,
            f"all {args.metric_points:,} points copied, no temp dir left": every_point
            and all(c["temp_dirs_left"] == 0 for c in checks),
        },
        subject=f"register copy (dual tracking) of a version whose training run has {args.metric_points:,} metric"
        " points (4 metrics, 20 params) from a real `mlflow server` into a local MLflow store",
        baseline="the same copy of a version of the same files whose run has no metrics",
        headline="{s[seconds]:.1f} s, CPU {s[cpu_seconds]:.2f} s (the mlflow server's {s[server_cpu_seconds]:.2f} s),"
        " peak RSS {s[peak_rss_mb]:.0f} MB; {b[seconds]:.1f} s, CPU {b[cpu_seconds]:.2f} s, peak RSS"
        " {b[peak_rss_mb]:.0f} MB",
        metric_points=args.metric_points,
        peak_rss_mb=peak,
        checks=checks,
    )
    if not every_point:
        raise SystemExit("a copy's run holds fewer metric points than the source's")


def _commit(tree: Path | None) -> str:
    done = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h"], capture_output=True, text=True)
    return f"commit {done.stdout.strip()}" if done.returncode == 0 else str(tree)


if __name__ == "__main__":
    main()
