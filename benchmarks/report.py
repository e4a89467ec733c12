"""Regenerate the benchmark tables (docs/benchmarks.md, and the README's summary) from the result files in
``benchmarks/results/``.

    python -m benchmarks.report            # rewrite both tables between their markers
    python -m benchmarks.report --check    # exit 1 if a table is not what the result files say

Each row is one result file written by a benchmark's ``--json``: medians of per-round ratios
(baseline and subject alternating), their min and max, the load average over the rounds, and the
command that produced it. The README's summary keeps the headline, the ratios and the goals.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BEGIN = "<!-- benchmark-table:begin (python -m benchmarks.report) -->"
END = "<!-- benchmark-table:end -->"
SUMMARY_BEGIN = "<!-- benchmark-summary:begin (python -m benchmarks.report) -->"
SUMMARY_END = "<!-- benchmark-summary:end -->"
ORDER = [
    "ingest",
    "ingest_vs_tree",
    "ingest_azure",
    "cold_start",
    "cold_start_vs_tree",
    "cold_start_source",
    "batch_local",
    "register_copy",
    "register_copy_vs_tree",
    "register_copy_run",
    "deploy_local",
    "router",
    "reconcile",
    "cleanup_plan",
]


def load(results: Path) -> list[dict[str, Any]]:
    found = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found, key=lambda r: (rank.get(r["benchmark"], len(ORDER)), r["benchmark"]))


def _ratio(name: str, s: dict[str, float]) -> str:
    return f"{name} **{s['median']:.2f}x** ({s['min']:.2f}–{s['max']:.2f})"


def _ratios(result: dict[str, Any]) -> str:
    return "; ".join(_ratio(n, s) for n, s in result["ratios"].items())


def row(result: dict[str, Any]) -> str:
    ratios = _ratios(result)
    goals = "; ".join(f"{g}: **{'met' if ok else 'not met'}**" for g, ok in result["goals_met"].items()) or "—"
    load = result["loadavg_1m"]
    cells = [
        f"{result['benchmark']}: {result['subject']} vs {result['baseline']}",
        result["headline"],
        f"{ratios} over {len(result['rounds'])} rounds",
        goals,
        f"{load['min']:.1f}–{load['max']:.1f}",
        f"`{result['command']}` ({result['at'][:16].replace('T', ' ')} UTC)",
    ]
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def table(results: list[dict[str, Any]]) -> str:
    head = [
        "| benchmark: subject vs baseline | medians (subject; baseline) | ratio, median of rounds (min–max) "
        "| goal | load avg 1m | command (run at) |",
        "|---|---|---|---|---|---|",
    ]
    return "\n".join(head + [row(r) for r in results])


def summary(results: list[dict[str, Any]]) -> str:
    """The README's table: what each benchmark compares, its ratios and goals, the command."""
    head = "| benchmark | subject; baseline (medians) | ratio, median (min–max) | goal | command |"
    lines = [head, "|---|---|---|---|---|"]
    for result in results:
        goals = "; ".join(f"{g}: {'met' if ok else 'not met'}" for g, ok in result["goals_met"].items()) or "—"
        cells = [result["benchmark"], result["headline"], f"{_ratios(result)}, {len(result['rounds'])} rounds", goals]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + f" | `{result['command']}` |")
    return "\n".join(lines)


def render(page: str, body: str, begin: str = BEGIN, end: str = END) -> str:
    if begin not in page or end not in page:
        raise SystemExit(f"the page has no benchmark table markers ({begin} ... {end})")
    before, rest = page.split(begin, 1)
    _, after = rest.split(end, 1)
    return f"{before}{begin}\n{body}\n{end}{after}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--page", type=Path, default=HERE.parent / "docs" / "benchmarks.md")
    parser.add_argument("--readme", type=Path, default=HERE.parent / "README.md", help="its summary table")
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--check", action="store_true", help="only check that the table is current")
    args = parser.parse_args(argv)
    results = load(args.results)
    if not results:
        raise SystemExit(f"no result files in {args.results}: run a benchmark with --json first")
    pages = {
        args.page: lambda text: render(text, table(results)),
        args.readme: lambda text: render(text, summary(results), SUMMARY_BEGIN, SUMMARY_END),
    }
    stale = 0
    for page, rewrite in pages.items():
        if not page.exists():
            print(f"{page}: no such file (--page / --readme)")
            return 1
        text = page.read_text()
        new = rewrite(text)
        if args.check:
            if new != text:
                print(f"{page}: the benchmark table is not what {args.results} says; run python -m benchmarks.report")
                stale += 1
            else:
                print(f"{page}: benchmark table current ({len(results)} result files)")
        else:
            page.write_text(new)
            print(f"{page}: benchmark table rewritten from {len(results)} result files")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
