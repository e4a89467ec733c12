"""The SQLite ledger file: its schema, one WAL connection per thread, the per-file writer lock."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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
    duration_ms INTEGER,
    generation INTEGER NOT NULL DEFAULT 0
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
CREATE TABLE IF NOT EXISTS deliveries (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    delivery_id TEXT,
    event_id TEXT REFERENCES events(id),
    source TEXT NOT NULL,
    received_at TEXT NOT NULL,
    answer TEXT NOT NULL,
    reason TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_by_id ON deliveries(delivery_id);
CREATE INDEX IF NOT EXISTS deliveries_by_event ON deliveries(event_id);
CREATE TABLE IF NOT EXISTS watermarks (name TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS reports (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, created_at TEXT NOT NULL, body TEXT NOT NULL
);
"""


_writer_locks: dict[Path, threading.Lock] = {}
_writer_locks_guard = threading.Lock()


def _writer_lock(path: Path) -> threading.Lock:
    """One lock per database file and process. Threads queue for it instead of meeting in SQLite's
    busy handler, which sleeps in steps of up to 100 ms: under 16 concurrent webhooks that sleeping,
    not the writes, made the tail latency. Other processes still serialize on the database lock."""
    with _writer_locks_guard:
        return _writer_locks.setdefault(path.resolve(), threading.Lock())


class SqliteFile:
    """One ledger file, its schema created on open. Writes run in BEGIN IMMEDIATE transactions, so
    concurrent duplicates (threads or processes) serialize on the database lock and see each other."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = _writer_lock(path)
        self.db().executescript(SCHEMA)  # executescript manages its own transaction
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """Columns added since a ledger file was created (CREATE TABLE IF NOT EXISTS keeps old ones)."""
        with self.transaction():
            have = {row["name"] for row in self.db().execute("PRAGMA table_info(actions)")}
            if "generation" not in have:
                self.db().execute("ALTER TABLE actions ADD COLUMN generation INTEGER NOT NULL DEFAULT 0")

    def db(self) -> sqlite3.Connection:
        """This thread's connection (autocommit outside ``transaction``)."""
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA busy_timeout=60000")
            db.execute("PRAGMA foreign_keys=ON")
            self._local.db = db
        return db

    @contextmanager
    def transaction(self) -> Iterator[None]:
        db = self.db()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
