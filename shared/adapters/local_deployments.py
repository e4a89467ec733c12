"""Which local scoring servers the reactor runs: a small SQLite store under the state dir.

One row per (target, source, model, version); ``source`` is the named source the version came from
(``source_scope``: empty for the one-per-kind names mlflow/databricks/azureml and operator requests),
so `churn` v3 of two sources deployed straight from them are two servers, not one. ``status`` is
``starting`` while a new server is being
health-checked, smoke-tested or rolled out, ``serving`` once it took over the target, ``retired`` once a
newer version replaced it: its process is stopped (the port freed) but the row is kept, newest
``keep_previous`` per target, so that a rollback can start it again. ``rolled-back``: a rollout judged
it failed; it runs at 0% for a look, owned by no action, so cleanup may stop it. Cleanup uses
``LocalDeploymentStore.list()`` and ``stop_deployment()``; nothing else needs to be known.
"""

from __future__ import annotations

import builtins  # `list` below is a method name in LocalDeploymentStore
import contextlib
import os
import signal
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

STARTING = "starting"
SERVING = "serving"
RETIRED = "retired"
ROLLED_BACK = "rolled-back"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS local_deployments (
    target TEXT NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    model_name TEXT NOT NULL,
    model_version TEXT NOT NULL,
    status TEXT NOT NULL,
    pid INTEGER NOT NULL,
    create_time REAL NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    url TEXT NOT NULL,
    model_uri TEXT NOT NULL,
    tracking_uri TEXT NOT NULL,
    registry_uri TEXT,
    log_file TEXT NOT NULL,
    action_key TEXT,
    started_at REAL NOT NULL,
    PRIMARY KEY (target, source, model_name, model_version)
)
"""
_ROW = "target = ? AND source = ? AND model_name = ? AND model_version = ?"  # one row: its key
_COLUMNS_BEFORE_SOURCE = (
    "target, model_name, model_version, status, pid, create_time, host, port, url, model_uri, tracking_uri, "
    "registry_uri, log_file, action_key, started_at"
)


@dataclass(frozen=True)
class LocalDeploymentRecord:
    """A scoring server process the reactor started."""

    target: str
    model_name: str
    model_version: str
    status: str
    pid: int
    create_time: float  # process start time: tells our process from a later one reusing the pid
    host: str
    port: int
    url: str
    model_uri: str
    tracking_uri: str
    registry_uri: str | None
    log_file: str
    action_key: str | None
    started_at: float
    source: str = ""  # source_scope() of the deployed version's source; "" for the unscoped names

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "alive": is_alive(self)}


class StateDb:
    """`state_dir/deployments.db`, the local targets' own records (servers here, routers in
    local_routers.py); each call opens its own connection (safe across threads and processes)."""

    def __init__(self, state_dir: Path, schema: str) -> None:
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.state_dir / "deployments.db"
        with self._connect() as db:
            db.execute(schema)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        db.row_factory = sqlite3.Row
        try:
            db.execute("PRAGMA journal_mode=WAL")
            yield db
        finally:
            db.close()


class LocalDeploymentStore(StateDb):
    """The local model servers, serving or starting."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir, _SCHEMA)
        with self._connect() as db:
            _add_source_column(db)

    def list(self) -> list[LocalDeploymentRecord]:
        """Every recorded server, serving or starting, oldest first."""
        with self._connect() as db:
            rows = db.execute("SELECT * FROM local_deployments ORDER BY started_at").fetchall()
        return [LocalDeploymentRecord(**dict(row)) for row in rows]

    def get(self, target: str) -> LocalDeploymentRecord | None:
        """The server currently serving ``target``, if any."""
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM local_deployments WHERE target = ? AND status = ? ORDER BY started_at DESC LIMIT 1",
                (target, SERVING),
            ).fetchone()
        return LocalDeploymentRecord(**dict(row)) if row else None

    def find(self, target: str, model_name: str, model_version: str, source: str = "") -> LocalDeploymentRecord | None:
        with self._connect() as db:
            row = db.execute(
                f"SELECT * FROM local_deployments WHERE {_ROW}",
                (target, source, model_name, model_version),
            ).fetchone()
        return LocalDeploymentRecord(**dict(row)) if row else None

    def record(self, rec: LocalDeploymentRecord) -> None:
        """Insert or replace the row of (target, source, model, version)."""
        values = asdict(rec)
        columns = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        with self._connect() as db:
            db.execute(
                f"INSERT OR REPLACE INTO local_deployments ({columns}) VALUES ({marks})",
                tuple(values.values()),
            )

    def promote(self, rec: LocalDeploymentRecord) -> builtins.list[LocalDeploymentRecord]:
        """Make ``rec`` the one serving its target; returns the rows it replaced (still recorded)."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            rows = db.execute(
                "SELECT * FROM local_deployments WHERE target = ? AND status = ? "
                "AND NOT (source = ? AND model_name = ? AND model_version = ?)",
                (rec.target, SERVING, rec.source, rec.model_name, rec.model_version),
            ).fetchall()
            db.execute(
                f"UPDATE local_deployments SET status = ? WHERE {_ROW}",
                (SERVING, rec.target, rec.source, rec.model_name, rec.model_version),
            )
            db.execute("COMMIT")
        return [LocalDeploymentRecord(**dict(row)) for row in rows]

    def remove(self, rec: LocalDeploymentRecord) -> None:
        with self._connect() as db:
            db.execute(
                f"DELETE FROM local_deployments WHERE {_ROW}",
                (rec.target, rec.source, rec.model_name, rec.model_version),
            )


def _add_source_column(db: sqlite3.Connection) -> None:
    """A store written before deployments were keyed by source gets the column (rows: source "") and
    the new key; SQLite cannot change a primary key in place, so the table is rebuilt, in one
    transaction (a second process doing the same waits, then finds it done)."""

    def keyed() -> bool:
        return any(row["name"] == "source" for row in db.execute("PRAGMA table_info(local_deployments)"))

    if keyed():
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if not keyed():
            db.execute(_SCHEMA.replace("IF NOT EXISTS local_deployments", "local_deployments_keyed"))
            db.execute(
                f"INSERT INTO local_deployments_keyed ({_COLUMNS_BEFORE_SOURCE}) "
                f"SELECT {_COLUMNS_BEFORE_SOURCE} FROM local_deployments"
            )
            db.execute("DROP TABLE local_deployments")
            db.execute("ALTER TABLE local_deployments_keyed RENAME TO local_deployments")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def is_alive(rec: LocalDeploymentRecord) -> bool:
    """True if the recorded process still runs (and is the same process, not a reused pid)."""
    return process_alive(rec.pid, rec.create_time)


def process_alive(pid: int, create_time: float) -> bool:
    import psutil

    try:
        proc = psutil.Process(pid)
        return (
            proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE and abs(proc.create_time() - create_time) < 1.0
        )
    except psutil.Error:
        return False


def kill_process_group(pid: int, create_time: float | None = None, grace_s: float = 10) -> None:
    """SIGTERM the server's process group (it forks workers), SIGKILL what is left after grace_s."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if create_time is not None and abs(proc.create_time() - create_time) >= 1.0:
            return  # the pid now belongs to someone else: never signal it
        pgid = os.getpgid(pid)
    except (psutil.Error, ProcessLookupError):
        return
    if pgid != pid:
        # started without its own session (not by us): signal the process alone
        with contextlib.suppress(psutil.Error):
            proc.terminate()
            proc.wait(grace_s)
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        with contextlib.suppress(psutil.Error):
            if proc.status() == psutil.STATUS_ZOMBIE:
                proc.wait(0)  # reap our own child so the pid is released
        if not _group_alive(pgid):
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(psutil.Error):
        proc.wait(5)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    import psutil

    # killpg(0) also succeeds for zombies; only count members that still run
    for proc in psutil.process_iter(["pid", "status"]):
        with contextlib.suppress(psutil.Error):
            if os.getpgid(proc.info["pid"]) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                return True
    return False


def stop_deployment(store: LocalDeploymentStore, rec: LocalDeploymentRecord) -> dict[str, Any]:
    """Stop a recorded server: kill its process group (frees the port), delete its log, forget it."""
    was_alive = is_alive(rec)
    if was_alive:
        kill_process_group(rec.pid, rec.create_time)
    with contextlib.suppress(FileNotFoundError):
        Path(rec.log_file).unlink()
    store.remove(rec)
    return {
        "target": rec.target,
        "model_name": rec.model_name,
        "model_version": rec.model_version,
        "url": rec.url,
        "pid": rec.pid,
        "was_running": was_alive,
        "stopped": True,
    }


def retire_deployment(store: LocalDeploymentStore, rec: LocalDeploymentRecord, *, keep: int) -> list[str]:
    """Stop a replaced server but keep its row (status retired) for a rollback; of the target's
    retired rows only the newest ``keep`` stay. Returns the versions forgotten."""
    if is_alive(rec):
        kill_process_group(rec.pid, rec.create_time)
    # a retired row's started_at is when it was retired: the newest retired is the one a rollback takes
    store.record(replace(rec, status=RETIRED, started_at=time.time()))
    retired = [r for r in store.list() if r.target == rec.target and r.status == RETIRED]
    retired.sort(key=lambda r: r.started_at, reverse=True)
    forgotten = []
    for old in retired[keep:]:
        stop_deployment(store, old)
        forgotten.append(f"{old.model_name}/{old.model_version}")
    return forgotten
