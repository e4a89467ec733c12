"""The harness every benchmark runs on: baseline and subject alternate in rounds (A B A B ...), each
round gives one ratio per metric, and the result is the median of those ratios with their min and
max, with the load average read at every round. On shared cores a single before/after pair tells
little (the same bare route gave 1,587, 2,886 and 1,883 req/s in one morning); a median of
per-round ratios, each taken seconds apart, is what survives that noise.

    result = run_rounds(baseline, subject, rounds=5, ratios={...})   # callables return metric dicts
    finish(args, "ingest", result, goals=[Goal("throughput", ">=", 0.75)], ...)

`--json PATH` (see ``add_arguments``) writes the result file that `python -m benchmarks.report`
turns into the table of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

Metrics = Mapping[str, float]


def load1() -> float:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else 0.0


def machine() -> dict[str, Any]:
    """What the figures were measured on (load matters: the cores are shared)."""
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 3000 samples is a real sample)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Ratio:
    """``subject[metric] / baseline[metric]`` per round (``baseline_metric`` when they differ);
    ``inverse``: baseline over subject (a time ratio read as a speed: 0.9 = 90% of the baseline's)."""

    metric: str
    baseline_metric: str | None = None
    inverse: bool = False

    def of(self, baseline: Metrics, subject: Metrics) -> float:
        a, b = baseline[self.baseline_metric or self.metric], subject[self.metric]
        return a / b if self.inverse else b / a


@dataclass(frozen=True)
class Goal:
    """A goal on the median of one ratio: ``ratio op limit``."""

    ratio: str
    op: str  # "<=" or ">="
    limit: float

    def met(self, value: float) -> bool:
        return value <= self.limit if self.op == "<=" else value >= self.limit

    def text(self) -> str:
        return f"{self.ratio} {self.op} {self.limit:g}x"


def run_threads(count: int, target: Callable[[], None]) -> float:
    """Run ``target`` on ``count`` threads at once; the seconds until the last one ended."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - start


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def run_rounds(
    baseline: Callable[[int], Metrics],
    subject: Callable[[int], Metrics],
    *,
    rounds: int,
    ratios: Mapping[str, Ratio],
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run ``baseline(i)`` then ``subject(i)`` for each round ``i``; ratios and load per round."""
    if rounds < 1:
        raise SystemExit("--rounds must be at least 1")
    per_round: list[dict[str, Any]] = []
    for i in range(rounds):
        load_before = load1()
        a = dict(baseline(i))
        b = dict(subject(i))
        got = {name: r.of(a, b) for name, r in ratios.items()}
        row = {"round": i + 1, "loadavg_1m": load_before, "baseline": a, "subject": b, "ratios": got}
        per_round.append(row)
        log(f"  round {i + 1}/{rounds} (load {load_before:.2f}): " + ", ".join(f"{n} {v:.3f}x" for n, v in got.items()))
    loads = [r["loadavg_1m"] for r in per_round] + [load1()]
    return {
        "rounds": per_round,
        "ratios": {name: spread([r["ratios"][name] for r in per_round]) for name in ratios},
        "baseline_median": _medians([r["baseline"] for r in per_round]),
        "subject_median": _medians([r["subject"] for r in per_round]),
        "loadavg_1m": spread(loads),
    }


def _medians(rows: list[dict[str, Any]]) -> dict[str, float]:
    keys = [k for k, v in rows[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
    return {k: statistics.median(float(r[k]) for r in rows) for k in keys}


def add_arguments(parser: argparse.ArgumentParser, *, rounds: int = 5) -> None:
    parser.add_argument("--rounds", type=int, default=rounds, help="A/B rounds (baseline then subject, each round)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write the result file here")


def finish(
    args: argparse.Namespace,
    name: str,
    result: dict[str, Any],
    *,
    goals: list[Goal],
    subject: str,
    baseline: str,
    headline: str,
    extra_goals: Mapping[str, bool] | None = None,
    **details: Any,
) -> dict[str, Any]:
    """Print the verdict and write ``--json``. ``headline`` is the one-line figure for the docs' table,
    formatted with the median metrics (``{s[metric]}`` subject, ``{b[metric]}`` baseline)."""
    met = {g.text(): g.met(result["ratios"][g.ratio]["median"]) for g in goals}
    met.update(extra_goals or {})
    out = {
        "benchmark": name,
        "command": command_line(),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "subject": subject,
        "baseline": baseline,
        "headline": headline.format(s=result["subject_median"], b=result["baseline_median"]),
        "goals": [{"ratio": g.ratio, "op": g.op, "limit": g.limit} for g in goals],
        "goals_met": met,
        **result,
        **details,
    }
    load = result["loadavg_1m"]
    print(f"{name}: {len(result['rounds'])} rounds, load average {load['min']:.2f}-{load['max']:.2f}")
    for ratio, s in result["ratios"].items():
        print(f"  {ratio}: median {s['median']:.3f}x (min {s['min']:.3f}x, max {s['max']:.3f}x)")
    for goal, ok in met.items():
        print(f"  goal {goal}: {'MET' if ok else 'NOT MET'}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"result: {args.json}")
    return out


def command_line() -> str:
    """The command as one would type it from the repository root."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(ROOT))
    except ValueError:
        shown = str(script)
    return " ".join(["python", shown, *sys.argv[1:]])
