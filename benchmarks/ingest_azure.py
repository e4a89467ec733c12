"""Benchmark: the Azure intake path (Table Storage ledger + Storage queue, on Azurite) versus a bare
entity insert plus a queue send per delivery, or versus the intake of another checkout.

    python benchmarks/ingest_azure.py [--rounds 5] [--deliveries 300] [--concurrency 16]
        [--baseline-tree DIR] [--json benchmarks/results/ingest_azure.json]

Each side runs in a process of its own (benchmarks/azure_side.py) on the real SDKs against one
Azurite, from ``--concurrency`` threads, on tables and queues of its own. Subject: `Reactor.accept`
of parsed MLflow `model_version.created` events (30% exact redeliveries) as the Functions app runs
it with MODELOPS_STATE_BACKEND=azure: the event with its key claim, the register action with its
own, the audit line, then the queue message. Baseline: for each delivery one `create_entity` of a
comparable entity and one `send_message`, which is the least any durable intake on these two
services can do; with ``--baseline-tree DIR``, the same intake imported from that checkout (before
/ after). Rounds alternate the two, each with fresh versions. The ledgers are checked after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import ROOT, Goal, Ratio, add_arguments, finish, run_rounds
from ingest import CONFIG

MODEL = "bench-model"


class Process:
    """A side (benchmarks/azure_side.py) running ``kind`` with the code of ``tree``, on its own names."""

    def __init__(self, kind: str, tree: Path, env: dict[str, str], suffix: str, log: Path) -> None:
        names = {"MODELOPS_LEDGER_TABLE": f"bench{suffix}", "MODELOPS_ACTIONS_QUEUE": f"bench-{suffix}"}
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "benchmarks" / "azure_side.py"), kind, str(tree)],
            env={**env, **names, "MODELOPS_STATE_DIR": env["MODELOPS_STATE_DIR"] + suffix},
            cwd=tree,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        self.ask_ready()

    def ask_ready(self) -> None:
        line = self.process.stdout.readline() if self.process.stdout else ""
        if not line:
            raise SystemExit(f"a benchmark side did not start: see {self.log.name}")

    def ask(self, op: str, **command: Any) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps({"op": op, **command}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise SystemExit(f"a benchmark side died: see {self.log.name}")
        return json.loads(line)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=60)
        self.log.close()


def per_delivery(counts: dict[str, Any]) -> dict[str, dict[str, float]]:
    out = {}
    for name, by_label in counts["by_kind"].items():
        n = counts["deliveries"].get(name, 0)
        if n:
            per = {label: round(c / n, 2) for label, c in sorted(by_label.items())}
            table = sum(c for label, c in by_label.items() if label.startswith("table")) / n
            out[name] = {"deliveries": n, "table_requests": round(table, 2), **per}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, rounds=5)
    parser.add_argument("--deliveries", type=int, default=300, help="per side and round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--duplicates", type=float, default=0.3)
    parser.add_argument(
        "--baseline-tree", type=Path, default=None, help="baseline: the intake of this checkout, not the bare path"
    )
    args = parser.parse_args()
    tree = args.baseline_tree.resolve() if args.baseline_tree else None

    from tests.contract.azurite import Azurite

    with tempfile.TemporaryDirectory(prefix="bench-azure-") as tmp_name, Azurite(Path(tmp_name) / "azurite") as azurite:
        tmp = Path(tmp_name)
        (tmp / "modelops.yaml").write_text(CONFIG % {"tmp": tmp})
        env = {
            **os.environ,
            "MODELOPS_STATE_BACKEND": "azure",
            "AzureWebJobsStorage": azurite.connection_string,
            "MODELOPS_CONFIG": str(tmp / "modelops.yaml"),
            "MODELOPS_STATE_DIR": str(tmp / "state"),
        }
        env.pop("PYTHONPATH", None)
        baseline = Process("reactor", tree, env, "before", tmp / "before.log") if tree else None
        baseline = baseline or Process("bare", ROOT, env, "bare", tmp / "bare.log")
        subject = Process("reactor", ROOT, env, "after", tmp / "after.log")
        sides = (baseline, subject)
        try:
            for side in sides:  # connections, first requests, the ledger's table and layout
                side.ask("round", first=1, count=32, duplicates=0.0, seed=1, concurrency=args.concurrency, model="warm")
                side.ask("reset")

            def run(target: int, i: int) -> dict[str, float]:
                first = 1 + (2 * i + target) * 100_000  # fresh versions each round and side
                command = {"first": first, "count": args.deliveries, "duplicates": args.duplicates, "seed": 8 + i}
                answer = sides[target].ask("round", **command, concurrency=args.concurrency)
                distinct[target] += answer["distinct"]
                return dict(answer["metrics"])

            distinct = [0, 0]
            result = run_rounds(
                lambda i: run(0, i),
                lambda i: run(1, i),
                rounds=args.rounds,
                ratios={"throughput": Ratio("throughput_per_s"), "p99": Ratio("p99_ms"), "p50": Ratio("p50_ms")},
            )
            requests = {
                "subject": per_delivery(subject.ask("counts")),
                "baseline": per_delivery(baseline.ask("counts")),
            }
            ledgers = {"subject": check(subject.ask("check"), distinct[1], args)}
            if tree:
                ledgers["baseline"] = check(baseline.ask("check"), distinct[0], args)
            costs = None if tree else baseline.ask("costs")
        finally:
            for side in sides:
                side.close()
    consistent = all(ledger["consistent"] for ledger in ledgers.values())
    print(f"  requests per delivery: {requests}\n  ledgers: {ledgers}")
    finish(
        args,
        "ingest_azure_vs_tree" if tree else "ingest_azure",
        result,
        goals=[] if tree else [Goal("throughput", ">=", 0.7), Goal("p99", "<=", 1.5)],
        extra_goals={"ledger consistent": consistent},
        subject=f"Azure intake (`Reactor.accept`: Table Storage ledger + queue, Azurite), {args.duplicates:.0%}"
        f" duplicates, {args.concurrency} threads",
        baseline=f"the same intake at commit {commit(tree)} (its own table and queue)"
        if tree
        else "one bare entity insert + one queue send per delivery",
        headline="{s[throughput_per_s]:.0f}/s, p50 {s[p50_ms]:.0f} ms, p99 {s[p99_ms]:.0f} ms;"
        " {b[throughput_per_s]:.0f}/s, p50 {b[p50_ms]:.0f} ms, p99 {b[p99_ms]:.0f} ms" + requests_text(requests),
        requests_per_delivery=requests,
        sdk_cpu_ms_per_call=costs,
        ledger=ledgers,
    )
    if not consistent:
        raise SystemExit(f"a Table ledger does not match what was answered: {ledgers}")


def check(found: dict[str, Any], distinct: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every new answer is one event with one action; every delivery was counted."""
    accepted = found["answered"].get("accepted", 0)
    consistent = accepted == distinct == found["events"] == found["actions"]
    consistent = consistent and found["deliveries_counted"] == args.rounds * args.deliveries
    return {**found, "expected_distinct": distinct, "consistent": consistent}


def commit(tree: Path | None) -> str:
    done = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return done.stdout.strip() or str(tree)


def requests_text(requests: dict[str, dict[str, dict[str, float]]]) -> str:
    """The requests per delivery, for the docs table row (Table requests + queue sends)."""

    def one(side: str, name: str) -> str:
        counts = requests[side].get(name, {})
        return f"{counts.get('table_requests', 0):g} + {counts.get('queue POST', 0):g}"

    subject = f"new event {one('subject', 'new')}, duplicate {one('subject', 'duplicate')}"
    if "bare" in requests["baseline"]:
        return f"; Table + queue requests per delivery: {subject}; baseline {one('baseline', 'bare')}"
    before = f"new event {one('baseline', 'new')}, duplicate {one('baseline', 'duplicate')}"
    return f"; Table + queue requests per delivery: {subject}; before: {before}"


if __name__ == "__main__":
    main()
