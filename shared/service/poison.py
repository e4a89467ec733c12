"""Queue messages the Functions host gave up on (moved to `<queue>-poison` after maxDequeueCount
failed deliveries): the action is recorded as failed, with the reason, so nothing fails silently."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from shared import telemetry
from shared.domain.actions import RUNNING, TERMINAL, Action
from shared.errors import BadRequest
from shared.service.reactor import Reactor

log = logging.getLogger("modelops.poison")
WORKER_ID = "poison-queue"
_FAILED_DELIVERY = re.compile(r"^queue delivery (\d+) failed: (.*)$", re.DOTALL)
_LEASED = "ActionLeased:"


def parse_message(body: bytes) -> dict[str, str]:
    """``{"action_id": "...", "correlation_id": "..."?}``, or BadRequest saying what is wrong."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"queue message is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("action_id"), str):
        raise BadRequest('queue message must be {"action_id": "..."}')
    return {k: v for k, v in data.items() if k in ("action_id", "correlation_id") and isinstance(v, str)}


def delivery_failure_note(dequeue_count: int, exc: BaseException) -> str:
    return f"queue delivery {dequeue_count} failed: {type(exc).__name__}: {telemetry.redact(str(exc))}"


def record_poison(reactor: Reactor, body: bytes, max_dequeue_count: int) -> dict[str, Any]:
    """Fail the message's action for good (skipping what runs after it) and publish the outcome.

    An action that is done, leased by a live worker, or scheduled for a later retry is left as is
    (it has its own message). A message naming no action is kept as a ``poison`` report."""
    ledger = reactor.ledger
    try:
        action_id = parse_message(body)["action_id"]
    except BadRequest as exc:
        reason = f"moved to poison queue after {max_dequeue_count} attempts: {exc}"
        return _report(reactor, body, reason)
    attempts, last_error, crashed_worker = _last_failure(reactor, action_id)
    reason = (
        f"moved to poison queue after {attempts or max_dequeue_count} attempts: "
        f"{last_error or 'no error was recorded (the invocation was killed: timeout or out of memory?)'}"
    )
    with telemetry.bind(action_id=action_id):
        action = ledger.get_action(action_id)
        if action is None:
            return _report(reactor, body, f"{reason}; no action {action_id} in the ledger")
        if action.status in TERMINAL:
            ledger.note(action_id, WORKER_ID, f"a poisoned queue message was ignored: the action is {action.status}")
            return {"action_id": action_id, "status": action.status, "reason": reason}
        owner = WORKER_ID
        if action.status == RUNNING and action.lease_owner and action.lease_owner == crashed_worker:
            owner = action.lease_owner  # its lease belongs to the invocation that crashed: take it over
        elif ledger.claim(WORKER_ID, 60, action_id=action_id) is None:
            return _left_alone(reactor, action, reason)
        ledger.fail(action_id, owner, reason, retry_at=None)
        log.error("action %s failed: %s", action_id, reason)
        final = ledger.get_action(action_id)
        if final is not None and reactor.on_finished is not None:
            try:
                reactor.on_finished(final)
            except Exception:
                log.exception("publishing the outcome of %s failed", action_id)
        return {"action_id": action_id, "status": final.status if final else None, "reason": reason}


def _left_alone(reactor: Reactor, action: Action, reason: str) -> dict[str, Any]:
    """Running under a live lease (or due later): its owner, or its own delayed message, finishes
    it. A running action is re-checked once its lease would expire, in case the owner died."""
    note = f"{reason}; left {action.status}"
    if action.status == RUNNING and action.lease_expires_at is not None:
        delay = max(0.0, (action.lease_expires_at - reactor.clock()).total_seconds()) + 5
        reactor.dispatcher.dispatch([action.id], delay_seconds=delay)
        note += f" under the lease of {action.lease_owner}; re-checked in {delay:.0f}s"
    reactor.ledger.note(action.id, WORKER_ID, note)
    log.warning("poisoned message for %s: %s", action.id, note)
    return {"action_id": action.id, "status": action.status, "reason": reason}


def _last_failure(reactor: Reactor, action_id: str) -> tuple[int | None, str | None, str | None]:
    """(delivery count, error, worker) of the last delivery that raised, noted by run_action.

    Deliveries that found the action still leased by the invocation that died (``ActionLeased``)
    count, but the error reported is what killed it, when a delivery noted that."""
    failures = []
    for line in reversed(reactor.ledger.action_log(action_id)):
        match = _FAILED_DELIVERY.match(line["message"])
        if match:
            failures.append((int(match.group(1)), match.group(2), line.get("worker")))
    if not failures:
        return None, None, None
    count, _, worker = failures[0]
    cause = next((error for _, error, _ in failures if not error.startswith(_LEASED)), failures[0][1])
    return count, cause, worker


def _report(reactor: Reactor, body: bytes, reason: str) -> dict[str, Any]:
    report = {"reason": reason, "message": telemetry.redact(body[:2000].decode("utf-8", errors="replace"))}
    report["id"] = reactor.ledger.record_report("poison", report)
    log.error("poison queue message: %s", reason)
    return report
