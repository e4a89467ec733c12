"""What the CLI prints: tables (aligned, or tab-separated for scripts) and JSON, and the one table
of events and the one table of actions every command and the demo summary show."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shared.domain.outputs import ValidateOutputs

OUTPUTS = ("table", "json", "tsv")

EVENT_HEADERS = ["EVENT", "RECEIVED", "SOURCE", "KIND", "MODEL", "STATUS", "DELIVERIES", "REASON"]
ACTION_HEADERS = ["ACTION", "KIND", "TARGET", "MODEL", "STATUS", "TRIES", "TOOK", "RESULT"]
VALIDATION_HEADERS = ["METRIC", "CANDIDATE", "BASELINE", "BAR", "VERDICT"]


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    line = lambda values: "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()  # noqa: E731
    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(row) for row in cells]
    return "\n".join(out)


def tsv(rows: Sequence[Sequence[Any]]) -> str:
    """Tab-separated rows without headers, for `cut` and `while read` (as `az -o tsv`)."""
    return "\n".join("\t".join(_cell(v).replace("\t", " ") for v in row) for row in rows)


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def emit(output: str, data: Any, rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    """``data`` as JSON, or ``rows`` as a table or TSV, as ``-o/--output`` asks."""
    if output == "json":
        emit_json(data)
    elif output == "tsv":
        if rows:
            print(tsv(rows))
    else:
        print(table(rows, headers))


@dataclass(frozen=True)
class Section:
    """One table of a command's report: a title, its rows and their headers."""

    title: str
    rows: Sequence[Sequence[Any]]
    headers: Sequence[str]


def emit_sections(output: str, data: Any, sections: Sequence[Section], *, lines: Sequence[str] = ()) -> None:
    """A report of several tables: ``data`` as JSON; tables under their titles (then ``lines``, the
    prose a person reads); or TSV rows with the section title first, for `awk '$1 == "rule"'`."""
    if output == "json":
        emit_json(data)
        return
    if output == "tsv":
        rows = [[s.title, *row] for s in sections for row in s.rows]
        if rows:
            print(tsv(rows))
        return
    for number, section in enumerate(sections):
        if section.rows:
            print(("\n" if number else "") + section.title)
            print(table(section.rows, section.headers))
    for line in lines:
        print(line)


LIMIT_HELP = "show at most this many, newest first; a cut listing says how many more on stderr"
COUNT_CAP = 10_000  # rows counted past a cut listing; beyond it the note says "more than"


def cut_note(shown: int, more: int, limit: int, *, noun: str) -> None:
    """Say on stderr that a listing stopped at --limit, how many more there are and how to see them."""
    if more <= 0:
        return
    count = f"more than {COUNT_CAP:,}" if more > COUNT_CAP else f"{more:,} more"
    print(
        f"showing the newest {shown} {noun}; {count} not shown: raise --limit (e.g. --limit {limit + min(more, 1000)})"
        " or narrow the filters",
        file=sys.stderr,
    )


def narrator(output: str) -> Callable[[str], None]:
    """Where progress lines go: stdout for people, stderr when stdout carries JSON or TSV for a program."""
    if output != "table":
        return lambda line: print(line, file=sys.stderr)
    return print


def event_rows(events: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [
            e["id"],
            (e.get("received_at") or "")[:19],
            e["source"],
            e.get("kind") or e.get("source_type"),
            model_of(e),
            e["status"],
            e.get("deliveries"),
            _short(e.get("reason") or ""),
        ]
        for e in events
    ]


def action_rows(actions: Sequence[Mapping[str, Any]]) -> list[list[Any]]:
    return [
        [
            a["id"],
            a["kind"],
            a["target"],
            model_of(a),
            a["status"],
            a["attempts"],
            f"{a['duration_ms'] / 1000:.1f}s" if a.get("duration_ms") is not None else "",
            _short(a.get("error") or key_output(a.get("outputs") or {})),
        ]
        for a in actions
    ]


def key_output(outputs: Mapping[str, Any]) -> str:
    """The one output a reader looks for first: where it serves, what it wrote, where it copied to,
    how a validation went."""
    if outputs.get("verdicts"):
        verdict = ValidateOutputs.from_dict(dict(outputs))
        return f"{'passed' if verdict.passed else 'failed'}: {verdict.summary()}"
    for key in ("scoring_url", "output", "model_uri"):
        if outputs.get(key):
            extra = f" ({outputs['rows']:,} rows)" if key == "output" and outputs.get("rows") else ""
            return f"{outputs[key]}{extra}"
    return ""


def validation_rows(outputs: Mapping[str, Any]) -> list[list[Any]]:
    """A validation's verdicts as rows of a table, candidate vs baseline (VALIDATION_HEADERS)."""
    rows = []
    for v in outputs.get("verdicts") or []:
        bar = []
        if v.get("threshold") is not None:
            bar.append(f"{'>=' if v.get('greater_is_better') else '<='} {v['threshold']:g}")
        if v.get("min_absolute_change") is not None:
            bar.append(f"+{v['min_absolute_change']:g} over baseline")
        if v.get("min_relative_change") is not None:
            bar.append(f"+{v['min_relative_change']:.0%} over baseline")
        cells = [f"{v[key]:.4f}" if v.get(key) is not None else "-" for key in ("candidate", "baseline")]
        rows.append([v["metric"], *cells, ", ".join(bar), "passed" if v.get("passed") else v.get("why", "failed")])
    return rows


def model_of(row: Mapping[str, Any]) -> str:
    name, version = row.get("model_name"), row.get("model_version")
    return f"{name}/{version}" if name and version else str(name or "")


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _short(text: object, width: int = 80) -> str:
    value = str(text).replace("\n", " ")
    return value if len(value) <= width else value[: width - 1] + "…"
