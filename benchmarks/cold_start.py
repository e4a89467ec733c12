"""Benchmark: cold start of the Functions app's index versus its bare dependencies.

    .venv/bin/python benchmarks/cold_start.py [--repeat 15]

Each sample is a fresh interpreter running `import function_app` (what the Functions host pays
when it indexes the app) or `import azure.functions, fastapi` (the floor: the two frameworks the
app cannot do without). The two alternate so load on the shared cores hits both alike. Goal:
median within 1.5x of the baseline.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

from _common import ROOT, verdict, write_result

VARIANTS = {
    "function_app": "import function_app",
    "baseline": "import azure.functions, fastapi",
}


def sample(code: str) -> float:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    for code in VARIANTS.values():  # warm the bytecode and page caches once for both
        sample(code)
    samples: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for _ in range(args.repeat):
        for name, code in VARIANTS.items():
            samples[name].append(sample(code))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    ratio = medians["function_app"] / medians["baseline"]
    for name, values in samples.items():
        print(f"{name:13s} median {medians[name] * 1000:7.0f} ms  min {min(values) * 1000:7.0f} ms  ({VARIANTS[name]})")
    print(f"ratio function_app/baseline: {ratio:.2f}x  (goal <= 1.5x: {verdict(ratio <= 1.5)})")
    path = write_result(
        "cold_start",
        f"{sys.executable} benchmarks/cold_start.py --repeat {args.repeat}",
        {
            "repeat": args.repeat,
            "median_s": medians,
            "min_s": {n: min(v) for n, v in samples.items()},
            "ratio": ratio,
            "goal": "ratio <= 1.5",
            "met": ratio <= 1.5,
        },
    )
    print(f"result: {path}")


if __name__ == "__main__":
    main()
