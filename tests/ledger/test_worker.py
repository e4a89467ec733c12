"""The worker's outcomes as each backend records them: retries, caps, skips, re-checks, replay."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from shared.domain.outputs import RegisterOutputs
from shared.errors import PermanentError, RetryableError
from shared.executors.base import Outcome
from shared.ledger.base import Ledger
from tests.ledger.support import Backend, ManualClock, Scripted, messages, must, record, worker


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
        # a sentence a person reads, its first words the kind a script matches; no Python class name
        assert done[0].error == "permanent error: model version 1 does not exist"

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


class TestRetryAfter:
    """The delay a server asks for (seconds or an HTTP date) sets the next attempt on each backend."""

    @pytest.mark.parametrize("asked", ["seconds", "http-date"])
    def test_the_next_attempt_is_no_earlier_than_the_server_asked(
        self, tmp_path: Path, ledger: Ledger, clock: ManualClock, asked: str
    ) -> None:
        [action_id] = record(ledger).action_ids
        when = format_datetime(clock() + timedelta(seconds=40), usegmt=True)
        retry_after: float | str = 40.0 if asked == "seconds" else when
        w = worker(tmp_path, ledger, Scripted([RetryableError("429 busy", retry_after=retry_after)]), clock=clock)
        failed_at = clock()

        queued = must(w.run_once(action_id))

        assert queued.status == "queued" and queued.not_before is not None
        assert (queued.not_before - failed_at).total_seconds() >= 39  # the backoff alone is 0.01 s
        clock.advance(38)
        assert w.run_once(action_id) is None
        clock.advance(3)
        assert must(w.run_once(action_id)).status == "succeeded"

    def test_a_short_retry_after_keeps_the_longer_backoff(
        self, tmp_path: Path, ledger: Ledger, clock: ManualClock
    ) -> None:
        [action_id] = record(ledger).action_ids
        w = worker(tmp_path, ledger, Scripted([RetryableError("503", retry_after=0.001)]), clock=clock)
        queued = must(w.run_once(action_id))
        assert queued.not_before is not None and (queued.not_before - clock()).total_seconds() >= 0.01
