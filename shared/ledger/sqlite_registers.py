"""Named registers and reports in the SQLite ledger: watermarks (written whole, or compare-and-set
by a conditional UPDATE: the serving-line holders, pins and alias views of
shared/service/desired.py live here) and the reports of timer runs (reconcile, cleanup, retention)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from shared.domain.clock import iso
from shared.ledger.sqlite_prune import Run


def get_watermark(run: Run, name: str) -> str | None:
    row = run("SELECT value FROM watermarks WHERE name = ?", (name,)).fetchone()
    return str(row[0]) if row else None


def set_watermark(run: Run, name: str, value: str, now: datetime) -> None:
    run(
        "INSERT INTO watermarks(name, value, updated_at) VALUES (?,?,?)"
        " ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        (name, value, iso(now)),
    )


def swap_watermark(run: Run, name: str, expected: str | None, value: str, now: datetime) -> bool:
    """Created if absent, else replaced only while it still holds ``expected``."""
    if expected is None:
        added = run(
            "INSERT INTO watermarks(name, value, updated_at) VALUES (?,?,?) ON CONFLICT(name) DO NOTHING",
            (name, value, iso(now)),
        )
        return added.rowcount == 1
    swapped = run(
        "UPDATE watermarks SET value = ?, updated_at = ? WHERE name = ? AND value = ?",
        (value, iso(now), name, expected),
    )
    return swapped.rowcount == 1


def record_report(run: Run, report_id: str, kind: str, report: dict[str, Any], now: datetime) -> None:
    run(
        "INSERT INTO reports(id, kind, created_at, body) VALUES (?,?,?,?)",
        (report_id, kind, iso(now), json.dumps(report, default=str)),
    )


def list_reports(run: Run, kind: str, limit: int) -> list[dict[str, Any]]:
    newest_first = "SELECT id, created_at, body FROM reports WHERE kind = ? ORDER BY created_at DESC LIMIT ?"
    rows = run(newest_first, (kind, limit))
    return [{"id": r["id"], "created_at": r["created_at"], **json.loads(r["body"])} for r in rows]
