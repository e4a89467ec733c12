"""What a local target's router routes: the state file the reactor writes and the router reads.

One small JSON file per target (``state_dir/routers/<target>.json``), replaced atomically (write a
temp file, ``os.replace``), so the router sees the old weights or the new ones, never half a file.
The reactor changes it read-modify-write under an exclusive ``flock`` on ``<file>.lock``: two deploy
actions of one target never lose each other's change. ``window`` names the judging window: the router
counts each route's requests per window, so a new window starts the figures of a rollout step afresh.
The router process (shared/local/router/) imports it too: standard library only.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Route:
    """One version's scoring server and its share of the target's traffic (percent)."""

    id: str  # "model/version" (or "source/model/version"): how figures and weights name it
    url: str  # the server's base URL; requests go to <url>/invocations
    weight: int


@dataclass(frozen=True)
class Mirror:
    """Copy ``percent`` of requests to a version that does not answer them (its answer is discarded)."""

    id: str
    url: str
    percent: int


@dataclass(frozen=True)
class RouterState:
    target: str
    routes: tuple[Route, ...] = ()
    mirror: Mirror | None = None
    window: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def weights(self) -> dict[str, int]:
        return {route.id: route.weight for route in self.routes if route.weight > 0}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "window": self.window,
            "routes": [asdict(route) for route in self.routes],
            "mirror": asdict(self.mirror) if self.mirror else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouterState:
        mirror = data.get("mirror")
        return cls(
            target=str(data["target"]),
            routes=tuple(Route(str(r["id"]), str(r["url"]), int(r["weight"])) for r in data.get("routes") or ()),
            mirror=Mirror(str(mirror["id"]), str(mirror["url"]), int(mirror["percent"])) if mirror else None,
            window=str(data.get("window") or ""),
        )

    def routed(self, weights: dict[str, tuple[str, int]], *, mirror: Mirror | None = None) -> RouterState:
        """A new window with these routes (id -> (url, weight)); weights 0 are kept listed at 0%."""
        routes = tuple(Route(route_id, url, weight) for route_id, (url, weight) in weights.items())
        return replace(self, routes=routes, mirror=mirror, window=uuid.uuid4().hex[:12])


def state_path(state_dir: Path, target: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in target)
    return Path(state_dir) / "routers" / f"{safe}.json"


def read_state(path: Path) -> RouterState | None:
    """The file's state; None if there is none yet (or it cannot be read: the router keeps its last)."""
    try:
        return parse_state(path.read_bytes())
    except OSError:
        return None


def parse_state(raw: bytes) -> RouterState | None:
    """A state file's bytes as the state; None if they are not one."""
    try:
        return RouterState.from_dict(json.loads(raw.decode("utf-8")))
    except (ValueError, KeyError, TypeError):
        return None


def write_state(path: Path, state: RouterState) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(json.dumps(state.to_dict(), indent=1), encoding="utf-8")
    os.replace(scratch, path)  # atomic: the router reads the old file or the new one


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def update_state(path: Path, target: str, change: Callable[[RouterState], RouterState]) -> RouterState:
    """Read, change and write the target's state under the file's lock; returns what was written."""
    with _locked(path):
        current = read_state(path) or RouterState(target=target)
        changed = change(current)
        write_state(path, changed)
        return changed
