"""The writer lock of a ledger file: one per file and process (a thread lock) and across processes
(``flock`` on ``<file>.writer``), held around every write transaction.

Threads and processes (`modelops serve` and a `modelops worker` beside it) queue for it instead of
meeting in SQLite's busy handler, which sleeps in steps of up to 100 ms: under 16 concurrent
webhooks that sleeping, not the writes, made the tail latency. ``flock`` wakes the next writer as
soon as the lock is free, and the kernel drops it with a process that dies holding it. The event
loop never waits for it: its group commit tries it and, if another thread or process writes,
tries again shortly, the batch growing meanwhile (shared/ledger/sqlite_db.py). Other programs on
the file (an operator's sqlite3) still serialize on SQLite's own lock.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # not POSIX: the thread lock alone, SQLite's lock between processes
    fcntl = None  # type: ignore[assignment]

_locks: dict[Path, WriterLock] = {}
_guard = threading.Lock()


class WriterLock:
    """Exclusive: one writer of the file among this process's threads and every process using it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    def acquire(self, blocking: bool = True) -> bool:
        if not self._thread_lock.acquire(blocking):
            return False
        try:
            if fcntl is not None:
                if self._fd is None:
                    self._fd = os.open(f"{self.path}.writer", os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
                except BlockingIOError:
                    self._thread_lock.release()
                    return False
        except BaseException:
            self._thread_lock.release()
            raise
        return True

    def release(self) -> None:
        try:
            if fcntl is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def __enter__(self) -> WriterLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def writer_lock(path: Path) -> WriterLock:
    """The one lock of a database file in this process (by its resolved path)."""
    with _guard:
        resolved = path.resolve()
        found = _locks.get(resolved)
        if found is None:
            found = _locks[resolved] = WriterLock(resolved)
        return found


def _reset_in_child() -> None:
    # a child opens the lock file again: flock is held per open file, which a child would share with
    # its parent (and so not exclude it); and a thread of the parent may have held the thread lock
    for lock in _locks.values():
        lock._fd, lock._thread_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_reset_in_child)
