"""Carry out a plan: tag/untag and delete with bounded concurrency, one failure never stops
the others; every outcome lands on the group's report row."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from shared.cleanup.planner import Planned
from shared.cleanup.policy import Action
from shared.cleanup.provider import CleanupProvider, GroupGoneError, ScopeLockedError
from shared.cleanup.report import GroupRow
from shared.timeparse import format_timestamp

log = logging.getLogger("modelops.cleanup")
Progress = Callable[[str], None]


def describe(exc: BaseException) -> str:
    """One line, short enough for a table cell and a JSON report."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def apply_plan(
    provider: CleanupProvider,
    planned: list[Planned],
    rows: list[GroupRow],
    *,
    concurrency: int,
    progress: Progress,
) -> None:
    pairs = list(zip(planned, rows, strict=True))
    tagging = [p for p in pairs if p[0].decision.action in (Action.MARK, Action.UNMARK)]
    deleting = [p for p in pairs if p[0].decision.action is Action.DELETE]
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="cleanup") as pool:
        list(pool.map(lambda pair: _tag(provider, pair[0], pair[1], progress), tagging))
        list(pool.map(lambda pair: _delete(provider, pair[0], pair[1], progress), deleting))


def _now() -> str:
    return format_timestamp(datetime.now(UTC))


def _tag(provider: CleanupProvider, item: Planned, row: GroupRow, progress: Progress) -> None:
    try:
        if item.decision.action is Action.MARK:
            provider.set_mark(item.group, str(item.decision.new_mark))
            row.status = "marked"
            progress(f"marked {item.group.name}: delete after {item.decision.new_mark}")
        else:
            provider.remove_mark(item.group)
            row.status = "unmarked"
            progress(f"unmarked {item.group.name}: no longer stale")
    except Exception as exc:  # noqa: BLE001 - reported per group, the run goes on
        row.status, row.error = "failed", describe(exc)
        log.warning("cleanup: tagging %s failed: %s", item.group.id, row.error)
        progress(f"tagging {item.group.name} failed: {row.error}")


def _delete(provider: CleanupProvider, item: Planned, row: GroupRow, progress: Progress) -> None:
    name = item.group.name
    try:
        operation = provider.begin_delete(item.group)
        row.status, row.started_at = "started", _now()
        progress(f"delete started: {name}")
        operation.wait()
        row.status, row.finished_at = "finished", _now()
        progress(f"delete finished: {name}")
    except ScopeLockedError as exc:
        row.status, row.error = "skipped-locked", describe(exc)
        progress(f"delete skipped, locked: {name}")
    except GroupGoneError as exc:
        row.status, row.error, row.finished_at = "finished", describe(exc), _now()
        progress(f"delete finished (already gone): {name}")
    except Exception as exc:  # noqa: BLE001 - one failed delete must not stop the others
        row.status, row.error, row.finished_at = "failed", describe(exc), _now()
        log.warning("cleanup: deleting %s failed: %s", item.group.id, row.error)
        progress(f"delete failed: {name}: {row.error}")
