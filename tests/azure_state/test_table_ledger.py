"""The ledger's guarantees on Azure Table Storage (a real Azurite): the SQLite suite's cases, plus
the races and limits that only a remote store has."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.azure_storage import StorageAccount
from shared.domain.events import ModelEvent
from shared.errors import PermanentError, RetryableError
from shared.executors.base import Outcome
from shared.ledger.azure_tables import TableLedger
from tests.spine.test_ledger_and_worker import Scripted, event, plan, worker


def _record_in_process(connection: str, table: str, barrier: Any, out: Any) -> None:
    ledger = TableLedger(StorageAccount(connection_string=connection).table_client(table))
    barrier.wait()
    result = ledger.record_event(event("9"), plan("9", chained=True), reason=None, max_attempts=3)
    out.put((result.event_id, result.duplicate, tuple(result.action_ids), tuple(result.dispatch)))


class TestIntake:
    def test_concurrent_duplicates_across_processes_record_one_event_and_its_actions_once(
        self, ledger: TableLedger, account: StorageAccount, names: dict[str, str]
    ) -> None:
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(4), ctx.Queue()
        args = (account.connection_string, names["table"], barrier, out)
        procs = [ctx.Process(target=_record_in_process, args=args) for _ in range(4)]
        for p in procs:
            p.start()
        results = [out.get(timeout=180) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert len({r[0] for r in results}) == 1
        assert sorted(r[1] for r in results) == [False, True, True, True]
        assert len({r[2] for r in results}) == 1 and len(results[0][2]) == 2
        # the first action is dispatched (by whoever created it, maybe by a helping duplicate too);
        # the chained one waits for it
        dispatched = [d for r in results for d in r[3]]
        assert dispatched and set(dispatched) == {results[0][2][0]}
        assert len(ledger.list_actions()) == 2
        assert ledger.list_events()[0]["deliveries"] == 4

    def test_concurrent_duplicates_across_threads(self, ledger: TableLedger) -> None:
        results: list[Any] = []
        barrier = threading.Barrier(6)

        def record() -> None:
            barrier.wait()
            results.append(ledger.record_event(event("5"), plan("5"), reason=None, max_attempts=3))

        threads = [threading.Thread(target=record) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len({r.event_id for r in results}) == 1 and [r.duplicate for r in results].count(False) == 1
        assert len({tuple(r.action_ids) for r in results}) == 1
        assert ledger.get_event(results[0].event_id)["deliveries"] == 6

    def test_an_action_planned_by_two_events_runs_once_and_is_linked_to_both(self, ledger: TableLedger) -> None:
        first = ledger.record_event(event("1"), plan("1"), reason=None, max_attempts=3)
        other = ModelEvent(
            source="mlflow",
            kind="model_version.alias_set",
            source_type="x",
            model_name="m",
            model_version="1",
            alias="champion",
        )
        second = ledger.record_event(other, plan("1"), reason=None, max_attempts=3)
        assert not second.duplicate and second.action_ids == first.action_ids and second.dispatch == []
        assert [a["id"] for a in ledger.get_event(second.event_id)["actions"]] == first.action_ids
        assert ledger.find_action("register:a:m:1").id == first.action_ids[0]

    def test_a_redelivery_dispatches_again_what_never_started(self, ledger: TableLedger) -> None:
        """The first answer may have failed after recording (a queue send error): the sender's
        redelivery must bring the action to a worker, since no poller runs in Azure."""
        [action_id] = ledger.record_event(event("6"), plan("6"), reason=None, max_attempts=3).action_ids
        assert ledger.record_event(event("6"), plan("6"), reason=None, max_attempts=3).dispatch == [action_id]
        ledger.claim("w", 60, action_id=action_id)
        assert ledger.record_event(event("6"), plan("6"), reason=None, max_attempts=3).dispatch == []

    def test_an_event_without_actions_is_recorded_ignored(self, ledger: TableLedger) -> None:
        result = ledger.record_event(event("2"), [], reason="no rule matches", max_attempts=3)
        again = ledger.record_event(event("2"), [], reason="no rule matches", max_attempts=3)
        assert result.status == "ignored" and again.duplicate and again.reason == "no rule matches"
        ledger.add_actions(result.event_id, plan("2"), max_attempts=3)
        stored = ledger.get_event(result.event_id)
        assert stored["status"] == "accepted" and stored["reason"] is None and len(stored["actions"]) == 1

    def test_a_recording_interrupted_after_the_dedupe_claim_is_finished_by_the_redelivery(
        self, account: StorageAccount, names: dict[str, str]
    ) -> None:
        class CrashBeforeLinking:
            """The real Azurite client; the first event update dies like a killed host."""

            def __init__(self, client: Any) -> None:
                self.client, self.crashed = client, False

            def __getattr__(self, name: str) -> Any:
                return getattr(self.client, name)

            def update_entity(self, entity: Any, **kwargs: Any) -> Any:
                if not self.crashed and entity["PartitionKey"] == "event":
                    self.crashed = True
                    raise ConnectionError("host killed")
                return self.client.update_entity(entity, **kwargs)

        crashing = TableLedger(CrashBeforeLinking(account.table_client(names["table"])))
        with pytest.raises(ConnectionError):
            crashing.record_event(event("3"), plan("3"), reason=None, max_attempts=3)
        ledger = TableLedger(account.table_client(names["table"]))
        redelivered = ledger.record_event(event("3"), plan("3"), reason=None, max_attempts=3)
        assert redelivered.duplicate and len(redelivered.action_ids) == 1
        assert redelivered.dispatch == redelivered.action_ids  # the crashed writer never dispatched it
        assert ledger.get_event(redelivered.event_id)["actions"][0]["id"] == redelivered.action_ids[0]


class TestLeases:
    def test_an_expired_lease_makes_the_action_runnable_and_fences_the_old_owner(self, ledger: TableLedger) -> None:
        [action_id] = ledger.record_event(event(), plan(), reason=None, max_attempts=3).action_ids
        assert ledger.claim("crashed", 0.5).id == action_id
        assert ledger.claim("other", 0.5) is None  # leased
        time.sleep(0.6)
        reclaimed = ledger.claim("other", 30)
        assert reclaimed.id == action_id and reclaimed.attempts == 2
        assert not ledger.renew(action_id, "crashed", 30)
        assert ledger.complete(action_id, "crashed", {"late": True}) == []  # the old owner is fenced off
        assert not ledger.fail(action_id, "crashed", "late", retry_at=None)
        ledger.complete(action_id, "other", {"ok": True})
        done = ledger.get_action(action_id)
        assert done.status == "succeeded" and done.outputs == {"ok": True}
        assert any("expired" in line["message"] for line in ledger.action_log(action_id))

    def test_an_action_that_kills_every_worker_fails_after_the_last_attempt(self, ledger: TableLedger) -> None:
        ids = ledger.record_event(event("8"), plan("8", chained=True), reason=None, max_attempts=2).action_ids
        assert ledger.claim("first", 0.3, action_id=ids[0]).attempts == 1
        time.sleep(0.4)
        assert ledger.claim("second", 0.3, action_id=ids[0]).attempts == 2  # the last allowed attempt
        time.sleep(0.4)
        assert ledger.claim("third", 30, action_id=ids[0]) is None  # no third worker is sacrificed
        failed = ledger.get_action(ids[0])
        assert failed.status == "failed" and "lease expired on attempt 2" in failed.error
        assert ledger.get_action(ids[1]).status == "skipped"

    def test_racing_claims_of_one_action_have_one_winner(self, ledger: TableLedger) -> None:
        [action_id] = ledger.record_event(event("4"), plan("4"), reason=None, max_attempts=3).action_ids
        barrier = threading.Barrier(5)
        winners: list[str] = []

        def claim(name: str) -> None:
            barrier.wait()
            if ledger.claim(name, 60, action_id=action_id) is not None:
                winners.append(name)

        threads = [threading.Thread(target=claim, args=(f"w{i}",)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(winners) == 1
        assert ledger.get_action(action_id).lease_owner == winners[0] and ledger.get_action(action_id).attempts == 1


class TestWorker:
    def test_transient_errors_are_retried_with_backoff_then_succeed(self, tmp_path: Path, ledger: TableLedger) -> None:
        ids = ledger.record_event(event(), plan(), reason=None, max_attempts=3).action_ids
        executor = Scripted([RetryableError("503 from registry"), Outcome.done(model_version="4")])
        [done] = worker(tmp_path, ledger, executor).run_until_done(ids, timeout=60)
        assert done.status == "succeeded" and done.attempts == 2 and done.outputs == {"model_version": "4"}
        assert any("503 from registry" in line["message"] for line in ledger.action_log(done.id))

    def test_attempts_are_capped_and_the_error_is_kept(self, tmp_path: Path, ledger: TableLedger) -> None:
        ids = ledger.record_event(event(), plan(), reason=None, max_attempts=3).action_ids
        [done] = worker(tmp_path, ledger, Scripted([RetryableError("timeout")] * 5)).run_until_done(ids, timeout=60)
        assert done.status == "failed" and done.attempts == 3 and "timeout" in done.error

    def test_permanent_errors_fail_at_once_and_skip_what_runs_after(self, tmp_path: Path, ledger: TableLedger) -> None:
        ids = ledger.record_event(event(), plan(chained=True), reason=None, max_attempts=3).action_ids
        executor = Scripted([PermanentError("model version 1 does not exist")])
        done = worker(tmp_path, ledger, executor).run_until_done(ids, timeout=60)
        assert [a.status for a in done] == ["failed", "skipped"]
        assert done[0].attempts == 1 and len(executor.calls) == 1

    def test_a_dependent_action_runs_after_and_sees_upstream_outputs(self, tmp_path: Path, ledger: TableLedger) -> None:
        ids = ledger.record_event(event(), plan(chained=True), reason=None, max_attempts=3).action_ids
        executor = Scripted(
            [Outcome.done(model_uri="models:/m/7", model_name="m", model_version="7", tracking_uri="t")]
        )
        worker(tmp_path, ledger, executor).run_until_done(ids, timeout=60)
        assert [c.action.id for c in executor.calls] == ids
        assert executor.calls[1].upstream["model_uri"] == "models:/m/7"

    def test_waiting_outcomes_are_rechecked_without_counting_attempts(
        self, tmp_path: Path, ledger: TableLedger
    ) -> None:
        ids = ledger.record_event(event(), plan(), reason=None, max_attempts=1).action_ids
        executor = Scripted([Outcome.waiting(0.05, run_id=42), Outcome.waiting(0.05), Outcome.done(state="SUCCESS")])
        [done] = worker(tmp_path, ledger, executor).run_until_done(ids, timeout=60)
        assert done.status == "succeeded" and done.attempts == 1
        assert done.outputs == {"run_id": 42, "state": "SUCCESS"}
        assert executor.calls[1].action.outputs == {"run_id": 42}

    def test_replay_requeues_failed_actions(self, tmp_path: Path, ledger: TableLedger) -> None:
        ids = ledger.record_event(event(), plan(), reason=None, max_attempts=1).action_ids
        w = worker(tmp_path, ledger, Scripted([PermanentError("registry was down for maintenance")]))
        assert w.run_until_done(ids, timeout=60)[0].status == "failed"
        assert ledger.requeue(ids, include_succeeded=False) == ids
        assert w.run_until_done(ids, timeout=60)[0].status == "succeeded"
        assert ledger.requeue(ids, include_succeeded=False) == []


class TestTableLayout:
    def test_listing_is_newest_first_and_filters(self, ledger: TableLedger) -> None:
        for version in ("1", "2", "3"):
            ledger.record_event(event(version), plan(version), reason=None, max_attempts=3)
        assert [a.model_version for a in ledger.list_actions()] == ["3", "2", "1"]
        assert [a.model_version for a in ledger.list_actions(limit=1, offset=1)] == ["2"]
        assert [a.model_version for a in ledger.list_actions(version="2", model="m", kind="register")] == ["2"]
        assert ledger.list_actions(status="failed") == []
        assert [e["model_version"] for e in ledger.list_events(source="mlflow")] == ["3", "2", "1"]
        assert ledger.list_events(source="databricks") == []
        assert ledger.stats()["actions"] == {"queued": 3}

    def test_large_values_are_split_and_oversized_ones_truncated_with_a_note(self, ledger: TableLedger) -> None:
        big_event = ModelEvent(
            source="mlflow",
            kind="model_version.created",
            source_type="x",
            model_name="m",
            model_version="8",
            raw={"blob": "x" * 300_000},
        )
        result = ledger.record_event(big_event, plan("8"), reason=None, max_attempts=3)
        assert "_truncated" in ledger.event_payload(result.event_id)["raw"]  # the event itself is kept
        [action_id] = result.action_ids
        ledger.claim("w", 60, action_id=action_id)
        ledger.complete(action_id, "w", {"report": "é" * 40_000})  # > 64 KiB in UTF-16: split over properties
        assert ledger.get_action(action_id).outputs["report"] == "é" * 40_000
        report_id = ledger.record_report("cleanup", {"groups": ["g" * 100] * 2000})
        assert ledger.list_reports("cleanup")[0]["id"] == report_id
        assert len(ledger.list_reports("cleanup")[0]["groups"]) == 2000

    def test_watermarks_and_next_due(self, ledger: TableLedger) -> None:
        assert ledger.get_watermark("poller:aml/ws") is None and ledger.next_due() is None
        ledger.set_watermark("poller:aml/ws", "1")
        ledger.set_watermark("poller:aml/ws", "2")
        assert ledger.get_watermark("poller:aml/ws") == "2"
        ledger.record_event(event(), plan(), reason=None, max_attempts=3)
        assert ledger.next_due() is not None
