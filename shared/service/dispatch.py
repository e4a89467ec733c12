"""Handing runnable actions to workers: in-process wake-ups locally, a Storage queue in Azure."""

from __future__ import annotations

import threading
from typing import Protocol


class Dispatcher(Protocol):
    def dispatch(self, action_ids: list[str]) -> None: ...


class LocalDispatcher:
    """The in-process worker polls the ledger; dispatching only wakes it up early."""

    def __init__(self) -> None:
        self.wakeup = threading.Event()

    def dispatch(self, action_ids: list[str]) -> None:
        if action_ids:
            self.wakeup.set()
