"""The cleanup report: every group considered, the decision, the reason and what happened."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from shared.cleanup.planner import Planned
from shared.cleanup.policy import Action
from shared.timeparse import format_timestamp

DECISIONS = [a.value for a in Action]
_ORDER = {Action.DELETE: 0, Action.OVER_CAP: 1, Action.MARK: 2, Action.UNMARK: 3, Action.SKIP: 4}


def _ts(moment: datetime | None) -> str | None:
    return format_timestamp(moment) if moment else None


@dataclass
class GroupRow:
    scope: str
    name: str
    id: str
    location: str
    decision: str
    reason: str
    detail: str
    expires_at: str | None = None
    marked_until: str | None = None
    new_mark: str | None = None
    # planned (dry run) | marked | unmarked | started | finished | failed | skipped-locked
    status: str | None = None
    error: str | None = None
    started_at: str | None = None
    finished_at: str | None = None

    @classmethod
    def from_planned(cls, item: Planned, *, dry_run: bool) -> GroupRow:
        d, g = item.decision, item.group
        acts = d.action in (Action.MARK, Action.UNMARK, Action.DELETE)
        return cls(
            scope=g.scope,
            name=g.name,
            id=g.id,
            location=g.location,
            decision=d.action.value,
            reason=d.reason.value,
            detail=d.detail,
            expires_at=_ts(d.expires_at),
            marked_until=_ts(d.marked_until),
            new_mark=d.new_mark,
            status="planned" if acts and dry_run else None,
        )


@dataclass
class CleanupReport:
    run_id: str
    provider: str
    dry_run: bool
    now: datetime  # the policy clock the decisions were made against
    started_at: datetime
    finished_at: datetime | None = None
    rows: list[GroupRow] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # scopes that could not be listed
    warnings: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        seen = Counter(row.decision for row in self.rows)
        return {d: seen.get(d, 0) for d in DECISIONS}

    def status_counts(self) -> dict[str, int]:
        return dict(Counter(row.status for row in self.rows if row.status))

    def row(self, name: str, scope: str | None = None) -> GroupRow:
        return next(r for r in self.rows if r.name == name and scope in (None, r.scope))

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "provider": self.provider,
            "dry_run": self.dry_run,
            "now": _ts(self.now),
            "started_at": _ts(self.started_at),
            "finished_at": _ts(self.finished_at),
            "counts": self.counts(),
            "status_counts": self.status_counts(),
            "errors": list(self.errors),
            "warnings": list(self.warnings),
            "groups": [asdict(row) for row in self.rows],
        }


def format_report_table(report: CleanupReport) -> str:
    """A fixed-width table for the CLI, actionable rows first."""
    header = ("SCOPE", "GROUP", "DECISION", "REASON", "STATUS", "DETAIL")
    rows = sorted(report.rows, key=lambda r: (_ORDER[Action(r.decision)], r.scope, r.name))
    cells = [header] + [
        (r.scope, r.name, r.decision, r.reason, r.status or "-", r.detail + (f" [{r.error}]" if r.error else ""))
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header) - 1)]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(widths))) + "  " + c[-1] for c in cells]
    mode = "dry run (nothing written)" if report.dry_run else "applied"
    counts = ", ".join(f"{k}={v}" for k, v in report.counts().items())
    lines.append("")
    lines.append(f"cleanup {report.run_id} [{report.provider}] {mode}: {counts}")
    for status, n in sorted(report.status_counts().items()):
        lines.append(f"  {status}: {n}")
    lines += [f"  error: {e}" for e in report.errors] + [f"  warning: {w}" for w in report.warnings]
    return "\n".join(line.rstrip() for line in lines)
