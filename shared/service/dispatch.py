"""Handing runnable actions to workers: in-process wake-ups locally, a Storage queue in Azure."""

from __future__ import annotations

import threading
from typing import Protocol


class Dispatcher(Protocol):
    def dispatch(self, action_ids: list[str], *, delay_seconds: float = 0) -> None:
        """Make the actions run; ``delay_seconds`` for a retry or re-check that is not due yet."""
        ...


class LocalDispatcher:
    """The in-process worker polls the ledger; dispatching only wakes it up early."""

    def __init__(self) -> None:
        self.wakeup = threading.Event()

    def dispatch(self, action_ids: list[str], *, delay_seconds: float = 0) -> None:
        # a delayed action is found by the worker's own polling once due (the ledger holds not_before)
        if action_ids and delay_seconds <= 0:
            self.wakeup.set()
