"""Intake: one event per dedupe key and one action per action key, whatever the concurrency."""

from __future__ import annotations

import multiprocessing
from typing import Any

from shared.domain.outputs import RegisterOutputs
from shared.ledger.base import Ledger
from tests.ledger.support import Backend, ManualClock, event, must, plan, record, together

PROCESSES, THREADS = 4, 3
Recorded = tuple[str, bool, tuple[str, ...], tuple[str, ...]]


def _record_in_process(backend: Backend, barrier: Any, out: Any) -> None:
    """One sender's host: a few threads deliver the same event at the same instant as the others."""
    ledger = backend.open()

    def deliver(_: int) -> Recorded:
        barrier.wait()
        result = ledger.record_event(event("9"), plan("9", steps=2), reason=None, max_attempts=3)
        return result.event_id, result.duplicate, tuple(result.action_ids), tuple(result.dispatch)

    out.put(together(THREADS, deliver))


class TestIntake:
    def test_concurrent_duplicates_from_processes_and_threads_record_one_event_and_one_action_per_key(
        self, backend: Backend
    ) -> None:
        backend.open().close()  # the file or table exists before the race
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(PROCESSES * THREADS), ctx.Queue()
        procs = [ctx.Process(target=_record_in_process, args=(backend, barrier, out)) for _ in range(PROCESSES)]
        for proc in procs:
            proc.start()
        results: list[Recorded] = [r for _ in procs for r in out.get(timeout=180)]
        for proc in procs:
            proc.join(timeout=60)
        assert len({r[0] for r in results}) == 1
        assert sorted(r[1] for r in results) == [False] + [True] * (PROCESSES * THREADS - 1)
        assert len({r[2] for r in results}) == 1 and len(results[0][2]) == 2
        # the first action is dispatched (by its creator, and by duplicates: it never started); the
        # chained one waits for it
        assert {d for r in results for d in r[3]} == {results[0][2][0]}
        ledger = backend.open()
        assert len(ledger.list_actions()) == 2
        assert [e["deliveries"] for e in ledger.list_events()] == [PROCESSES * THREADS]

    def test_concurrent_duplicates_across_threads_count_every_delivery(self, ledger: Ledger) -> None:
        results = together(6, lambda _: record(ledger, "5"))
        assert len({r.event_id for r in results}) == 1 and [r.duplicate for r in results].count(False) == 1
        assert len({tuple(r.action_ids) for r in results}) == 1
        assert must_event(ledger, results[0].event_id)["deliveries"] == 6

    def test_an_action_planned_by_two_events_runs_once_and_is_linked_to_both(self, ledger: Ledger) -> None:
        first = record(ledger, "1")
        other = event("1", kind="model_version.alias_set", alias="champion")
        second = ledger.record_event(other, plan("1"), reason=None, max_attempts=3)
        assert not second.duplicate and second.action_ids == first.action_ids and second.dispatch == []
        assert [a["id"] for a in must_event(ledger, second.event_id)["actions"]] == first.action_ids
        assert must(ledger.find_action("register:a:m:1")).id == first.action_ids[0]

    def test_a_redelivery_dispatches_again_what_never_started(self, ledger: Ledger) -> None:
        """The first answer may have failed after recording (a queue send error): the sender's
        redelivery must bring the actions to a worker, since no poller runs in Azure."""
        first = record(ledger, "6", steps=2)
        upstream, downstream = first.action_ids
        assert first.dispatch == [upstream]
        assert record(ledger, "6", steps=2).dispatch == [upstream]  # the chained one still waits
        must(ledger.claim("w", 60, action_id=upstream))
        assert record(ledger, "6", steps=2).dispatch == []  # started: the lease decides
        ledger.complete(upstream, "w", RegisterOutputs())
        assert record(ledger, "6", steps=2).dispatch == [downstream]
        assert must_event(ledger, first.event_id)["deliveries"] == 4

    def test_an_event_without_actions_is_recorded_ignored_until_actions_are_added(self, ledger: Ledger) -> None:
        result = ledger.record_event(event("2"), [], reason="no rule matches", max_attempts=3)
        again = ledger.record_event(event("2"), [], reason="no rule matches", max_attempts=3)
        assert result.status == "ignored" and result.action_ids == [] and result.dispatch == []
        assert again.duplicate and again.status == "ignored" and again.reason == "no rule matches"
        assert ledger.add_actions(result.event_id, plan("2", steps=2), max_attempts=3) != []
        stored = must_event(ledger, result.event_id)
        assert stored["status"] == "accepted" and stored["reason"] is None and len(stored["actions"]) == 2

    def test_listing_is_newest_first_and_filters(self, ledger: Ledger, clock: ManualClock) -> None:
        for version in ("1", "2", "3"):
            record(ledger, version)
            clock.advance(1)
        assert [a.model_version for a in ledger.list_actions()] == ["3", "2", "1"]
        assert [a.model_version for a in ledger.list_actions(limit=1, offset=1)] == ["2"]
        assert [a.model_version for a in ledger.list_actions(version="2", model="m", kind="register")] == ["2"]
        assert ledger.list_actions(status="failed") == []
        assert [e["model_version"] for e in ledger.list_events(source="mlflow")] == ["3", "2", "1"]
        assert [e["model_version"] for e in ledger.list_events(status="accepted", limit=2)] == ["3", "2"]
        assert ledger.list_events(source="databricks") == []
        assert ledger.stats()["actions"] == {"queued": 3} and ledger.stats()["events"] == {"accepted": 3}

    def test_the_event_is_kept_for_replay(self, ledger: Ledger) -> None:
        result = record(ledger, "4")
        payload = ledger.event_payload(result.event_id)
        assert payload is not None and payload["model_version"] == "4" and payload["kind"] == "model_version.created"
        assert ledger.get_event("evt_missing") is None and ledger.event_payload("evt_missing") is None


def must_event(ledger: Ledger, event_id: str) -> dict[str, Any]:
    found = ledger.get_event(event_id)
    assert found is not None
    return found
