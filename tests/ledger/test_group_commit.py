"""Intake from an event loop (the webhook routes): on SQLite, concurrent intakes share one
transaction (group commit) and each caller gets its own result; on Table Storage the same calls
run in worker threads. Either way the ledger ends as the sync path leaves it."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from shared.ledger.base import Ledger
from shared.ledger.sqlite_db import SqliteFile
from tests.ledger.support import event, plan


async def _deliver(ledger: Ledger, versions: list[str]) -> list[tuple[str, bool, list[str]]]:
    async def one(version: str) -> tuple[str, bool, list[str]]:
        result = await ledger.record_event_async(event(version), plan(version), reason=None, max_attempts=3)
        return result.event_id, result.duplicate, result.dispatch

    return await asyncio.gather(*(one(v) for v in versions))


class TestAsyncIntake:
    def test_concurrent_intakes_with_duplicates_record_one_event_each_and_count_every_delivery(
        self, ledger: Ledger
    ) -> None:
        versions = [str(v) for v in range(12)] + ["3", "3", "7"]  # three redeliveries among them
        results = asyncio.run(_deliver(ledger, versions))
        by_version: dict[str, set[str]] = {}
        for version, (event_id, _, _) in zip(versions, results, strict=True):
            by_version.setdefault(version, set()).add(event_id)
        assert all(len(ids) == 1 for ids in by_version.values())
        assert sorted(d for _, d, _ in results) == [False] * 12 + [True] * 3
        # a redelivery dispatches again what never started (transitions.py, Redelivery)
        assert all(len(dispatch) == 1 for _, _, dispatch in results)
        deliveries = {e["model_version"]: e["deliveries"] for e in ledger.list_events(limit=100)}
        assert deliveries == {v: versions.count(v) for v in set(versions)}
        assert len(ledger.list_actions(limit=100)) == 12


class TestSqliteGroupCommit:
    def test_a_failing_unit_fails_alone_and_the_batch_beside_it_commits(self, tmp_path: Path) -> None:
        file = SqliteFile(tmp_path / "ledger.db")

        def write(name: str) -> str:
            file.db().execute("INSERT INTO watermarks(name, value, updated_at) VALUES (?, 'v', 't')", (name,))
            return name

        def broken() -> str:
            write("half-done")
            raise ValueError("this unit fails")

        async def batch() -> list[object]:
            units: list[Callable[[], str]] = [partial(write, f"w{i}") for i in range(5)]
            units.insert(2, broken)
            return await asyncio.gather(*(file.submit_async(u) for u in units), return_exceptions=True)

        outcomes = asyncio.run(batch())
        assert [o if isinstance(o, str) else type(o).__name__ for o in outcomes] == [
            "w0", "w1", "ValueError", "w2", "w3", "w4"
        ]  # fmt: skip
        with sqlite3.connect(tmp_path / "ledger.db") as db:
            names = sorted(r[0] for r in db.execute("SELECT name FROM watermarks"))
        assert names == ["w0", "w1", "w2", "w3", "w4"]  # the failing unit's own write is undone

    def test_units_of_one_loop_iteration_share_one_transaction(self, tmp_path: Path) -> None:
        file = SqliteFile(tmp_path / "ledger.db")
        commits: list[str] = []
        file.db().set_trace_callback(lambda sql: commits.append(sql) if sql == "COMMIT" else None)

        async def sixteen() -> list[int]:
            return await asyncio.gather(*(file.submit_async(partial(int, i)) for i in range(16)))

        assert asyncio.run(sixteen()) == list(range(16))
        assert commits == ["COMMIT"]

    def test_threads_share_the_writer_thread_and_get_their_own_results(self, tmp_path: Path) -> None:
        file = SqliteFile(tmp_path / "ledger.db")
        futures = [file.submit(partial(pow, i, 2)) for i in range(40)]
        assert [f.result(timeout=30) for f in futures] == [i * i for i in range(40)]
        with pytest.raises(ZeroDivisionError):
            file.submit(lambda: 1 // 0).result(timeout=30)


class TestCheckpoints:
    def test_commits_leave_the_wal_to_the_checkpoint_thread_which_empties_it(self, tmp_path: Path) -> None:
        file = SqliteFile(tmp_path / "ledger.db")
        assert file.db().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # no copy inside a COMMIT
        for i in range(40):
            with file.transaction():
                file.db().execute(
                    "INSERT INTO watermarks(name, value, updated_at) VALUES (?, ?, 't')", (f"w{i}", "v" * 2000)
                )
        deadline = time.monotonic() + 20
        with sqlite3.connect(tmp_path / "ledger.db") as other:
            while time.monotonic() < deadline:
                # frames in the WAL vs frames already copied into the database file (a no-op checkpoint)
                _, frames, done = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames > 0 and frames == done and file.checkpointer.runs > 0:
                    break
                time.sleep(0.1)
        assert file.checkpointer.runs > 0 and frames == done
        assert len(file.db().execute("SELECT name FROM watermarks").fetchall()) == 40

    def test_a_wal_grown_long_under_steady_commits_is_rewound(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from shared.ledger import sqlite_checkpoint

        monkeypatch.setattr(sqlite_checkpoint, "RESTART_FRAMES", 20)
        monkeypatch.setattr(sqlite_checkpoint, "INTERVAL_SECONDS", 0.01)
        file = SqliteFile(tmp_path / "ledger.db")
        deadline = time.monotonic() + 20
        i = 0
        while file.checkpointer.restarts == 0 and time.monotonic() < deadline:
            with file.transaction():  # commits all along, as under load: no PASSIVE pass could rewind it
                file.db().execute("INSERT INTO watermarks(name, value, updated_at) VALUES (?, ?, 't')", (f"w{i}", "v"))
            i += 1
        assert file.checkpointer.restarts > 0
        with file.transaction():
            file.db().execute("INSERT INTO watermarks(name, value, updated_at) VALUES ('last', 'v', 't')")
        with sqlite3.connect(tmp_path / "ledger.db") as other:
            _, frames, _ = other.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert frames < 20  # written from the start of the WAL again
        assert len(file.db().execute("SELECT name FROM watermarks").fetchall()) == i + 1


class TestIds:
    def test_sqlite_ids_sort_by_creation_time_and_stay_unique(self, tmp_path: Path) -> None:
        from datetime import UTC, datetime, timedelta

        from shared.ledger.sqlite import SqliteStore

        store = SqliteStore(tmp_path / "ledger.db")
        start = datetime(2026, 1, 1, tzinfo=UTC)
        ids = [store.new_id("evt", start + timedelta(milliseconds=i // 10)) for i in range(2000)]
        assert len(set(ids)) == len(ids)
        assert all(len(i) == len("evt_") + 20 for i in ids)
        # new rows land at the end of the id indexes (few pages written per commit), not at random
        assert [i[:15] for i in ids] == sorted(i[:15] for i in ids)


class TestWriterLock:
    def test_the_loop_does_not_wait_for_a_writer_elsewhere_and_commits_once_it_is_free(self, tmp_path: Path) -> None:
        file = SqliteFile(tmp_path / "ledger.db")
        other = SqliteFile(tmp_path / "ledger.db")  # another writer of the file (a worker thread, a process)
        holding, release = threading.Event(), threading.Event()

        def writer() -> None:
            with other.transaction():
                holding.set()
                release.wait(10)

        thread = threading.Thread(target=writer)
        thread.start()
        assert holding.wait(10)

        async def meanwhile() -> tuple[int, list[str]]:
            loop = asyncio.get_running_loop()
            ticks: list[str] = []
            unit = asyncio.ensure_future(file.submit_async(partial(int, 7)))
            for _ in range(20):  # the loop keeps running while the unit waits for the lock
                await asyncio.sleep(0.005)
                ticks.append("tick")
            assert not unit.done()
            loop.call_soon(release.set)
            return await unit, ticks

        value, ticks = asyncio.run(meanwhile())
        thread.join(10)
        assert value == 7 and len(ticks) == 20

    def test_a_child_process_opens_the_lock_file_again(self, tmp_path: Path) -> None:
        import os

        from shared.ledger.sqlite_locks import writer_lock

        lock = writer_lock(tmp_path / "ledger.db")
        with lock:  # the lock file is open in the parent from now on
            pass
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: once the parent holds the lock it must not get it (a shared open file would)
            os.read(ready_r, 1)
            os._exit(0 if not writer_lock(tmp_path / "ledger.db").acquire(blocking=False) else 1)
        with lock:
            os.write(ready_w, b"x")
            _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
