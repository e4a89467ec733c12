"""The worker's outcomes as each backend records them: retries, caps, skips, re-checks, replay."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.domain.outputs import RegisterOutputs
from shared.errors import PermanentError, RetryableError
from shared.executors.base import Outcome
from shared.ledger.base import Ledger
from tests.ledger.support import Backend, Scripted, messages, record, worker


@pytest.fixture
def live(backend: Backend) -> Iterator[Ledger]:
    """A ledger on the wall clock: the worker's retry and re-check times are real ones."""
    opened = backend.open()
    yield opened
    opened.close()


class TestWorker:
    def test_transient_errors_are_retried_with_backoff_then_succeed(self, tmp_path: Path, live: Ledger) -> None:
        ids = record(live).action_ids
        executor = Scripted([RetryableError("503 from registry"), Outcome.done(RegisterOutputs(model_version="4"))])
        [done] = worker(tmp_path, live, executor).run_until_done(ids, timeout=60)
        assert done.status == "succeeded" and done.attempts == 2 and done.outputs == RegisterOutputs(model_version="4")
        assert any("503 from registry" in message for message in messages(live, done.id))

    def test_attempts_are_capped_and_the_error_is_kept(self, tmp_path: Path, live: Ledger) -> None:
        ids = record(live).action_ids
        [done] = worker(tmp_path, live, Scripted([RetryableError("timeout")] * 5)).run_until_done(ids, timeout=60)
        assert done.status == "failed" and done.attempts == 3 and done.error is not None and "timeout" in done.error

    def test_permanent_errors_fail_at_once_and_skip_what_runs_after(self, tmp_path: Path, live: Ledger) -> None:
        ids = record(live, steps=2).action_ids
        executor = Scripted([PermanentError("model version 1 does not exist")])
        done = worker(tmp_path, live, executor).run_until_done(ids, timeout=60)
        assert [a.status for a in done] == ["failed", "skipped"]
        assert done[0].attempts == 1 and len(executor.calls) == 1

    def test_a_dependent_action_runs_after_and_sees_upstream_outputs(self, tmp_path: Path, live: Ledger) -> None:
        ids = record(live, steps=2).action_ids
        executor = Scripted(
            [
                Outcome.done(
                    RegisterOutputs(model_uri="models:/m/7", model_name="m", model_version="7", tracking_uri="t")
                )
            ]
        )
        worker(tmp_path, live, executor).run_until_done(ids, timeout=60)
        assert [c.action.id for c in executor.calls] == ids
        assert executor.calls[1].upstream[0].to_dict()["model_uri"] == "models:/m/7"
        assert executor.calls[1].model().uri == "models:/m/7"

    def test_waiting_outcomes_are_rechecked_without_counting_attempts(self, tmp_path: Path, live: Ledger) -> None:
        ids = record(live, max_attempts=1).action_ids
        executor = Scripted(
            [
                Outcome.waiting(0.05, RegisterOutputs(run_id="r42")),
                Outcome.waiting(0.05, RegisterOutputs()),
                Outcome.done(RegisterOutputs(reused=True)),
            ]
        )
        [done] = worker(tmp_path, live, executor).run_until_done(ids, timeout=60)
        assert done.status == "succeeded" and done.attempts == 1
        assert done.outputs == RegisterOutputs(run_id="r42", reused=True)
        assert executor.calls[1].action.outputs == RegisterOutputs(run_id="r42")

    def test_replay_requeues_failed_actions(self, tmp_path: Path, live: Ledger) -> None:
        ids = record(live, max_attempts=1).action_ids
        w = worker(tmp_path, live, Scripted([PermanentError("registry was down for maintenance")]))
        assert w.run_until_done(ids, timeout=60)[0].status == "failed"
        assert live.requeue(ids, include_succeeded=False) == ids
        assert w.run_until_done(ids, timeout=60)[0].status == "succeeded"
        assert live.requeue(ids, include_succeeded=False) == []
