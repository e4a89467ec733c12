"""The router process of each `local` target: started once, on one port for the target's lifetime,
recorded beside the scoring servers (table ``local_routers`` of ``deployments.db``), adopted again by
the next deploy or reactor start, and, like the servers, left running when the reactor stops.

The port is kept in the row even when the process died: a router started again takes the same port,
so the target's URL never changes. The router is `python -m shared.local.router` in its own session,
with an environment of its own (none of the reactor's secrets: it needs none).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import requests

from shared.adapters.local_deployments import LocalDeploymentRecord, StateDb, kill_process_group, process_alive
from shared.adapters.local_server import free_port, url_for
from shared.adapters.router_state import Mirror, RouterState, read_state, state_path, update_state
from shared.errors import RetryableError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS local_routers (
    target TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    create_time REAL NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    url TEXT NOT NULL,
    state_file TEXT NOT NULL,
    log_file TEXT NOT NULL,
    started_at REAL NOT NULL
)
"""
_REPO_ROOT = Path(__file__).resolve().parents[2]  # the router imports `shared` from here
_ENV_KEPT = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class RouterRecord:
    target: str
    pid: int
    create_time: float
    host: str
    port: int
    url: str  # base URL; the stable scoring URL is <url>/invocations
    state_file: str
    log_file: str
    started_at: float

    @property
    def scoring_url(self) -> str:
        return f"{self.url}/invocations"

    def alive(self) -> bool:
        return process_alive(self.pid, self.create_time)

    def state(self) -> RouterState | None:
        return read_state(Path(self.state_file))

    def to_dict(self) -> dict[str, Any]:
        state = self.state()
        return {
            **asdict(self),
            "scoring_url": self.scoring_url,
            "alive": self.alive(),
            "weights": state.weights() if state else {},
            "mirror": state.to_dict()["mirror"] if state else None,
        }


class LocalRouterStore(StateDb):
    """The local targets' routers (their stable URLs)."""

    def __init__(self, state_dir: Path) -> None:
        super().__init__(state_dir, _SCHEMA)

    def get(self, target: str) -> RouterRecord | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM local_routers WHERE target = ?", (target,)).fetchone()
        return RouterRecord(**dict(row)) if row else None

    def list(self) -> list[RouterRecord]:
        with self._connect() as db:
            return [RouterRecord(**dict(row)) for row in db.execute("SELECT * FROM local_routers ORDER BY target")]

    def record(self, rec: RouterRecord) -> None:
        values = asdict(rec)
        with self._connect() as db:
            db.execute(
                f"INSERT OR REPLACE INTO local_routers ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
                tuple(values.values()),
            )

    def remove(self, target: str) -> None:
        with self._connect() as db:
            db.execute("DELETE FROM local_routers WHERE target = ?", (target,))


def ensure_router(
    state_dir: Path, target: str, *, host: str, port: int | None, timeout_s: float = 60.0
) -> RouterRecord:
    """The target's router, running: the recorded one if it answers, else started (on its recorded
    port, or ``port``, or a free one). Serialized per target across processes by a file lock."""
    store = LocalRouterStore(state_dir)
    lock_file = state_path(state_dir, target).with_suffix(".start.lock")
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rec = store.get(target)
        if rec is not None and (port is None or rec.port == port) and rec.host == host:
            if rec.alive() and _answers(rec.url):
                return rec
            port = rec.port  # the target keeps its URL
        if rec is not None:
            kill_process_group(rec.pid, rec.create_time)
        return _start(store, state_dir, target, host=host, port=port or free_port(host), timeout_s=timeout_s)


def _start(
    store: LocalRouterStore, state_dir: Path, target: str, *, host: str, port: int, timeout_s: float
) -> RouterRecord:
    import psutil

    state_file = state_path(state_dir, target)
    log_file = state_file.with_suffix(".log")
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "shared.local.router", "--state", str(state_file), "--host", host]
    command += ["--port", str(port), "--timeout", str(timeout_s)]
    env = {name: os.environ[name] for name in _ENV_KEPT if name in os.environ}
    env["PYTHONPATH"] = str(_REPO_ROOT)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=_REPO_ROOT,
            start_new_session=True,
            close_fds=True,
        )
    rec = RouterRecord(
        target=target,
        pid=proc.pid,
        create_time=psutil.Process(proc.pid).create_time(),
        host=host,
        port=port,
        url=url_for(host, port),
        state_file=str(state_file),
        log_file=str(log_file),
        started_at=time.time(),
    )
    store.record(rec)  # before the wait: a crash here leaves it findable
    deadline = time.monotonic() + 30
    while not _answers(rec.url):
        if proc.poll() is not None or time.monotonic() > deadline:
            kill_process_group(proc.pid, rec.create_time)
            tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-15:])
            raise RetryableError(f"the router of local target {target} did not start on port {port}:\n{tail}")
        time.sleep(0.1)
    return rec


def _answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/-/state", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def stop_router(state_dir: Path, target: str) -> bool:
    """Stop the target's router and forget it (its state file too); True if one was recorded."""
    store = LocalRouterStore(state_dir)
    rec = store.get(target)
    if rec is None:
        return False
    kill_process_group(rec.pid, rec.create_time)
    for path in (Path(rec.state_file), Path(rec.log_file)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    store.remove(target)
    return True


def router_figures(rec: RouterRecord, window: str) -> dict[str, dict[str, Any]]:
    """The router's figures per route for ``window`` (empty if it counted nothing there yet)."""
    try:
        response = requests.get(f"{rec.url}/-/stats", timeout=5)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise RetryableError(f"could not read the figures of the router of {rec.target} ({rec.url}): {exc}") from exc
    windows = response.json().get("windows") or {}
    return dict(windows.get(window) or {})


def route_id(rec: LocalDeploymentRecord) -> str:
    """How the router names a version's server: ``model/version`` (``source/model/version``)."""
    return "/".join(part for part in (rec.source, rec.model_name, rec.model_version) if part)


def route_to(
    router: RouterRecord,
    weights: list[tuple[LocalDeploymentRecord, int]],
    *,
    mirror: tuple[LocalDeploymentRecord, int] | None = None,
) -> RouterState:
    """Give the target's traffic to these servers (percent each; 0 keeps one listed, unused), and copy
    ``mirror``'s percent to a server; a new judging window begins. Returns the state written."""
    routes = {route_id(rec): (rec.url, weight) for rec, weight in weights}
    copy = Mirror(route_id(mirror[0]), mirror[0].url, mirror[1]) if mirror else None
    return update_state(Path(router.state_file), router.target, lambda state: state.routed(routes, mirror=copy))
