"""One queue delivery of an action (the `run_action` trigger's work), and what it owes the queue.

A delivery runs its action if it is runnable. If not, it says why, and fails only when something
is wrong (so failed executions in Azure monitoring are real failures):

- the action is done, or waits on the action it runs after: nothing is owed;
- it is early (a retry or re-check not due yet): it is re-sent for when the ledger says it is due;
- it runs now in this process (a second message for it, e.g. from a duplicate event): nothing is
  owed, the running call records the outcome;
- it runs under another worker's live lease: it is re-sent for when that lease expires, so if that
  worker died this message brings the action back (a live owner renews the lease; the copy then
  finds the action done, or re-sends itself again);
- it is leased by this worker but no call of it runs the action: the invocation that ran it died
  (killed, or a library called exit). ``ActionLeased`` is raised, so the host retries the message
  and in the end poisons it, and the poison handler fails the action with the error noted here.

Every delivery that raises (a missing action, a ledger error, a crash) is noted in the action's
log with the worker id and the real error, for the poison handler to report.
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
LEASE_RECHECK_MARGIN_S = 5.0


class ActionLeased(RuntimeError):
    """The message's action is leased by this worker, but its invocation died: retry the message."""


def handle_delivery(worker: Worker, body: bytes, dequeue_count: int) -> Action | None:
    """Run the message's action; returns it once run, or None when it was not runnable now."""
    message = parse_message(body)  # a malformed message raises: retried, then poisoned
    action_id = message["action_id"]
    with telemetry.bind(action_id=action_id, correlation_id=message.get("correlation_id")):
        try:
            ran = worker.run_once(action_id)
            if ran is None:
                _not_runnable(worker, action_id)
        except BaseException as exc:  # noted (with our worker id) for the poison handler, then retried
            try:
                worker.ledger.note(action_id, worker.worker_id, delivery_failure_note(dequeue_count, exc))
            except Exception:
                log.exception("could not note the failed delivery of %s", action_id)
            raise
        if ran is not None:
            log.info("action %s: %s", action_id, ran.status, extra={"event_id": ran.event_id})
        return ran


def _not_runnable(worker: Worker, action_id: str) -> None:
    action = worker.ledger.get_action(action_id)
    if action is None:
        raise BadRequest(f"queue message names action {action_id}, which is not in the ledger")
    if action.status == RUNNING:
        _leased(worker, action)
        return
    delay = redispatch_if_early(action, worker.dispatcher, worker.clock())
    log.info(
        "action %s not runnable now (%s)%s",
        action_id,
        action.status,
        f"; re-sent, visible in {delay:.0f}s" if delay is not None else "",
        extra={"event_id": action.event_id},
    )


def _leased(worker: Worker, action: Action) -> None:
    if action.lease_owner == worker.worker_id:
        if worker.is_running(action.id):
            log.info("action %s runs in this process; this message is not needed", action.id)
            return
        raise ActionLeased(
            f"action {action.id} is leased by this worker ({worker.worker_id}) until {action.lease_expires_at},"
            " but no invocation of it runs the action: the one that did ended without recording an outcome"
        )
    # leased elsewhere: a claim now would be refused, and the ledger reclaims it only after expiry
    expires = action.lease_expires_at or worker.clock()
    delay = max(0.0, (expires - worker.clock()).total_seconds()) + LEASE_RECHECK_MARGIN_S
    worker.dispatcher.dispatch([action.id], delay_seconds=delay)
    log.info(
        "action %s is leased by %s; re-checked in %.0fs in case that worker died",
        action.id,
        action.lease_owner,
        delay,
        extra={"event_id": action.event_id},
    )
