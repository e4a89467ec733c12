"""Queue-triggered worker: one message names one action id; the ledger's lease decides who runs it."""

from __future__ import annotations

import json
import logging

import azure.functions as func

from functions.runtime import worker
from shared.errors import BadRequest

bp = func.Blueprint()
log = logging.getLogger("modelops.functions.queue")
QUEUE = "%MODELOPS_ACTIONS_QUEUE%"


def action_id_of(message: func.QueueMessage) -> str:
    try:
        body = json.loads(message.get_body().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"queue message is not JSON: {exc}") from None
    if not isinstance(body, dict) or not isinstance(body.get("action_id"), str):
        raise BadRequest('queue message must be {"action_id": "..."}')
    return str(body["action_id"])


@bp.function_name("run_action")
@bp.queue_trigger(arg_name="message", queue_name=QUEUE, connection="AzureWebJobsStorage")
def run_action(message: func.QueueMessage) -> None:
    action_id = action_id_of(message)
    ran = worker().run_once(action_id)
    log.info(
        "action %s: %s",
        action_id,
        ran.status if ran else "not runnable now (done, leased or waiting)",
        extra={"action_id": action_id},
    )
