"""WAL checkpoints of a ledger file, in a thread of their own instead of in a committing one.

SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL past 1000 pages: it
copies the pages into the database file and syncs both files. On the event loop (the webhook
routes' group commit, shared/ledger/sqlite_db.py) that stopped every request of the process for
the copy and the fsyncs, about one commit in thirty under load (the tail latency) and ~40 % of the
COMMIT time on average. So the ledger's connections turn the automatic checkpoint off
(``PRAGMA wal_autocheckpoint=0``) and this thread runs a PASSIVE checkpoint (it never waits for
readers or writers; SQLite releases the GIL while it copies and syncs) at most every
``INTERVAL_SECONDS`` while commits happen.

A PASSIVE checkpoint under steady commits never lets the WAL start over: SQLite rewinds it only
when a write transaction begins with every frame copied, and commits land while the copy runs.
So once the WAL holds ``RESTART_FRAMES``, the thread takes the file's writer lock (no commit of
this or another serving process meanwhile) and runs a RESTART checkpoint, which copies only what the PASSIVE one
left and makes the next writer rewind the WAL; it gives up after ``RESTART_BUSY_MS`` if a reader
or another process is in the way (the next round tries again). The thread ends when the file has
seen no commit for ``IDLE_SECONDS`` (a commit starts another); the last connection to close
checkpoints what is left, as SQLite always does.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

from shared.ledger.sqlite_locks import WriterLock

INTERVAL_SECONDS = 0.5  # SQLite's own threshold (1000 pages) is about this much intake under load
RESTART_FRAMES = 8192  # ~32 MB of WAL with 4 KB pages: then it is rewound (a few ms under the writer lock)
RESTART_BUSY_MS = 50
IDLE_SECONDS = 2.0

log = logging.getLogger("modelops.ledger")


class Checkpointer:
    """Checkpoints ``path`` after commits (``committed()``), from its own thread and connection."""

    def __init__(self, path: Path, connect: Callable[[], sqlite3.Connection], write_lock: WriterLock) -> None:
        self.path = path
        self._connect = connect
        self._write_lock = write_lock
        self._dirty = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self.runs = 0  # checkpoints run, and of those the rewinds (tests, diagnostics)
        self.restarts = 0

    def committed(self) -> None:
        """A transaction committed: a checkpoint is due soon (cheap: no lock unless none runs)."""
        self._dirty.set()
        if self._thread is None:
            with self._guard:
                if self._thread is None and not self._stop.is_set():
                    self._thread = threading.Thread(
                        target=self._run, name=f"ledger-checkpoint:{self.path.name}", daemon=True
                    )
                    self._thread.start()

    def checkpoint(self, db: sqlite3.Connection) -> tuple[int, int, int]:
        """One PASSIVE checkpoint, then a RESTART one if the WAL has grown long: (busy, frames in
        the WAL, frames checkpointed) of the PASSIVE one."""
        busy, frames, done = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.runs += 1
        if frames >= RESTART_FRAMES:
            with self._write_lock:
                db.execute(f"PRAGMA busy_timeout={RESTART_BUSY_MS}")
                try:
                    rewound = db.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0] == 0
                finally:
                    db.execute("PRAGMA busy_timeout=60000")
            self.restarts += rewound
        return int(busy), int(frames), int(done)

    def stop(self) -> None:
        self._stop.set()
        self._dirty.set()

    def _run(self) -> None:
        db = self._connect()
        try:
            while not self._stop.is_set():
                if not self._dirty.wait(IDLE_SECONDS):
                    with self._guard:
                        if not self._dirty.is_set():  # a commit after this starts a new thread
                            self._thread = None
                            return
                    continue
                self._dirty.clear()
                try:
                    self.checkpoint(db)
                except sqlite3.Error as exc:  # the next commit tries again; SQLite's close does too
                    log.warning("WAL checkpoint of %s failed: %s", self.path, exc)
                self._stop.wait(INTERVAL_SECONDS)
        finally:
            with self._guard:
                if self._thread is threading.current_thread():
                    self._thread = None
            db.close()
