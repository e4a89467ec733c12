"""Benchmark: cold start of the Functions app's index versus its bare dependencies.

    python benchmarks/cold_start.py [--rounds 7] [--samples 3] [--json benchmarks/results/cold_start.json]

Each sample is a fresh interpreter running `import function_app` (what the Functions host pays
when it indexes the app: the settings, the config validated, the routes and triggers declared) or
`import azure.functions, fastapi` (the floor: the two frameworks the app cannot do without). Each
round takes the median of ``--samples`` of the baseline, then of the subject; the ratio is per
round. Both the CPU time of the child (user + system: what the start costs, less sensitive to
other work on shared cores) and the wall time are compared. Goal: median ratio <= 1.2x.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from harness import ROOT, Goal, Ratio, add_arguments, finish, run_rounds

BASELINE = "import azure.functions, fastapi"
SUBJECT = "import function_app"


def sample(code: str) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, from the child's own rusage) of one start."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    env.pop("MODELOPS_CONFIG", None)
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, env=env, stderr=subprocess.DEVNULL)  # noqa: S603
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{code!r} failed")
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=7)
    parser.add_argument("--samples", type=int, default=5, help="interpreter starts per side and round")
    args = parser.parse_args()
    for code in (BASELINE, SUBJECT):  # warm the bytecode and page caches once for both
        sample(code)

    def timed(code: str) -> dict[str, float]:
        samples = [sample(code) for _ in range(args.samples)]
        return {
            "seconds": statistics.median(w for w, _ in samples),
            "cpu_seconds": statistics.median(c for _, c in samples),
        }

    result = run_rounds(
        lambda _: timed(BASELINE),
        lambda _: timed(SUBJECT),
        rounds=args.rounds,
        ratios={"cpu": Ratio("cpu_seconds"), "wall": Ratio("seconds")},
    )
    finish(
        args,
        "cold_start",
        result,
        goals=[Goal("cpu", "<=", 1.2), Goal("wall", "<=", 1.2)],
        subject=f"`{SUBJECT}`",
        baseline=f"`{BASELINE}`",
        headline="{s[cpu_seconds]:.3f} s CPU, {s[seconds]:.3f} s wall;"
        " {b[cpu_seconds]:.3f} s CPU, {b[seconds]:.3f} s wall",
        samples=args.samples,
    )


if __name__ == "__main__":
    main()
