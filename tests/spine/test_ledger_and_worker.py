"""Exactly-once bookkeeping: idempotent intake, leases, retries, dependencies (real SQLite)."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from shared.config.loader import load_config
from shared.config.registries import MlflowRegistry
from shared.domain.actions import PlannedAction
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent
from shared.errors import PermanentError, RetryableError
from shared.executors.base import ActionContext, Outcome
from shared.executors.registry import ExecutorRegistry
from shared.ledger.sqlite import SqliteLedger
from shared.service.dispatch import LocalDispatcher
from shared.service.worker import Worker
from tests.support import write_config

CONFIG = """
registries:
  a: {kind: mlflow, tracking_uri: "sqlite:///unused.db"}
  b: {kind: mlflow, tracking_uri: "sqlite:///unused.db"}
worker: {lease_seconds: 0.5, max_attempts: 3, backoff_base_seconds: 0.01, poll_interval_seconds: 0.05}
"""


def event(version: str = "1") -> ModelEvent:
    return ModelEvent(
        source="mlflow",
        kind=MODEL_VERSION_CREATED,
        source_type="model_version.created",
        model_name="m",
        model_version=version,
    )


def plan(version: str = "1", chained: bool = False) -> list[PlannedAction]:
    first = PlannedAction("register", "a", "m", version, params={"source_tracking_uri": "x"})
    if not chained:
        return [first]
    return [first, PlannedAction("register", "b", "m", version, params={"source_tracking_uri": "x"}, after_index=0)]


class Scripted:
    """An executor port implementation that plays a script of outcomes (the port, not MLflow)."""

    def __init__(self, script: list[object]) -> None:
        self.script = list(script)
        self.calls: list[ActionContext] = []

    def execute(self, ctx: ActionContext) -> Outcome:
        self.calls.append(ctx)
        step = self.script.pop(0) if self.script else Outcome.done(ok=True)
        if isinstance(step, Exception):
            raise step
        assert isinstance(step, Outcome)
        return step


def worker(tmp_path: Path, ledger: SqliteLedger, executor: Scripted, name: str = "w1") -> Worker:
    config = load_config(write_config(tmp_path / "c.yaml", CONFIG), env={})
    registry = ExecutorRegistry({("register", MlflowRegistry): lambda: executor})
    return Worker(ledger, config, tmp_path, LocalDispatcher(), registry, worker_id=name)


def _record_in_process(path: str, barrier: multiprocessing.synchronize.Barrier, out: multiprocessing.Queue) -> None:
    ledger = SqliteLedger(path)
    barrier.wait()
    result = ledger.record_event(event("9"), plan("9"), reason=None, max_attempts=3)
    out.put((result.event_id, result.duplicate, tuple(result.action_ids)))


class TestIntake:
    def test_concurrent_duplicates_across_processes_record_one_event_and_one_action(self, tmp_path: Path) -> None:
        path = str(tmp_path / "ledger.db")
        SqliteLedger(path)
        ctx = multiprocessing.get_context("spawn")
        barrier, out = ctx.Barrier(6), ctx.Queue()
        procs = [ctx.Process(target=_record_in_process, args=(path, barrier, out)) for _ in range(6)]
        for p in procs:
            p.start()
        results = [out.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
        assert len({r[0] for r in results}) == 1
        assert sorted(r[1] for r in results) == [False] + [True] * 5
        assert len({r[2] for r in results}) == 1
        ledger = SqliteLedger(path)
        assert len(ledger.list_actions()) == 1
        assert ledger.list_events()[0]["deliveries"] == 6

    def test_an_action_planned_by_two_events_runs_once_and_is_linked_to_both(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
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


class TestLeases:
    def test_an_expired_lease_makes_the_action_runnable_and_fences_the_old_owner(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
        [action_id] = ledger.record_event(event(), plan(), reason=None, max_attempts=3).action_ids
        assert ledger.claim("crashed", 0.2).id == action_id
        assert ledger.claim("other", 0.2) is None  # leased
        time.sleep(0.3)
        reclaimed = ledger.claim("other", 30)
        assert reclaimed.id == action_id and reclaimed.attempts == 2
        assert ledger.complete(action_id, "crashed", {"late": True}) == []  # the old owner is fenced off
        ledger.complete(action_id, "other", {"ok": True})
        done = ledger.get_action(action_id)
        assert done.status == "succeeded" and done.outputs == {"ok": True}
        assert any("expired" in line["message"] for line in ledger.action_log(action_id))

    def test_an_action_that_kills_every_worker_fails_after_the_last_attempt(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
        ids = ledger.record_event(event(), plan(chained=True), reason=None, max_attempts=2).action_ids
        assert ledger.claim("first", 0.1).id == ids[0]
        time.sleep(0.15)
        assert ledger.claim("second", 0.1).attempts == 2  # the last allowed attempt
        time.sleep(0.15)
        assert ledger.claim("third", 30) is None  # no third worker is sacrificed
        failed = ledger.get_action(ids[0])
        assert failed.status == "failed" and "lease expired on attempt 2" in failed.error
        assert ledger.get_action(ids[1]).status == "skipped"


class TestWorker:
    def test_transient_errors_are_retried_with_backoff_then_succeed(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
        ids = ledger.record_event(event(), plan(), reason=None, max_attempts=3).action_ids
        executor = Scripted([RetryableError("503 from registry"), Outcome.done(model_version="4")])
        [done] = worker(tmp_path, ledger, executor).run_until_done(ids, timeout=30)
        assert done.status == "succeeded" and done.attempts == 2 and done.outputs == {"model_version": "4"}
        assert any("503 from registry" in line["message"] for line in ledger.action_log(done.id))

    def test_attempts_are_capped_and_the_error_is_kept(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
        ids = ledger.record_event(event(), plan(), reason=None, max_attempts=3).action_ids
        executor = Scripted([RetryableError("timeout")] * 5)
        [done] = worker(tmp_path, ledger, executor).run_until_done(ids, timeout=30)
        assert done.status == "failed" and done.attempts == 3 and "timeout" in done.error

    def test_permanent_errors_fail_at_once_and_skip_what_runs_after(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
        ids = ledger.record_event(event(), plan(chained=True), reason=None, max_attempts=3).action_ids
        executor = Scripted([PermanentError("model version 1 does not exist")])
        done = worker(tmp_path, ledger, executor).run_until_done(ids, timeout=30)
        assert [a.status for a in done] == ["failed", "skipped"]
        assert done[0].attempts == 1 and len(executor.calls) == 1

    def test_a_dependent_action_runs_after_and_sees_upstream_outputs(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
        ids = ledger.record_event(event(), plan(chained=True), reason=None, max_attempts=3).action_ids
        executor = Scripted(
            [Outcome.done(model_uri="models:/m/7", model_name="m", model_version="7", tracking_uri="t")]
        )
        worker(tmp_path, ledger, executor).run_until_done(ids, timeout=30)
        assert [c.action.id for c in executor.calls] == ids
        assert executor.calls[1].upstream["model_uri"] == "models:/m/7"
        assert executor.calls[1].model().uri == "models:/m/7"

    def test_waiting_outcomes_are_rechecked_without_counting_attempts(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
        ids = ledger.record_event(event(), plan(), reason=None, max_attempts=1).action_ids
        executor = Scripted([Outcome.waiting(0.05, run_id=42), Outcome.waiting(0.05), Outcome.done(state="SUCCESS")])
        [done] = worker(tmp_path, ledger, executor).run_until_done(ids, timeout=30)
        assert done.status == "succeeded" and done.attempts == 1
        assert done.outputs == {"run_id": 42, "state": "SUCCESS"}
        assert executor.calls[1].action.outputs == {"run_id": 42}

    def test_replay_requeues_failed_actions(self, tmp_path: Path) -> None:
        ledger = SqliteLedger(tmp_path / "l.db")
        ids = ledger.record_event(event(), plan(), reason=None, max_attempts=1).action_ids
        executor = Scripted([PermanentError("registry was down for maintenance")])
        w = worker(tmp_path, ledger, executor)
        assert w.run_until_done(ids, timeout=30)[0].status == "failed"
        assert ledger.requeue(ids, include_succeeded=False) == ids
        assert w.run_until_done(ids, timeout=30)[0].status == "succeeded"
        assert ledger.requeue(ids, include_succeeded=False) == []
