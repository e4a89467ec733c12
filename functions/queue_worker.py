"""Queue-triggered worker: one message names one action id; the ledger's lease decides who runs it.

A delivery that raises is retried by the host; after maxDequeueCount (host.json) the message
moves to `<queue>-poison`, where `poisoned_action` records the action as failed with the reason.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import azure.functions as func

from shared.bootstrap import Container

QUEUE = "%MODELOPS_ACTIONS_QUEUE%"
POISON_QUEUE = "%MODELOPS_ACTIONS_QUEUE%-poison"
HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"


@cache
def max_dequeue_count() -> int:
    """The host's default is 5; host.json sets it explicitly."""
    try:
        return int(json.loads(HOST_JSON.read_text())["extensions"]["queues"]["maxDequeueCount"])
    except (OSError, KeyError, ValueError):
        return 5


def blueprint(container: Container) -> func.Blueprint:
    bp = func.Blueprint()

    @bp.function_name("run_action")
    @bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection="AzureWebJobsStorage")
    def run_action(message: func.QueueMessage) -> None:
        from shared.service.deliveries import handle_delivery

        handle_delivery(container.worker(), message.get_body(), message.dequeue_count or 0)

    @bp.function_name("poisoned_action")
    @bp.queue_trigger(arg_name="message", queue_name=POISON_QUEUE, connection="AzureWebJobsStorage")
    def poisoned_action(message: func.QueueMessage) -> None:
        from shared.service.poison import record_poison

        record_poison(container.reactor(), message.get_body(), max_dequeue_count())

    return bp
