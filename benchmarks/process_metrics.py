"""What a benchmark measures of a process: CPU time, bytes through its system calls, peak RSS (its own
and its process tree's, sampled), and py-spy profiles of it while it runs."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from harness import ROOT


def profile(pid: int, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling every thread of ``pid`` and its child processes (the server's uvicorn worker)
    while on CPU (threads waiting on a socket or a lock are left out): where the CPU time goes."""
    spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
    options = ["--rate", "200", "--nonblocking", "--threads", "--subprocesses", "--format", "raw"]
    command = [spy, "record", "--pid", str(pid), *options, "-o", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603
    time.sleep(1)  # py-spy attaches before the copy starts
    return process


def cpu_seconds() -> float:
    """CPU time (user + system, every thread) this process has used."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU time the process ``pid`` and its children (the mlflow server's uvicorn) have used; 0 without one."""
    import psutil

    if pid is None:
        return 0.0
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        times = proc.cpu_times()
        total += times.user + times.system
    return total


def proc_io() -> dict[str, int]:
    """Bytes this process read and wrote through system calls (sockets and files alike)."""
    return {k: int(v) for k, v in (line.split(": ") for line in Path("/proc/self/io").read_text().splitlines())}


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


def run_sampled(
    command: list[str], env: dict[str, str], cwd: Path = ROOT
) -> tuple[subprocess.CompletedProcess[str], float, float]:
    """Run ``command``, sampling its process tree's RSS every 20 ms. Returns (result, peak MB, wall s)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
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
