"""Outcomes of an attempt: retry, wait and re-check, success, failure for good, skip, replay."""

from __future__ import annotations

from datetime import timedelta

from shared.domain.clock import iso
from shared.domain.outputs import RegisterOutputs
from shared.ledger.base import Ledger
from tests.ledger.support import ManualClock, messages, must, record


class TestOutcomes:
    def test_a_failed_attempt_is_retried_not_before_its_retry_time(self, ledger: Ledger, clock: ManualClock) -> None:
        [action_id] = record(ledger).action_ids
        must(ledger.claim("w", 30))
        retry_at = clock.now + timedelta(seconds=10)
        assert ledger.fail(action_id, "w", "503 from registry", retry_at=retry_at)
        queued = must(ledger.get_action(action_id))
        assert queued.status == "queued" and queued.error == "503 from registry" and queued.lease_owner is None
        assert ledger.claim("w", 30) is None and ledger.next_due() == retry_at
        clock.advance(10)
        assert must(ledger.claim("w", 30)).attempts == 2
        assert messages(ledger, action_id)[2] == f"attempt 1 failed: 503 from registry; retry at {iso(retry_at)}"

    def test_a_recheck_of_waiting_work_is_not_a_new_attempt_and_outputs_merge(
        self, ledger: Ledger, clock: ManualClock
    ) -> None:
        [action_id] = record(ledger, max_attempts=1).action_ids
        must(ledger.claim("w", 30))
        recheck_at = clock.now + timedelta(seconds=60)
        assert ledger.wait(action_id, "w", RegisterOutputs(run_id="r42"), recheck_at)
        waiting = must(ledger.get_action(action_id))
        assert (
            waiting.status == "waiting"
            and waiting.outputs == RegisterOutputs(run_id="r42")
            and waiting.lease_owner is None
        )
        assert ledger.claim("w", 30) is None
        clock.advance(60)
        rechecked = must(ledger.claim("w2", 30))
        assert rechecked.attempts == 1 and rechecked.outputs == RegisterOutputs(
            run_id="r42"
        )  # max_attempts=1 still holds
        ledger.complete(action_id, "w2", RegisterOutputs(model_version="7"))
        assert must(ledger.get_action(action_id)).outputs == RegisterOutputs(run_id="r42", model_version="7")
        assert messages(ledger, action_id)[2:] == [
            f"waiting on remote work; re-check at {iso(recheck_at)}",
            "claimed (attempt 1)",
            "succeeded",
        ]

    def test_success_is_timed_and_frees_what_runs_after(self, ledger: Ledger, clock: ManualClock) -> None:
        upstream, downstream = record(ledger, steps=2).action_ids
        assert must(ledger.claim("w", 30)).id == upstream  # the chained one waits
        assert ledger.claim("w", 30) is None
        clock.advance(2.5)
        assert ledger.complete(upstream, "w", RegisterOutputs(model_version="7")) == [downstream]
        done = must(ledger.get_action(upstream))
        assert done.status == "succeeded" and done.duration_ms == 2500 and done.finished_at == clock.now
        assert must(ledger.claim("w", 30)).id == downstream

    def test_a_final_failure_skips_everything_that_runs_after_it(self, ledger: Ledger, clock: ManualClock) -> None:
        first, second, third = record(ledger, steps=3).action_ids
        must(ledger.claim("w", 30))
        clock.advance(1)
        assert ledger.fail(first, "w", "PermanentError: no such version", retry_at=None)
        failed = must(ledger.get_action(first))
        assert failed.status == "failed" and failed.duration_ms == 1000
        assert messages(ledger, first)[-1] == "failed after 1 attempt(s): PermanentError: no such version"
        assert [must(ledger.get_action(i)).status for i in (second, third)] == ["skipped", "skipped"]
        assert messages(ledger, third)[-1] == f"skipped: {second} failed"
        assert ledger.claim("w", 30) is None and ledger.next_due() is None

    def test_replay_requeues_failed_and_skipped_actions_and_succeeded_ones_only_when_asked(
        self, ledger: Ledger
    ) -> None:
        upstream, downstream = record(ledger, steps=2).action_ids
        must(ledger.claim("w", 30))
        ledger.fail(upstream, "w", "registry was down for maintenance", retry_at=None)
        assert ledger.requeue([upstream, downstream], include_succeeded=False) == [upstream, downstream]
        fresh = must(ledger.get_action(upstream))
        assert fresh.status == "queued" and fresh.attempts == 0 and fresh.error is None
        assert messages(ledger, upstream)[-1] == "requeued by replay (was failed)"
        assert messages(ledger, downstream)[-1] == "requeued by replay (was skipped)"
        assert ledger.requeue([upstream], include_succeeded=False) == []  # queued already
        assert must(ledger.claim("w", 30)).attempts == 1
        ledger.complete(upstream, "w", RegisterOutputs())
        assert ledger.requeue([upstream], include_succeeded=False) == []
        assert ledger.requeue([upstream, "act_missing"], include_succeeded=True) == [upstream]

    def test_notes_are_kept_in_the_audit_log_in_order(self, ledger: Ledger, clock: ManualClock) -> None:
        [action_id] = record(ledger).action_ids
        must(ledger.claim("w", 30))
        for step in ("copying 3 files", "copied"):
            clock.advance(0.001)
            ledger.note(action_id, "w", step)
        log = ledger.action_log(action_id)
        assert [line["message"] for line in log[2:]] == ["copying 3 files", "copied"]
        assert log[0]["message"] == f"planned by copy for event {must(ledger.get_action(action_id)).event_id}"
        assert log[0]["worker"] is None and log[-1]["worker"] == "w"


class TestBookkeeping:
    def test_watermarks_and_next_due(self, ledger: Ledger, clock: ManualClock) -> None:
        assert ledger.get_watermark("poller:aml/ws") is None and ledger.next_due() is None
        ledger.set_watermark("poller:aml/ws", "1")
        ledger.set_watermark("poller:aml/ws", "2")
        assert ledger.get_watermark("poller:aml/ws") == "2"
        record(ledger)
        assert ledger.next_due() == clock.now

    def test_reports_are_listed_newest_first(self, ledger: Ledger, clock: ManualClock) -> None:
        first = ledger.record_report("cleanup", {"deleted": 1})
        clock.advance(1)
        second = ledger.record_report("cleanup", {"deleted": 2})
        ledger.record_report("poll", {"seen": 5})
        reports = ledger.list_reports("cleanup")
        assert [(r["id"], r["deleted"]) for r in reports] == [(second, 2), (first, 1)]
        assert len(ledger.list_reports("cleanup", limit=1)) == 1
