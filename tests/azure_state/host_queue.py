"""Deliver Azurite queue messages to a queue-triggered function the way the Functions host does.

The host (Storage extension 5.x) dequeues a message, base64-decodes it into a QueueMessage and
calls the function; on success it deletes the message; on an exception it makes the message
visible again after host.json's visibilityTimeout, and once its dequeue count has reached
maxDequeueCount it moves the message to `<queue>-poison` instead. Azure Functions Core Tools
cannot run here, so this is that loop, against the real queue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage

from shared.adapters.azure_storage import StorageAccount
from tests.support import wait_for


def queue_message(message: Any) -> func.QueueMessage:
    """What the host's queueTrigger converter builds (azure.functions.queue.QueueMessage)."""
    return QueueMessage(
        id=message.id, body=message.content, pop_receipt=message.pop_receipt, dequeue_count=message.dequeue_count
    )


def deliver(
    account: StorageAccount,
    queue: str,
    function: Callable[[func.QueueMessage], None],
    *,
    max_dequeue_count: int,
    retry_after_seconds: int = 1,
    timeout: float = 60,
    visibility_timeout: int = 60,
) -> list[str]:
    """Deliver the next message until it succeeds or is poisoned; returns each delivery's result."""
    client = account.queue_client(queue)
    results: list[str] = []
    while True:
        message = wait_for(
            lambda: client.receive_message(visibility_timeout=visibility_timeout),
            timeout=timeout,
            what=f"a message on {queue}",
        )
        try:
            function(queue_message(message))
        except BaseException as exc:  # noqa: BLE001 - the host survives whatever the function raises
            results.append(f"failed: {type(exc).__name__}")
            if message.dequeue_count >= max_dequeue_count:
                account.queue_client(f"{queue}-poison").send_message(message.content.decode("utf-8"))
                client.delete_message(message)
                results.append("poisoned")
                return results
            client.update_message(message.id, pop_receipt=message.pop_receipt, visibility_timeout=retry_after_seconds)
            continue
        client.delete_message(message)
        results.append("done")
        return results
