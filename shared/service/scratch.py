"""Scratch space of an attempt: ``<state dir>/tmp/<action id>/`` (downloads of copies and batch
models). An attempt killed mid-download leaves its files there; the next claim of that action
removes them before it runs, every attempt removes its own when it ends, and a worker starting
removes those of actions no live lease holds (a killed worker whose actions finished elsewhere).
So nothing under ``tmp/`` outlives the attempts that use it."""

from __future__ import annotations

import logging
import shutil
import time
from datetime import datetime
from pathlib import Path

from shared.domain.actions import RUNNING
from shared.executors.base import scratch_path
from shared.ledger.base import Ledger

log = logging.getLogger("modelops.scratch")
LEGACY_AGE_S = 3600  # entries not named for an action (older layouts): removed once this old


def clear(state_dir: Path, action_id: str) -> int:
    """Remove the action's scratch dir; returns the bytes it held (what dead attempts left)."""
    path = scratch_path(state_dir, action_id)
    if not path.exists():
        return 0
    size = _size(path)
    shutil.rmtree(path, ignore_errors=True)
    return size


def sweep(state_dir: Path, ledger: Ledger, now: datetime) -> list[str]:
    """Remove the scratch dirs no live lease holds; returns the names removed."""
    root = scratch_path(state_dir, "_").parent
    if not root.is_dir():
        return []
    removed = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("act_"):
            action = ledger.get_action(entry.name)
            live = (
                action is not None
                and action.status == RUNNING
                and action.lease_expires_at is not None
                and action.lease_expires_at > now
            )
            if live:
                continue
        elif time.time() - entry.stat().st_mtime < LEGACY_AGE_S:
            continue
        size = _size(entry)
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry.name)
        log.info("removed %s (%.1f MB) left in %s by an attempt that ended", entry.name, size / 1e6, root)
    return removed


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        try:
            if p.is_file():
                total += p.stat().st_size
        except OSError:
            pass
    return total
