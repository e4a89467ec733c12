"""Leases: expiry and reclaim, fencing of a late writer, racing claims, and crash loops ending."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.domain.outputs import RegisterOutputs
from shared.ledger.base import Ledger
from tests.ledger.support import ManualClock, messages, must, record, together


class TestLeases:
    def test_an_expired_lease_makes_the_action_runnable_and_fences_the_old_owner(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        [action_id] = record(ledger).action_ids
        assert must(ledger.claim("crashed", 30)).id == action_id
        assert ledger.claim("other", 30) is None  # leased
        clock.advance(31)
        reclaimed = must(ledger.claim("other", 30))
        assert reclaimed.id == action_id and reclaimed.attempts == 2 and reclaimed.lease_owner == "other"
        assert not ledger.renew(action_id, "crashed", 30)  # the old owner is fenced off
        assert ledger.complete(action_id, "crashed", RegisterOutputs(model_version="late")) == []
        assert not ledger.fail(action_id, "crashed", "late", retry_at=None)
        assert not ledger.wait(action_id, "crashed", RegisterOutputs(model_version="late"), clock.now)
        ledger.complete(action_id, "other", RegisterOutputs(model_version="1"))
        done = must(ledger.get_action(action_id))
        assert done.status == "succeeded" and done.outputs == RegisterOutputs(model_version="1") and done.attempts == 2
        assert messages(ledger, action_id)[1:] == [
            "claimed (attempt 1)",
            "lease of crashed expired; reclaimed",
            "claimed (attempt 2)",
            "succeeded",
        ]

    def test_a_renewed_lease_is_not_reclaimed(self, ledger: Ledger, clock: ManualClock) -> None:
        [action_id] = record(ledger).action_ids
        must(ledger.claim("busy", 30))
        clock.advance(20)
        assert ledger.renew(action_id, "busy", 30)
        clock.advance(20)  # past the first lease, within the renewed one
        assert ledger.claim("other", 30) is None and ledger.claim("other", 30, action_id=action_id) is None
        assert ledger.next_due() == clock.now + timedelta(seconds=10)
        clock.advance(11)
        assert must(ledger.claim("other", 30)).lease_owner == "other"

    @pytest.mark.parametrize("by_id", [True, False], ids=["by-id", "any"])
    def test_racing_claims_of_one_action_have_one_winner(self, ledger: Ledger, by_id: bool) -> None:
        [action_id] = record(ledger, "4").action_ids
        claims = together(5, lambda i: ledger.claim(f"w{i}", 60, action_id=action_id if by_id else None))
        winners = [c for c in claims if c is not None]
        assert len(winners) == 1
        stored = must(ledger.get_action(action_id))
        assert stored.lease_owner == winners[0].lease_owner and stored.attempts == 1


class TestCrashLoops:
    def test_an_action_that_kills_every_worker_fails_after_the_last_attempt(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        upstream, downstream = record(ledger, "8", steps=2, max_attempts=2).action_ids
        assert must(ledger.claim("first", 30)).attempts == 1
        clock.advance(31)
        assert must(ledger.claim("second", 30)).attempts == 2  # the last allowed attempt
        clock.advance(31)
        assert ledger.claim("third", 30) is None  # no third worker is sacrificed
        failed = must(ledger.get_action(upstream))
        assert failed.status == "failed" and failed.error is not None
        assert failed.error.startswith("the lease expired on attempt 2, the last allowed")
        assert messages(ledger, upstream)[-1] == f"failed: {failed.error} (last owner second)"
        skipped = must(ledger.get_action(downstream))
        assert skipped.status == "skipped" and skipped.error == f"not run: {upstream} (which it runs after) failed"
        assert messages(ledger, downstream)[-1] == f"skipped: {upstream} failed"

    def test_a_claim_sweeps_every_crash_looped_action_before_claiming_a_runnable_one(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        looping, its_dependent = record(ledger, "1", steps=2, max_attempts=1).action_ids
        [retried] = record(ledger, "2", max_attempts=2).action_ids
        must(ledger.claim("w", 30, action_id=retried))
        ledger.fail(retried, "w", "503", retry_at=clock.now + timedelta(seconds=1))
        clock.advance(2)
        must(ledger.claim("w", 30, action_id=retried))  # its last attempt; deferred once, so claimed last
        must(ledger.claim("w", 30, action_id=looping))
        clock.advance(31)
        [fresh] = record(ledger, "3").action_ids
        assert must(ledger.claim("next", 30)).id == fresh
        statuses = [must(ledger.get_action(i)).status for i in (looping, its_dependent, retried)]
        assert statuses == ["failed", "skipped", "failed"]

    def test_a_claim_by_id_ends_only_that_crash_loop(self, ledger: Ledger, clock: ManualClock) -> None:
        [named] = record(ledger, "1", max_attempts=1).action_ids
        [other] = record(ledger, "2", max_attempts=1).action_ids
        must(ledger.claim("w", 30, action_id=named))
        must(ledger.claim("w", 30, action_id=other))
        clock.advance(31)
        assert ledger.claim("next", 30, action_id=named) is None
        assert must(ledger.get_action(named)).status == "failed"
        assert must(ledger.get_action(other)).status == "running"  # left to the next claim
        assert ledger.claim("next", 30) is None
        assert must(ledger.get_action(other)).status == "failed"
