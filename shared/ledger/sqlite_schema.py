"""The SQLite ledger's tables and indexes (created if missing; columns added by ``SqliteFile``)."""

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
