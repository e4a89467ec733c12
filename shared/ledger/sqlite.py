"""The embedded ledger: the storage port on one SQLite file (WAL), under the shared core.

Each ledger operation is one BEGIN IMMEDIATE transaction (``unit_of_work``), so an intake is
atomic and concurrent duplicates serialize; the compare-and-set is an UPDATE conditioned on the
fields a transition decided on.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from shared.domain.actions import QUEUED, RUNNING, SUCCEEDED, WAITING, Action
from shared.domain.clock import Clock, iso, now_utc
from shared.domain.ids import random_hex
from shared.ledger import sqlite_prune, sqlite_registers
from shared.ledger.base import ACCEPTED
from shared.ledger.core import LedgerCore
from shared.ledger.records import (
    ACTION_FIELDS,
    DELIVERY_FIELDS,
    EVENT_FIELDS,
    ActionQuery,
    DeliveryRecord,
    EventRecord,
    action_from_fields,
    action_to_fields,
    delivery_from_fields,
    encode_json,
    event_from_fields,
    event_to_fields,
)
from shared.ledger.sqlite_db import SqliteFile
from shared.ledger.store import NewEvent, Stored
from shared.ledger.transitions import Transition

T = TypeVar("T")
_ACTION_COLUMNS = ", ".join(ACTION_FIELDS)
_EVENT_COLUMNS = ", ".join(EVENT_FIELDS)  # not the payload: only replay reads it
_DELIVERY_COLUMNS = ", ".join(DELIVERY_FIELDS)
_ACTION_SETS = ", ".join(f"{name} = ?" for name in ACTION_FIELDS if name != "id")
# the intake's statements, written once (not joined again for every row)
_INSERT_EVENT = f"INSERT INTO events({_EVENT_COLUMNS}, payload) VALUES ({', '.join('?' * (len(EVENT_FIELDS) + 1))})"
_INSERT_DELIVERY = f"INSERT INTO deliveries({_DELIVERY_COLUMNS}) VALUES ({', '.join('?' * len(DELIVERY_FIELDS))})"
_KEYS_TAKEN = "SELECT 1 FROM actions WHERE key IN (%s) LIMIT 1"
_INSERT_LOG = "INSERT INTO action_log(action_id, at, worker, message) VALUES (?,?,?,?)"
_LINK = "INSERT OR IGNORE INTO event_actions(event_id, action_id) VALUES (?,?)"
_COUNT_DELIVERY = f"UPDATE events SET deliveries = deliveries + 1 WHERE id = ? RETURNING {_EVENT_COLUMNS}"
_INSERT_ACTION = (
    f"INSERT INTO actions({_ACTION_COLUMNS}) VALUES ({', '.join('?' * len(ACTION_FIELDS))}) ON CONFLICT(key) DO NOTHING"
)


class SqliteStore:
    """The ``LedgerStore`` of one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = SqliteFile(path)

    def _run(self, sql: str, args: tuple[Any, ...] | list[Any] = ()) -> sqlite3.Cursor:
        return self._file.db().execute(sql, args)

    def unit_of_work(self) -> AbstractContextManager[None]:
        return self._file.transaction()

    def submit(self, unit: Callable[[], T]) -> Future[T]:
        return self._file.submit(unit)

    async def submit_async(self, unit: Callable[[], T]) -> T:
        return await self._file.submit_async(unit)

    group_commit = True

    def new_id(self, prefix: str, now: datetime) -> str:
        return f"{prefix}_{int(now.timestamp() * 1000):011x}{random_hex(9)}"

    # -- events ---------------------------------------------------------------------------
    def add_event(self, new: NewEvent) -> tuple[str, bool]:
        # looked up first, inside the write transaction: a duplicate (a third of webhook traffic)
        # then costs one indexed read, not the encoding of an event (``payload`` is called only here)
        record = new.record
        found = self._run("SELECT id FROM events WHERE dedupe_key = ?", (record.dedupe_key,)).fetchone()
        if found is not None:
            return str(found[0]), False
        fields = event_to_fields(record)
        self._run(_INSERT_EVENT, [*(fields[name] for name in EVENT_FIELDS), encode_json(new.payload())])
        self.add_delivery(new.delivery)
        return record.id, self._add_plan(record.id, new.plan())

    def _add_plan(self, event_id: str, steps: list[Transition]) -> bool:
        """A new event's actions with their audit lines and links, in the same transaction, when no
        action key is taken (else False: the core links the actions held by those keys)."""
        keys = [step.action.key for step in steps]
        if len(set(keys)) < len(keys):  # not from a rule's plan (those plan a key once): the core's way
            return False
        if keys and self._run(_KEYS_TAKEN % ", ".join("?" * len(keys)), keys).fetchone() is not None:
            return False
        db = self._file.db()
        actions = [action_to_fields(step.action) for step in steps]
        db.executemany(_INSERT_ACTION, [[fields[name] for name in ACTION_FIELDS] for fields in actions])
        db.executemany(
            _INSERT_LOG, [(s.action.id, iso(s.action.created_at), s.worker, line) for s in steps for line in s.lines]
        )
        db.executemany(_LINK, [(event_id, step.action.id) for step in steps])
        return True

    def linked(self, event_id: str) -> list[str] | None:
        # an intake is one transaction: an event's actions are linked as soon as it is visible
        rows = self._run("SELECT action_id FROM event_actions WHERE event_id = ? ORDER BY rowid", (event_id,))
        return [r[0] for r in rows]

    def link(self, event_id: str, action_ids: list[str], *, accept: bool) -> None:
        if accept:
            self._run("UPDATE events SET status = ?, reason = NULL WHERE id = ?", (ACCEPTED, event_id))
        for action_id in action_ids:
            self._run(_LINK, (event_id, action_id))

    def count_delivery(self, event_id: str, delivery: DeliveryRecord) -> EventRecord | None:
        # the event as counted, in the same statement (RETURNING: SQLite 3.35+)
        rows = self._run(_COUNT_DELIVERY, (event_id,)).fetchall()
        self.add_delivery(delivery)
        return event_from_fields(dict(rows[0])) if rows else None

    def add_delivery(self, delivery: DeliveryRecord) -> None:
        self._run(_INSERT_DELIVERY, [getattr(delivery, name) for name in DELIVERY_FIELDS])

    def deliveries(self, *, delivery_id: str | None = None, event_id: str | None = None) -> list[DeliveryRecord]:
        where, args = _where({"delivery_id": delivery_id, "event_id": event_id})
        rows = self._run(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {where} ORDER BY seq", args)
        return [delivery_from_fields(dict(r)) for r in rows]

    def set_event_status(self, event_id: str, status: str, reason: str | None) -> None:
        self._run("UPDATE events SET status = ?, reason = ? WHERE id = ?", (status, reason, event_id))

    def event(self, event_id: str) -> EventRecord | None:
        row = self._run(f"SELECT {_EVENT_COLUMNS} FROM events WHERE id = ?", (event_id,)).fetchone()
        return event_from_fields(dict(row)) if row else None

    def events(self, *, source: str | None, status: str | None, limit: int, offset: int) -> list[EventRecord]:
        where, args = _where({"source": source, "status": status})
        rows = self._run(
            f"SELECT {_EVENT_COLUMNS} FROM events {where} ORDER BY received_at DESC, id LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        return [event_from_fields(dict(r)) for r in rows]

    def event_payload(self, event_id: str) -> dict[str, Any] | None:
        row = self._run("SELECT payload FROM events WHERE id = ?", (event_id,)).fetchone()
        return dict(json.loads(row[0])) if row else None

    # -- actions --------------------------------------------------------------------------
    def add_action(self, action: Action) -> str:
        fields = action_to_fields(action)
        inserted = self._run(_INSERT_ACTION, [fields[name] for name in ACTION_FIELDS])
        if inserted.rowcount == 1:
            return action.id
        return str(self._run("SELECT id FROM actions WHERE key = ?", (action.key,)).fetchone()[0])

    def _select(self, where: str, args: tuple[Any, ...] | list[Any] = ()) -> list[Stored]:
        return [Stored(action_from_fields(dict(r))) for r in self._run(f"SELECT * FROM actions WHERE {where}", args)]

    def load(self, action_id: str) -> Stored | None:
        found = self._select("id = ?", (action_id,))
        return found[0] if found else None

    def swap(self, before: Stored, after: Action) -> bool:
        fields = action_to_fields(after)
        old = before.action
        changed = self._run(
            f"UPDATE actions SET {_ACTION_SETS} WHERE id = ? AND status = ? AND lease_owner IS ?"
            " AND lease_expires_at IS ? AND attempts = ?",
            [
                *(fields[name] for name in ACTION_FIELDS if name != "id"),
                old.id,
                old.status,
                old.lease_owner,
                iso(old.lease_expires_at),
                old.attempts,
            ],
        )
        return changed.rowcount == 1

    def find(self, key: str) -> Action | None:
        found = self._select("key = ?", (key,))
        return found[0].action if found else None

    def actions(self, query: ActionQuery) -> list[Action]:
        where, args = _where(query.equal())
        if query.event_id:
            where += (" AND " if where else "WHERE ") + "id IN (SELECT action_id FROM event_actions WHERE event_id = ?)"
            args.append(query.event_id)
        rows = self._run(
            f"SELECT * FROM actions {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            (*args, query.limit, query.offset),
        )
        return [action_from_fields(dict(r)) for r in rows]

    def active(self) -> list[Stored]:
        return self._select("status IN (?, ?, ?)", (QUEUED, WAITING, RUNNING))

    def due(self, now: datetime) -> list[Stored]:
        # every expired lease (crash loops are swept), but only the first runnable queued or waiting
        # action: the claim takes it under the write lock, so no other can be needed
        at = iso(now)
        return self._select(
            "status = ? AND lease_expires_at <= ? UNION ALL SELECT * FROM ("
            " SELECT a.* FROM actions a WHERE a.status IN (?, ?) AND (a.not_before IS NULL OR a.not_before <= ?)"
            " AND (a.after IS NULL OR (SELECT b.status FROM actions b WHERE b.id = a.after) = ?)"
            " ORDER BY a.not_before IS NOT NULL, a.not_before, a.created_at LIMIT 1)",
            (RUNNING, at, QUEUED, WAITING, at, SUCCEEDED),
        )

    def dependents(self, action_id: str) -> list[Stored]:
        return self._select("after = ? AND status = ?", (action_id, QUEUED))

    def append_log(self, action_id: str, at: datetime, worker: str | None, message: str) -> None:
        self._run(_INSERT_LOG, (action_id, iso(at), worker, message))

    def read_log(self, action_id: str) -> list[dict[str, Any]]:
        rows = self._run("SELECT at, worker, message FROM action_log WHERE action_id = ? ORDER BY seq", (action_id,))
        return [dict(r) for r in rows]

    # -- registers and reports (shared/ledger/sqlite_registers.py) ---------------------------
    def get_watermark(self, name: str) -> str | None:
        return sqlite_registers.get_watermark(self._run, name)

    def set_watermark(self, name: str, value: str, now: datetime) -> None:
        sqlite_registers.set_watermark(self._run, name, value, now)

    def swap_watermark(self, name: str, expected: str | None, value: str, now: datetime) -> bool:
        return sqlite_registers.swap_watermark(self._run, name, expected, value, now)

    def record_report(self, kind: str, report: dict[str, Any], now: datetime) -> str:
        report_id = self.new_id(kind[:8], now)
        sqlite_registers.record_report(self._run, report_id, kind, report, now)
        return report_id

    def list_reports(self, kind: str, limit: int) -> list[dict[str, Any]]:
        return sqlite_registers.list_reports(self._run, kind, limit)

    def stats(self) -> dict[str, Any]:
        events = dict(self._run("SELECT status, COUNT(*) FROM events GROUP BY status").fetchall())
        actions = dict(self._run("SELECT status, COUNT(*) FROM actions GROUP BY status").fetchall())
        return {"backend": "sqlite", "path": str(self.path), "events": events, "actions": actions}

    # -- retention (shared/ledger/sqlite_prune.py) -----------------------------------------
    def old_events(self, cutoff: datetime) -> list[tuple[EventRecord, list[str]]]:
        return sqlite_prune.old_events(self._run, cutoff)

    def dependents_by_upstream(self) -> dict[str, tuple[str, ...]]:
        return sqlite_prune.dependents_by_upstream(self._run)

    def old_refusals(self, cutoff: datetime) -> int:
        return sqlite_prune.old_refusals(self._run, cutoff)

    def prune(self, event_ids: list[str], action_ids: list[str], refused_before: datetime) -> None:
        sqlite_prune.prune(self._run, event_ids, action_ids, refused_before)

    def compact(self) -> None:
        sqlite_prune.compact(self._file.connect)

    def close(self) -> None:
        self._file.close()


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    used = {column: value for column, value in filters.items() if value is not None}
    clauses = [f"{column} = ?" for column in used]
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", list(used.values())


class SqliteLedger(LedgerCore):
    """The ledger over one SQLite file; safe across threads and processes."""

    def __init__(self, path: Path | str, *, clock: Clock = now_utc) -> None:
        self.path = Path(path)
        super().__init__(SqliteStore(self.path), clock=clock)
