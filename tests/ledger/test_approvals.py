"""A waiting approval on both ledgers: not claimed until due, listed, decided once, woken by a hint."""

from __future__ import annotations

from datetime import timedelta

from shared.domain.actions import PlannedAction
from shared.domain.outputs import ApproveOutputs
from shared.domain.params import ActionParams
from shared.ledger.base import Ledger
from tests.ledger.support import ManualClock, event, messages, must


def record_approval(ledger: Ledger) -> str:
    planned = PlannedAction("approve", "owners", "m", "1", params=ActionParams(source="mlflow"), rule="gate")
    [action_id] = ledger.record_event(event("1"), [planned], reason=None, max_attempts=3).action_ids
    return action_id


def park(ledger: Ledger, clock: ManualClock, action_id: str, hours: float = 24) -> None:
    """Claim the approval and let it wait (as its executor does) until ``hours`` from now."""
    assert must(ledger.claim("w", 30)).id == action_id
    requested = ApproveOutputs(approval="owners", requested_at="2026-01-01T00:00:00+00:00")
    assert ledger.wait(action_id, "w", requested, clock.now + timedelta(hours=hours))


APPROVED = ApproveOutputs(decision="approve", decided_by="ana", decided_at="2026-01-01T01:00:00+00:00", via="api")


class TestWaitingApprovals:
    def test_a_waiting_approval_is_not_claimed_and_is_listed(self, ledger: Ledger, clock: ManualClock) -> None:
        action_id = record_approval(ledger)
        park(ledger, clock, action_id)
        clock.advance(3600)
        assert ledger.claim("w2", 30) is None
        assert [a.id for a in ledger.list_actions(kind="approve", status="waiting")] == [action_id]
        assert ledger.next_due() == clock.now + timedelta(hours=23)

    def test_a_decision_is_recorded_and_makes_it_due_at_once(self, ledger: Ledger, clock: ManualClock) -> None:
        action_id = record_approval(ledger)
        park(ledger, clock, action_id)
        decided = must(ledger.decide(action_id, APPROVED, "approved by ana via api"))
        assert decided.status == "waiting" and decided.not_before == clock.now
        assert decided.outputs == ApproveOutputs(
            approval="owners",
            requested_at="2026-01-01T00:00:00+00:00",
            decision="approve",
            decided_by="ana",
            decided_at="2026-01-01T01:00:00+00:00",
            via="api",
        )
        claimed = must(ledger.claim("w2", 30))
        assert claimed.id == action_id and claimed.attempts == 1  # a re-check, not a new attempt
        assert "approved by ana via api" in messages(ledger, action_id)

    def test_the_first_decision_stands(self, ledger: Ledger, clock: ManualClock) -> None:
        action_id = record_approval(ledger)
        park(ledger, clock, action_id)
        assert ledger.decide(action_id, APPROVED, "approved by ana via api") is not None
        rejected = ApproveOutputs(decision="reject", decided_by="bo", decided_at="2026-01-01T02:00:00+00:00")
        assert ledger.decide(action_id, rejected, "rejected by bo") is None
        kept = must(ledger.get_action(action_id)).outputs
        assert isinstance(kept, ApproveOutputs) and (kept.decision, kept.decided_by) == ("approve", "ana")
        assert "rejected by bo" not in messages(ledger, action_id)

    def test_only_a_waiting_action_takes_a_decision(self, ledger: Ledger, clock: ManualClock) -> None:
        action_id = record_approval(ledger)
        assert ledger.decide(action_id, APPROVED, "too early") is None  # queued: it has not asked yet
        must(ledger.claim("w", 30))
        assert ledger.decide(action_id, APPROVED, "while running") is None
        assert must(ledger.get_action(action_id)).outputs == ApproveOutputs()

    def test_a_hint_wakes_a_waiting_approval_once(self, ledger: Ledger, clock: ManualClock) -> None:
        action_id = record_approval(ledger)
        park(ledger, clock, action_id)
        assert ledger.wake(action_id, "tag approval.owners set on source mlflow: re-check now")
        assert not ledger.wake(action_id, "again")  # due already
        assert must(ledger.claim("w2", 30)).id == action_id
        assert not ledger.wake(action_id, "running")
        assert messages(ledger, action_id).count("tag approval.owners set on source mlflow: re-check now") == 1
