"""Every contract test runs on both backends: SQLite (a temporary file) and Table Storage (Azurite)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.domain.clock import now_utc
from shared.ledger.base import Ledger
from tests.ledger.support import Backend, ManualClock


@pytest.fixture(params=["sqlite", "tables"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "sqlite":
        return Backend("sqlite", str(tmp_path / "ledger.db"))
    azurite = request.getfixturevalue("azurite")  # started only when a Table test runs
    return Backend("tables", f"ledger{uuid.uuid4().hex[:10]}", azurite.connection_string)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(now_utc())


@pytest.fixture
def ledger(backend: Backend, clock: ManualClock) -> Iterator[Ledger]:
    """A ledger on the hand-driven ``clock``."""
    opened = backend.open(clock)
    yield opened
    opened.close()
