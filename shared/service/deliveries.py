"""One queue delivery of an action (the `run_action` trigger's work), and what it owes the queue.

A delivery runs its action if it is runnable. If not, it says why: leased by another invocation
(``ActionLeased`` is raised so the host retries the message after its visibility timeout, and in
the end poisons it: if that invocation died, only this message brings the action back), or early
(re-sent for when the ledger says it is due). A delivery that raises is noted in the action's log
with the worker id, for the poison handler to report.
"""

from __future__ import annotations

import logging

from shared import telemetry
from shared.domain.actions import RUNNING, Action
from shared.errors import BadRequest
from shared.service.poison import delivery_failure_note, parse_message
from shared.service.queue_dispatch import redispatch_if_early
from shared.service.worker import Worker

log = logging.getLogger("modelops.deliveries")


class ActionLeased(RuntimeError):
    """The message's action is running under another lease: retry the message later."""


def handle_delivery(worker: Worker, body: bytes, dequeue_count: int) -> Action | None:
    """Run the message's action; returns it once run, or None when it was not runnable now."""
    message = parse_message(body)  # a malformed message raises: retried, then poisoned
    action_id = message["action_id"]
    with telemetry.bind(action_id=action_id, correlation_id=message.get("correlation_id")):
        try:
            ran = worker.run_once(action_id)
        except BaseException as exc:  # noted (with our worker id) for the poison handler, then retried
            try:
                worker.ledger.note(action_id, worker.worker_id, delivery_failure_note(dequeue_count, exc))
            except Exception:
                log.exception("could not note the failed delivery of %s", action_id)
            raise
        if ran is not None:
            log.info("action %s: %s", action_id, ran.status, extra={"event_id": ran.event_id})
            return ran
        _not_runnable(worker, action_id)
        return None


def _not_runnable(worker: Worker, action_id: str) -> None:
    action = worker.ledger.get_action(action_id)
    if action is None:
        raise BadRequest(f"queue message names action {action_id}, which is not in the ledger")
    if action.status == RUNNING:
        raise ActionLeased(f"action {action_id} is leased by {action.lease_owner} until {action.lease_expires_at}")
    delay = redispatch_if_early(action, worker.dispatcher, worker.clock())
    log.info(
        "action %s not runnable now (%s)%s",
        action_id,
        action.status,
        f"; re-sent, visible in {delay:.0f}s" if delay is not None else "",
        extra={"event_id": action.event_id},
    )
