"""The SQLite ledger file: its schema, one WAL connection per thread, the file's writer lock
(shared/ledger/sqlite_locks.py), and the writer thread that group-commits intakes.

Group commit: a unit of work is queued for a writer, which takes every unit waiting, runs them in
one BEGIN IMMEDIATE transaction and commits once; each caller waits on its own future (a unit that
raises rolls the batch back, which then runs unit by unit, so only its caller sees the exception).
Threads (``submit``) share the file's writer thread; coroutines (``submit_async``, the webhook
routes) have their event loop's thread as the writer, flushing once per loop iteration. Under 16
concurrent webhooks that is one commit and one lock hand-over per batch instead of per request.
The loop never waits for the writer lock: held by another thread or process, the flush is tried
again ``RETRY_SECONDS`` later, the requests arriving meanwhile joining its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from shared.ledger.sqlite_checkpoint import Checkpointer
from shared.ledger.sqlite_locks import writer_lock
from shared.ledger.sqlite_schema import SCHEMA

T = TypeVar("T")
MAX_BATCH = 64  # units in one transaction: bounds the latency a unit adds to the others in its batch
RETRY_SECONDS = 0.0002  # the loop's flush, when another thread or process holds the writer lock
IDLE_SECONDS = 2.0  # a writer with nothing to do for this long ends (a new unit starts another)


class SqliteFile:
    """One ledger file, its schema created on open. Writes run in BEGIN IMMEDIATE transactions, so
    concurrent duplicates (threads or processes) serialize on the database lock and see each other."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = writer_lock(path)
        self._units: queue.SimpleQueue[tuple[Callable[[], Any], _Waiter]] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._writer_guard = threading.Lock()
        self._loop_units: dict[asyncio.AbstractEventLoop, list[tuple[Callable[[], Any], _Waiter]]] = {}
        self.checkpointer = Checkpointer(path, self._connect, self._write_lock)
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
            db = self._local.db = self._connect()
        return db

    def connect(self) -> sqlite3.Connection:
        """A new connection of its own, set up as the ledger's (the caller closes it)."""
        return self._connect()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=60000")
        db.execute("PRAGMA foreign_keys=ON")
        db.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's thread does it (sqlite_checkpoint.py)
        return db

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction on this thread's connection (waits for the writer's batch, if any)."""
        db = self.db()
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            self._local.in_transaction = True
            try:
                yield
            except BaseException:
                db.execute("ROLLBACK")
                raise
            finally:
                self._local.in_transaction = False
            db.execute("COMMIT")
        self.checkpointer.committed()

    # -- group commit -------------------------------------------------------------------------
    def submit(self, unit: Callable[[], T]) -> Future[T]:
        """Run ``unit`` in the writer thread, in a transaction shared with the units waiting beside
        it; the future holds its result or its exception. Inside a transaction already (the writer
        itself, or a caller within ``transaction``) the unit runs at once, in that transaction."""
        future: Future[T] = Future()
        if threading.current_thread() is self._writer or getattr(self._local, "in_transaction", False):
            try:
                future.set_result(unit())
            except BaseException as exc:
                future.set_exception(exc)
            return future
        self._enqueue(unit, _Waiter(future=future))
        return future

    async def submit_async(self, unit: Callable[[], T]) -> T:
        """``submit`` for a coroutine: the event loop's thread is the writer. The first unit of a
        loop iteration schedules a flush after the callbacks ready now, so every request whose
        bytes arrived together joins one transaction; no thread hop, no cross-thread wake-up (on
        shared cores each hop waited for a time slice, and the loop sat idle meanwhile)."""
        loop = asyncio.get_running_loop()
        waiting: asyncio.Future[T] = loop.create_future()
        pending = self._loop_units.get(loop)
        if pending is None:
            pending = self._loop_units[loop] = []
            loop.call_soon(self._flush_loop, loop)
        pending.append((unit, _Waiter(loop=loop, waiting=waiting)))
        return await waiting

    def _flush_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            locked = self._write_lock.acquire(blocking=False)
        except Exception as exc:  # the lock file cannot be opened: every unit waiting hears why
            _settle_on_loop([(waiter, None, exc) for _, waiter in self._loop_units.pop(loop, [])])
            return
        if not locked:  # another thread or process writes: the loop goes on, the batch grows meanwhile
            loop.call_later(RETRY_SECONDS, self._flush_loop, loop)
            return
        try:
            batch = self._loop_units.pop(loop, [])
            for start in range(0, len(batch), MAX_BATCH):
                _settle_on_loop(self._commit(batch[start : start + MAX_BATCH]))
        finally:
            self._write_lock.release()

    def _enqueue(self, unit: Callable[[], Any], waiter: _Waiter) -> None:
        with self._writer_guard:
            self._units.put((unit, waiter))
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name=f"ledger-writer:{self.path.name}")
                self._writer.daemon = True
                self._writer.start()

    def _write_loop(self) -> None:
        while True:
            try:
                batch = [self._units.get(timeout=IDLE_SECONDS)]
            except queue.Empty:
                with self._writer_guard:
                    if self._units.empty():  # nothing queued since: end (the next unit starts a writer)
                        self._writer = None
                        self.close()
                        return
                continue
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._units.get_nowait())
                except queue.Empty:
                    break
            with self._write_lock:
                outcomes = self._commit([(unit, w) for unit, w in batch if w.start()])
            _settle_all(outcomes)

    def _commit(self, batch: list[tuple[Callable[[], Any], _Waiter]]) -> list[_Outcome]:
        """All units in one transaction. A unit that raises rolls the batch back; then each unit
        runs again in a transaction of its own, so only that one's caller sees its exception (a
        unit is a ledger operation: running it again after a rollback is running it the first time).
        No SAVEPOINT per unit: two statements of an intake's seven, for a case that is rare."""
        try:
            return self._run_units(batch)
        except _UnitFailed:
            return [outcome for one in batch for outcome in self._run_units([one])]

    def _run_units(self, batch: list[tuple[Callable[[], Any], _Waiter]]) -> list[_Outcome]:
        """One transaction for ``batch`` (the caller holds the writer lock); _UnitFailed when a
        unit of a batch of several raised."""
        db = self.db()
        outcomes: list[_Outcome] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for unit, waiter in batch:
                    try:
                        value = unit()
                    except Exception as exc:
                        if len(batch) > 1:
                            raise _UnitFailed from exc
                        db.execute("ROLLBACK")
                        return [(waiter, None, exc)]
                    outcomes.append((waiter, value, None))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self.checkpointer.committed()
        except _UnitFailed:
            raise
        except BaseException as exc:  # nothing of the batch was committed: every caller hears why
            return [(waiter, None, exc) for _, waiter in batch]
        return outcomes

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


class _UnitFailed(Exception):
    """A unit of a batch raised: the batch is rolled back and its units run one by one."""


class _Waiter:
    """Who waits for a unit: a thread (a concurrent Future) or a coroutine (an asyncio Future)."""

    __slots__ = ("future", "loop", "waiting")

    def __init__(
        self,
        *,
        future: Future[Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        waiting: asyncio.Future[Any] | None = None,
    ) -> None:
        self.future, self.loop, self.waiting = future, loop, waiting

    def start(self) -> bool:
        # a thread's future cancelled before it ran is dropped; a coroutine's unit runs regardless
        # (its client may have gone, the intake is kept all the same: a redelivery finds it)
        return self.future.set_running_or_notify_cancel() if self.future is not None else True


_Outcome = tuple[_Waiter, Any, BaseException | None]


def _settle_all(outcomes: list[_Outcome]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[_Outcome]] = {}
    for outcome in outcomes:
        waiter, value, error = outcome
        if waiter.future is not None:
            if error is None:
                waiter.future.set_result(value)
            else:
                waiter.future.set_exception(error)
        elif waiter.loop is not None:
            by_loop.setdefault(waiter.loop, []).append(outcome)
    for loop, settled in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody is waiting any more
            loop.call_soon_threadsafe(_settle_on_loop, settled)


def _settle_on_loop(outcomes: list[_Outcome]) -> None:
    for waiter, value, error in outcomes:
        waiting = waiter.waiting
        if waiting is None or waiting.done():
            continue
        if error is None:
            waiting.set_result(value)
        else:
            waiting.set_exception(error)
