"""The embedded ledger: SQLite in WAL mode, one connection per thread."""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shared.domain.actions import (
    FAILED,
    QUEUED,
    RUNNING,
    SKIPPED,
    SUCCEEDED,
    WAITING,
    Action,
    PlannedAction,
)
from shared.domain.events import ModelEvent, event_to_payload
from shared.domain.params import ActionParams
from shared.ledger.base import ACCEPTED, IGNORED, IntakeResult

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL,
    kind TEXT,
    source_type TEXT NOT NULL,
    model_name TEXT,
    model_version TEXT,
    status TEXT NOT NULL,
    reason TEXT,
    received_at TEXT NOT NULL,
    deliveries INTEGER NOT NULL DEFAULT 1,
    summary TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_received ON events(received_at);
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL REFERENCES events(id),
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    rule TEXT,
    after TEXT REFERENCES actions(id),
    params TEXT NOT NULL,
    outputs TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    error TEXT,
    lease_owner TEXT,
    lease_expires_at TEXT,
    not_before TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT,
    duration_ms INTEGER
);
CREATE INDEX IF NOT EXISTS actions_runnable ON actions(status, not_before);
CREATE INDEX IF NOT EXISTS actions_model ON actions(model_name, model_version);
CREATE TABLE IF NOT EXISTS event_actions (
    event_id TEXT NOT NULL REFERENCES events(id),
    action_id TEXT NOT NULL REFERENCES actions(id),
    PRIMARY KEY (event_id, action_id)
);
CREATE TABLE IF NOT EXISTS action_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL REFERENCES actions(id),
    at TEXT NOT NULL,
    worker TEXT,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS action_log_action ON action_log(action_id);
CREATE TABLE IF NOT EXISTS watermarks (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at TEXT NOT NULL, body TEXT NOT NULL
);
"""


def now_utc() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_writer_locks: dict[Path, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(path: Path) -> threading.Lock:
    """One lock per database file and process. Threads queue for it instead of meeting in SQLite's
    busy handler, which sleeps in steps of up to 100 ms: under 16 concurrent webhooks that sleeping,
    not the writes, made the tail latency. Other processes still serialize on the database lock."""
    with _writer_locks_guard:
        return _writer_locks.setdefault(path.resolve(), threading.Lock())


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:20]}"


class SqliteLedger:
    """Ledger over one SQLite file. Writes run in BEGIN IMMEDIATE transactions, so concurrent
    duplicates (threads or processes) serialize on the database lock and see each other."""

    def __init__(self, path: Path | str, *, clock: Any = now_utc) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._local = threading.local()
        self._write_lock = _writer_lock(self.path)
        self._db().executescript(SCHEMA)  # executescript manages its own transaction

    # -- plumbing -------------------------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=60000")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection, lock: threading.Lock) -> None:
            self.db = db
            self.lock = lock

        def __enter__(self) -> sqlite3.Connection:
            self.lock.acquire()
            try:
                self.db.execute("BEGIN IMMEDIATE")
            except BaseException:
                self.lock.release()
                raise
            return self.db

        def __exit__(self, exc_type: object, *rest: object) -> None:
            try:
                self.db.execute("ROLLBACK" if exc_type else "COMMIT")
            finally:
                self.lock.release()

    def _tx(self) -> SqliteLedger._Tx:
        return SqliteLedger._Tx(self._db(), self._write_lock)

    def _log(self, db: sqlite3.Connection, action_id: str, worker: str | None, message: str) -> None:
        db.execute(
            "INSERT INTO action_log(action_id, at, worker, message) VALUES (?,?,?,?)",
            (action_id, _iso(self._clock()), worker, message),
        )

    # -- intake ---------------------------------------------------------------------------
    def record_event(
        self, event: ModelEvent, plan: list[PlannedAction], *, reason: str | None, max_attempts: int
    ) -> IntakeResult:
        with self._tx() as db:
            row = db.execute(
                "SELECT id, status, reason FROM events WHERE dedupe_key = ?", (event.dedupe_key,)
            ).fetchone()
            if row is not None:
                db.execute("UPDATE events SET deliveries = deliveries + 1 WHERE id = ?", (row["id"],))
                ids = [
                    r[0]
                    for r in db.execute(
                        "SELECT action_id FROM event_actions WHERE event_id = ? ORDER BY rowid", (row["id"],)
                    )
                ]
                return IntakeResult(row["id"], row["status"], duplicate=True, reason=row["reason"], action_ids=ids)
            event_id = new_id("evt")
            status = ACCEPTED if plan else IGNORED
            db.execute(
                "INSERT INTO events(id, dedupe_key, source, kind, source_type, model_name, model_version,"
                " status, reason, received_at, summary, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    event_id,
                    event.dedupe_key,
                    event.source,
                    event.kind,
                    event.source_type,
                    event.model_name,
                    event.model_version,
                    status,
                    None if plan else reason,
                    _iso(self._clock()),
                    json.dumps(event.summary()),
                    json.dumps(event_to_payload(event), default=str),
                ),
            )
            ids, runnable = self._insert_plan(db, event_id, plan, max_attempts)
            return IntakeResult(event_id, status, reason=None if plan else reason, action_ids=ids, dispatch=runnable)

    def _insert_plan(
        self, db: sqlite3.Connection, event_id: str, plan: list[PlannedAction], max_attempts: int
    ) -> tuple[list[str], list[str]]:
        ids: list[str] = []
        runnable: list[str] = []
        now = _iso(self._clock())
        for step in plan:
            existing = db.execute("SELECT id FROM actions WHERE key = ?", (step.key,)).fetchone()
            if existing is not None:
                action_id = existing["id"]
            else:
                action_id = new_id("act")
                after = ids[step.after_index] if step.after_index is not None else None
                db.execute(
                    "INSERT INTO actions(id, key, event_id, kind, target, model_name, model_version, rule,"
                    " after, params, status, max_attempts, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        action_id,
                        step.key,
                        event_id,
                        step.kind,
                        step.target,
                        step.model_name,
                        step.model_version,
                        step.rule,
                        after,
                        json.dumps(step.params.to_dict()),
                        QUEUED,
                        max_attempts,
                        now,
                    ),
                )
                self._log(db, action_id, None, f"planned by {step.rule or 'operator'} for event {event_id}")
                if after is None or self._status(db, after) == SUCCEEDED:
                    runnable.append(action_id)
            db.execute("INSERT OR IGNORE INTO event_actions(event_id, action_id) VALUES (?,?)", (event_id, action_id))
            ids.append(action_id)
        return ids, runnable

    def add_actions(self, event_id: str, plan: list[PlannedAction], *, max_attempts: int) -> list[str]:
        with self._tx() as db:
            if plan:
                db.execute("UPDATE events SET status = ?, reason = NULL WHERE id = ?", (ACCEPTED, event_id))
            return self._insert_plan(db, event_id, plan, max_attempts)[1]

    def requeue(self, action_ids: list[str], *, include_succeeded: bool) -> list[str]:
        allowed = (FAILED, SKIPPED, SUCCEEDED) if include_succeeded else (FAILED, SKIPPED)
        done: list[str] = []
        with self._tx() as db:
            for action_id in action_ids:
                status = self._status(db, action_id)
                if status not in allowed:
                    continue
                db.execute(
                    "UPDATE actions SET status = ?, attempts = 0, error = NULL, not_before = NULL,"
                    " lease_owner = NULL, lease_expires_at = NULL, finished_at = NULL WHERE id = ?",
                    (QUEUED, action_id),
                )
                self._log(db, action_id, None, f"requeued by replay (was {status})")
                done.append(action_id)
        return done

    def set_event_status(self, event_id: str, status: str, reason: str | None) -> None:
        with self._tx() as db:
            db.execute("UPDATE events SET status = ?, reason = ? WHERE id = ?", (status, reason, event_id))

    # -- reads ----------------------------------------------------------------------------
    def get_event(self, event_id: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT * FROM events WHERE id = ?", (event_id,)).fetchone()
        if row is None:
            return None
        event = _event_row(row)
        event["actions"] = [a.to_dict() for a in self.list_actions(event_id=event_id, limit=1000)]
        return event

    def list_events(
        self, *, source: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        where, args = _where({"source": source, "status": status})
        rows = (
            self._db()
            .execute(
                f"SELECT * FROM events {where} ORDER BY received_at DESC, id LIMIT ? OFFSET ?", (*args, limit, offset)
            )
            .fetchall()
        )
        return [_event_row(r) for r in rows]

    def event_payload(self, event_id: str) -> dict[str, Any] | None:
        row = self._db().execute("SELECT payload FROM events WHERE id = ?", (event_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def get_action(self, action_id: str) -> Action | None:
        row = self._db().execute("SELECT * FROM actions WHERE id = ?", (action_id,)).fetchone()
        return _action(row) if row else None

    def find_action(self, key: str) -> Action | None:
        row = self._db().execute("SELECT * FROM actions WHERE key = ?", (key,)).fetchone()
        return _action(row) if row else None

    def list_actions(
        self,
        *,
        model: str | None = None,
        version: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        event_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Action]:
        where, args = _where({"model_name": model, "model_version": version, "kind": kind, "status": status})
        if event_id:
            where += (" AND " if where else "WHERE ") + "id IN (SELECT action_id FROM event_actions WHERE event_id = ?)"
            args.append(event_id)
        rows = (
            self._db()
            .execute(
                f"SELECT * FROM actions {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?", (*args, limit, offset)
            )
            .fetchall()
        )
        return [_action(r) for r in rows]

    def action_log(self, action_id: str) -> list[dict[str, Any]]:
        rows = (
            self._db()
            .execute("SELECT at, worker, message FROM action_log WHERE action_id = ? ORDER BY seq", (action_id,))
            .fetchall()
        )
        return [dict(r) for r in rows]

    # -- worker ---------------------------------------------------------------------------
    def claim(self, worker_id: str, lease_seconds: float, *, action_id: str | None = None) -> Action | None:
        now = self._clock()
        with self._tx() as db:
            self._fail_crash_loops(db, now)
            query = (
                "SELECT a.* FROM actions a WHERE ("
                " (a.status IN (?, ?) AND (a.not_before IS NULL OR a.not_before <= ?))"
                " OR (a.status = ? AND a.lease_expires_at <= ?))"
                " AND (a.after IS NULL OR (SELECT status FROM actions b WHERE b.id = a.after) = ?)"
            )
            args: list[Any] = [QUEUED, WAITING, _iso(now), RUNNING, _iso(now), SUCCEEDED]
            if action_id:
                query += " AND a.id = ?"
                args.append(action_id)
            row = db.execute(
                query + " ORDER BY a.not_before IS NOT NULL, a.not_before, a.created_at LIMIT 1", args
            ).fetchone()
            if row is None:
                return None
            previous = row["status"]
            # a re-check of remote work (WAITING) is not a new attempt
            attempts = row["attempts"] + (0 if previous == WAITING else 1)
            db.execute(
                "UPDATE actions SET status = ?, lease_owner = ?, lease_expires_at = ?, attempts = ?,"
                " started_at = COALESCE(started_at, ?) WHERE id = ?",
                (RUNNING, worker_id, _iso(now + timedelta(seconds=lease_seconds)), attempts, _iso(now), row["id"]),
            )
            if previous == RUNNING:
                self._log(db, row["id"], worker_id, f"lease of {row['lease_owner']} expired; reclaimed")
            self._log(db, row["id"], worker_id, f"claimed (attempt {attempts})")
            claimed = db.execute("SELECT * FROM actions WHERE id = ?", (row["id"],)).fetchone()
            return _action(claimed)

    def _fail_crash_loops(self, db: sqlite3.Connection, now: datetime) -> None:
        """An action whose lease expired on its last allowed attempt killed (or hung) every worker
        that ran it: fail it rather than hand it to the next worker forever."""
        rows = db.execute(
            "SELECT id, attempts, lease_owner FROM actions WHERE status = ? AND lease_expires_at <= ?"
            " AND attempts >= max_attempts",
            (RUNNING, _iso(now)),
        ).fetchall()
        for row in rows:
            error = (
                f"the lease expired on attempt {row['attempts']}, the last allowed: every worker running it"
                " died or hung (see the worker logs)"
            )
            db.execute(
                "UPDATE actions SET status = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL,"
                " finished_at = ? WHERE id = ?",
                (FAILED, error, _iso(now), row["id"]),
            )
            self._log(db, row["id"], None, f"failed: {error} (last owner {row['lease_owner']})")
            self._skip_dependents(db, row["id"])

    def renew(self, action_id: str, worker_id: str, lease_seconds: float) -> bool:
        expires = _iso(self._clock() + timedelta(seconds=lease_seconds))
        with self._tx() as db:
            cur = db.execute(
                "UPDATE actions SET lease_expires_at = ? WHERE id = ? AND lease_owner = ? AND status = ?",
                (expires, action_id, worker_id, RUNNING),
            )
            return cur.rowcount == 1

    def note(self, action_id: str, worker_id: str, message: str) -> None:
        with self._tx() as db:
            self._log(db, action_id, worker_id, message)

    def _owned(self, db: sqlite3.Connection, action_id: str, worker_id: str) -> sqlite3.Row | None:
        return db.execute(
            "SELECT * FROM actions WHERE id = ? AND lease_owner = ? AND status = ?", (action_id, worker_id, RUNNING)
        ).fetchone()

    def complete(self, action_id: str, worker_id: str, outputs: dict[str, Any]) -> list[str]:
        now = self._clock()
        with self._tx() as db:
            row = self._owned(db, action_id, worker_id)
            if row is None:
                return []
            merged = {**json.loads(row["outputs"]), **outputs}
            db.execute(
                "UPDATE actions SET status = ?, outputs = ?, error = NULL, lease_owner = NULL,"
                " lease_expires_at = NULL, finished_at = ?, duration_ms = ? WHERE id = ?",
                (SUCCEEDED, json.dumps(merged, default=str), _iso(now), _duration(row, now), action_id),
            )
            self._log(db, action_id, worker_id, "succeeded")
            return [
                r[0] for r in db.execute("SELECT id FROM actions WHERE after = ? AND status = ?", (action_id, QUEUED))
            ]

    def wait(self, action_id: str, worker_id: str, outputs: dict[str, Any], recheck_at: datetime) -> bool:
        with self._tx() as db:
            row = self._owned(db, action_id, worker_id)
            if row is None:
                return False
            merged = {**json.loads(row["outputs"]), **outputs}
            db.execute(
                "UPDATE actions SET status = ?, outputs = ?, lease_owner = NULL, lease_expires_at = NULL,"
                " not_before = ? WHERE id = ?",
                (WAITING, json.dumps(merged, default=str), _iso(recheck_at), action_id),
            )
            self._log(db, action_id, worker_id, f"waiting on remote work; re-check at {_iso(recheck_at)}")
            return True

    def fail(self, action_id: str, worker_id: str, error: str, *, retry_at: datetime | None) -> bool:
        now = self._clock()
        with self._tx() as db:
            row = self._owned(db, action_id, worker_id)
            if row is None:
                return False
            if retry_at is not None:
                db.execute(
                    "UPDATE actions SET status = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL,"
                    " not_before = ? WHERE id = ?",
                    (QUEUED, error, _iso(retry_at), action_id),
                )
                self._log(
                    db, action_id, worker_id, f"attempt {row['attempts']} failed: {error}; retry at {_iso(retry_at)}"
                )
                return True
            db.execute(
                "UPDATE actions SET status = ?, error = ?, lease_owner = NULL, lease_expires_at = NULL,"
                " finished_at = ?, duration_ms = ? WHERE id = ?",
                (FAILED, error, _iso(now), _duration(row, now), action_id),
            )
            self._log(db, action_id, worker_id, f"failed after {row['attempts']} attempt(s): {error}")
            self._skip_dependents(db, action_id)
            return True

    def _skip_dependents(self, db: sqlite3.Connection, action_id: str) -> None:
        for (child,) in db.execute(
            "SELECT id FROM actions WHERE after = ? AND status = ?", (action_id, QUEUED)
        ).fetchall():
            db.execute(
                "UPDATE actions SET status = ?, error = ?, finished_at = ? WHERE id = ?",
                (SKIPPED, f"not run: {action_id} (which it runs after) failed", _iso(self._clock()), child),
            )
            self._log(db, child, None, f"skipped: {action_id} failed")
            self._skip_dependents(db, child)

    def next_due(self) -> datetime | None:
        row = (
            self._db()
            .execute(
                "SELECT MIN(COALESCE(CASE WHEN status = ? THEN lease_expires_at ELSE not_before END, ?))"
                " FROM actions WHERE status IN (?, ?, ?)",
                (RUNNING, _iso(self._clock()), QUEUED, WAITING, RUNNING),
            )
            .fetchone()
        )
        return _dt(row[0]) if row and row[0] else None

    # -- misc -----------------------------------------------------------------------------
    def _status(self, db: sqlite3.Connection, action_id: str) -> str | None:
        row = db.execute("SELECT status FROM actions WHERE id = ?", (action_id,)).fetchone()
        return row[0] if row else None

    def get_watermark(self, name: str) -> str | None:
        row = self._db().execute("SELECT value FROM watermarks WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_watermark(self, name: str, value: str) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO watermarks(name, value, updated_at) VALUES (?,?,?)"
                " ON CONFLICT(name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                (name, value, _iso(self._clock())),
            )

    def record_report(self, kind: str, report: dict[str, Any]) -> str:
        report_id = new_id(kind[:8])
        with self._tx() as db:
            db.execute(
                "INSERT INTO reports(id, kind, created_at, body) VALUES (?,?,?,?)",
                (report_id, kind, _iso(self._clock()), json.dumps(report, default=str)),
            )
        return report_id

    def list_reports(self, kind: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = (
            self._db()
            .execute(
                "SELECT id, created_at, body FROM reports WHERE kind = ? ORDER BY created_at DESC LIMIT ?",
                (kind, limit),
            )
            .fetchall()
        )
        return [{"id": r["id"], "created_at": r["created_at"], **json.loads(r["body"])} for r in rows]

    def stats(self) -> dict[str, Any]:
        db = self._db()
        events = dict(db.execute("SELECT status, COUNT(*) FROM events GROUP BY status").fetchall())
        actions = dict(db.execute("SELECT status, COUNT(*) FROM actions GROUP BY status").fetchall())
        return {"backend": "sqlite", "path": str(self.path), "events": events, "actions": actions}

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def _where(filters: dict[str, Any]) -> tuple[str, list[Any]]:
    clauses = [f"{column} = ?" for column, value in filters.items() if value is not None]
    args = [value for value in filters.values() if value is not None]
    return ("WHERE " + " AND ".join(clauses)) if clauses else "", args


def _duration(row: sqlite3.Row, now: datetime) -> int | None:
    started = _dt(row["started_at"])
    return int((now - started).total_seconds() * 1000) if started else None


def _event_row(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "dedupe_key": row["dedupe_key"],
        "source": row["source"],
        "kind": row["kind"],
        "source_type": row["source_type"],
        "model_name": row["model_name"],
        "model_version": row["model_version"],
        "status": row["status"],
        "reason": row["reason"],
        "received_at": row["received_at"],
        "deliveries": row["deliveries"],
        "summary": json.loads(row["summary"]),
    }


def _action(row: sqlite3.Row) -> Action:
    return Action(
        id=row["id"],
        key=row["key"],
        kind=row["kind"],
        target=row["target"],
        model_name=row["model_name"],
        model_version=row["model_version"],
        event_id=row["event_id"],
        status=row["status"],
        params=ActionParams.from_dict(json.loads(row["params"])),
        outputs=json.loads(row["outputs"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        after=row["after"],
        rule=row["rule"],
        error=row["error"],
        lease_owner=row["lease_owner"],
        lease_expires_at=_dt(row["lease_expires_at"]),
        not_before=_dt(row["not_before"]),
        created_at=_dt(row["created_at"]),
        started_at=_dt(row["started_at"]),
        finished_at=_dt(row["finished_at"]),
        duration_ms=row["duration_ms"],
    )
