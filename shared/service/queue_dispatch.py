"""Dispatch through an Azure Storage queue: one message per action, read by the `run_action` trigger.

The message is ``{"action_id": ..., "correlation_id": ...}`` as base64 text (host.json
``messageEncoding: base64``, the queue trigger's default). A retry or a re-check that is not due
yet is sent with a visibility timeout, so the message appears when the ledger says it is due.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
from datetime import UTC, datetime
from typing import Any

from shared import telemetry
from shared.adapters.azure_storage import StorageAccount
from shared.domain.actions import QUEUED, WAITING, Action
from shared.service.dispatch import Dispatcher

log = logging.getLogger("modelops.dispatch")
# Queue Storage refuses a visibility timeout beyond 7 days; a later re-check is re-sent on arrival.
MAX_DELAY_SECONDS = 7 * 24 * 3600 - 60


class QueueDispatcher:
    def __init__(self, queue_client: Any) -> None:
        self._queue = queue_client

    @classmethod
    def open(cls, account: StorageAccount, queue_name: str) -> QueueDispatcher:
        """Create the queue, and its poison queue so operators can watch it, if missing."""
        from azure.core.exceptions import ResourceExistsError

        for name in (queue_name, f"{queue_name}-poison"):
            with contextlib.suppress(ResourceExistsError):
                account.queue_client(name).create_queue()
        return cls(account.queue_client(queue_name))

    @property
    def queue_name(self) -> str:
        return str(self._queue.queue_name)

    def dispatch(self, action_ids: list[str], *, delay_seconds: float = 0) -> None:
        visibility = min(MAX_DELAY_SECONDS, math.ceil(delay_seconds)) if delay_seconds > 0 else None
        correlation = telemetry.current().get("correlation_id")
        for action_id in action_ids:
            body = {"action_id": action_id, **({"correlation_id": correlation} if correlation else {})}
            self._queue.send_message(json.dumps(body), visibility_timeout=visibility)
            log.debug(
                "queued %s on %s (visible in %ss)",
                action_id,
                self.queue_name,
                visibility or 0,
                extra={"action_id": action_id},
            )


def redispatch_if_early(action: Action, dispatcher: Dispatcher, now: datetime | None = None) -> float | None:
    """A message that arrived before its action is due (clock skew, a re-check beyond 7 days) is
    sent again for later; otherwise the queue would lose the action. Returns the delay, or None
    when nothing is owed (done, leased by a live worker, or waiting on the action it runs after,
    whose completion dispatches it)."""
    now = now or datetime.now(UTC)
    if action.status not in (QUEUED, WAITING) or action.not_before is None or action.not_before <= now:
        return None
    delay = (action.not_before - now).total_seconds()
    dispatcher.dispatch([action.id], delay_seconds=delay)
    return delay
