"""Time, once: the clock the ledger and its callers agree on, and how instants are written down."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import overload

Clock = Callable[[], datetime]


def now_utc() -> datetime:
    return datetime.now(UTC)


@overload
def iso(value: datetime) -> str: ...


@overload
def iso(value: None) -> None: ...


@overload
def iso(value: datetime | None) -> str | None: ...


def iso(value: datetime | None) -> str | None:
    """UTC with microseconds always written, so stored instants compare as text in time order."""
    if value is None:
        return None
    # astimezone is a conversion even from UTC: most instants here are UTC already
    return (value if value.tzinfo is UTC else value.astimezone(UTC)).isoformat(timespec="microseconds")


def parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
