"""Queue-triggered worker: one message names one action id; the ledger's lease decides who runs it.

A delivery that raises is retried by the host; after maxDequeueCount (host.json) the message
moves to `<queue>-poison`, where `poisoned_action` records the action as failed with the reason.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

import azure.functions as func

from functions.runtime import reactor, worker
from shared import telemetry
from shared.domain.actions import RUNNING
from shared.errors import BadRequest
from shared.service.poison import delivery_failure_note, parse_message

bp = func.Blueprint()
log = logging.getLogger("modelops.functions.queue")
QUEUE = "%MODELOPS_ACTIONS_QUEUE%"
POISON_QUEUE = "%MODELOPS_ACTIONS_QUEUE%-poison"
HOST_JSON = Path(__file__).resolve().parents[1] / "host.json"


class ActionLeased(RuntimeError):
    """The message's action is running under another lease: retry the message later."""


@cache
def max_dequeue_count() -> int:
    """The host's default is 5; host.json sets it explicitly."""
    try:
        return int(json.loads(HOST_JSON.read_text())["extensions"]["queues"]["maxDequeueCount"])
    except (OSError, KeyError, ValueError):
        return 5


@bp.function_name("run_action")
@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection="AzureWebJobsStorage")
def run_action(message: func.QueueMessage) -> None:
    body = parse_message(message.get_body())  # a malformed message raises: retried, then poisoned
    action_id = body["action_id"]
    with telemetry.bind(action_id=action_id, correlation_id=body.get("correlation_id")):
        app_worker = worker()
        try:
            ran = app_worker.run_once(action_id)
        except BaseException as exc:  # noted (with our worker id) for the poison handler, then retried
            try:
                app_worker.ledger.note(
                    action_id, app_worker.worker_id, delivery_failure_note(message.dequeue_count or 0, exc)
                )
            except Exception:
                log.exception("could not note the failed delivery of %s", action_id)
            raise
        if ran is not None:
            log.info("action %s: %s", action_id, ran.status, extra={"event_id": ran.event_id})
            return
        from shared.service.queue_dispatch import redispatch_if_early

        action = app_worker.ledger.get_action(action_id)
        if action is None:
            raise BadRequest(f"queue message names action {action_id}, which is not in the ledger")
        if action.status == RUNNING:
            # leased by another invocation; if that one died, only this message brings the action
            # back: let the host retry it after its visibility timeout (and poison it in the end)
            raise ActionLeased(f"action {action_id} is leased by {action.lease_owner} until {action.lease_expires_at}")
        delay = redispatch_if_early(action, app_worker.dispatcher)
        log.info(
            "action %s not runnable now (%s)%s",
            action_id,
            action.status,
            f"; re-sent, visible in {delay:.0f}s" if delay is not None else "",
            extra={"event_id": action.event_id},
        )


@bp.function_name("poisoned_action")
@bp.queue_trigger(arg_name="message", queue_name=POISON_QUEUE, connection="AzureWebJobsStorage")
def poisoned_action(message: func.QueueMessage) -> None:
    from shared.service.poison import record_poison

    record_poison(reactor(), message.get_body(), max_dequeue_count())
