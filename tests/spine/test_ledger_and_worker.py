"""What only the SQLite ledger promises: an intake is one transaction, and the file is plain SQLite
in WAL mode that other tools (the ingest benchmark, an operator's sqlite3) can read. The ledger
port's own guarantees run on both backends in tests/ledger."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shared.domain.actions import PlannedAction
from shared.ledger.sqlite import SqliteLedger
from tests.ledger.support import event, plan


class TestSqliteFile:
    def test_an_intake_that_fails_midway_leaves_nothing_behind(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
        broken = [*plan("1"), PlannedAction("register", "b", "m", "1", after_index=5)]  # no step 5
        with pytest.raises(IndexError):
            ledger.record_event(event("1"), broken, reason=None, max_attempts=3)
        assert (
            ledger.list_events() == [] and ledger.list_actions() == [] and ledger.find_action("register:a:m:1") is None
        )
        retried = ledger.record_event(event("1"), plan("1"), reason=None, max_attempts=3)
        assert not retried.duplicate and retried.dispatch == retried.action_ids

    def test_the_file_is_plain_sqlite_in_wal_mode_and_outlives_its_ledger(self, tmp_path: Path) -> None:
        path = tmp_path / "state" / "ledger.db"
        first = SqliteLedger(path)
        result = first.record_event(event("2"), plan("2", steps=2), reason=None, max_attempts=3)
        first.close()
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            linked = db.execute(
                "SELECT action_id FROM event_actions WHERE event_id = ? ORDER BY rowid", (result.event_id,)
            )
            assert [row[0] for row in linked] == result.action_ids
            keys = db.execute("SELECT key, status FROM actions ORDER BY key").fetchall()
            assert keys == [("register:a:m:2", "queued"), ("register:b:m:2", "queued")]
        reopened = SqliteLedger(path)
        stored = reopened.get_event(result.event_id)
        assert stored is not None and {a["id"] for a in stored["actions"]} == set(result.action_ids)
