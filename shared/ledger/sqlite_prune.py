"""Retention on the SQLite ledger: the old records, their removal, the WAL given back."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from shared.domain.clock import iso
from shared.ledger.records import EVENT_FIELDS, EventRecord, event_from_fields

Run = Callable[[str, tuple[Any, ...] | list[Any]], sqlite3.Cursor]
_EVENT_COLUMNS = ", ".join(f"e.{name}" for name in EVENT_FIELDS)
_CHUNK = 500  # ids per statement, under SQLite's limit of bound parameters


def old_events(run: Run, cutoff: datetime) -> list[tuple[EventRecord, list[str]]]:
    rows = run(f"SELECT {_EVENT_COLUMNS} FROM events e WHERE e.received_at < ? ORDER BY e.received_at", (iso(cutoff),))
    records = [event_from_fields(dict(r)) for r in rows]
    links: dict[str, list[str]] = defaultdict(list)
    for event_id, action_id in run(
        "SELECT l.event_id, l.action_id FROM event_actions l JOIN events e ON e.id = l.event_id "
        "WHERE e.received_at < ? ORDER BY l.rowid",
        (iso(cutoff),),
    ):
        links[event_id].append(action_id)
    return [(record, links[record.id]) for record in records]


def dependents_by_upstream(run: Run) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = defaultdict(list)
    for upstream, action_id in run("SELECT after, id FROM actions WHERE after IS NOT NULL", ()):
        out[upstream].append(action_id)
    return {upstream: tuple(ids) for upstream, ids in out.items()}


def old_refusals(run: Run, cutoff: datetime) -> int:
    row = run("SELECT COUNT(*) FROM deliveries WHERE event_id IS NULL AND received_at < ?", (iso(cutoff),)).fetchone()
    return int(row[0])


def prune(run: Run, event_ids: list[str], action_ids: list[str], refused_before: datetime) -> None:
    """In the caller's transaction; children before parents (the foreign keys are on)."""
    for chunk in _chunks(action_ids):
        marks = ", ".join("?" * len(chunk))
        run(f"DELETE FROM action_log WHERE action_id IN ({marks})", chunk)
        run(f"DELETE FROM event_actions WHERE action_id IN ({marks})", chunk)
    for chunk in _chunks(event_ids):
        marks = ", ".join("?" * len(chunk))
        run(f"DELETE FROM event_actions WHERE event_id IN ({marks})", chunk)
        run(f"DELETE FROM deliveries WHERE event_id IN ({marks})", chunk)
    for chunk in _chunks(action_ids):
        run(f"DELETE FROM actions WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
    for chunk in _chunks(event_ids):
        run(f"DELETE FROM events WHERE id IN ({', '.join('?' * len(chunk))})", chunk)
    run("DELETE FROM deliveries WHERE event_id IS NULL AND received_at < ?", (iso(refused_before),))


def compact(connect: Callable[[], sqlite3.Connection]) -> None:
    """Copy the WAL into the file and truncate it to nothing; a reader in the way leaves it for the
    next prune (SQLite reuses the freed pages meanwhile: the file does not grow)."""
    db = connect()
    try:
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        db.close()


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
