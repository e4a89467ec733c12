"""Attempts and the timeline read back from what a real SQLite ledger wrote: a retried failure, a
lease that expired, a success (the browser test shows one attempt of each action; this shows many)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.api.ui.attempts import attempts_from_log
from shared.api.ui.events import action_view, lane_of
from shared.api.ui.timeline import timeline_svg
from shared.domain.actions import PlannedAction
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent
from shared.domain.outputs import RegisterOutputs
from shared.ledger.sqlite import SqliteLedger


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_a_retried_then_reclaimed_then_successful_action(tmp_path: Path) -> None:
    clock = Clock()
    ledger = SqliteLedger(str(tmp_path / "ledger.db"), clock=clock)
    event = ModelEvent("mlflow", MODEL_VERSION_CREATED, "model_version.created", "churn", "3", occurred_at=clock.now)
    plan = [
        PlannedAction("register", "aml", "churn", "3", rule="copy"),
        PlannedAction("deploy", "local", "churn", "3", rule="copy", after_index=0),
    ]
    intake = ledger.record_event(event, plan, reason=None, max_attempts=5)
    register = intake.action_ids[0]

    clock.advance(1)
    assert ledger.claim("w1", 30, action_id=register) is not None
    clock.advance(2)
    ledger.fail(register, "w1", "RetryableError: registry busy <b>", retry_at=clock.now)
    clock.advance(1)
    assert ledger.claim("w2", 5, action_id=register) is not None  # attempt 2: w2 dies holding the lease
    clock.advance(10)
    assert ledger.claim("w3", 30, action_id=register) is not None  # attempt 3 reclaims it
    ledger.note(register, "w3", "uploading 0.1 MB")
    clock.advance(3)
    ledger.complete(register, "w3", RegisterOutputs(model_name="churn", model_version="1"))

    attempts, other = attempts_from_log(ledger.action_log(register))
    assert [(a.number, a.worker, a.outcome) for a in attempts] == [
        (1, "w1", "retry"),
        (2, "w2", "lease expired"),
        (3, "w3", "succeeded"),
    ]
    assert attempts[0].error == "RetryableError: registry busy <b>" and attempts[0].duration_ms == 2000
    assert attempts[2].notes == ["uploading 0.1 MB"] and attempts[2].duration_ms == 3000
    assert other[0].startswith("planned by copy") and any("expired" in line for line in other)

    record = ledger.get_event(intake.event_id)
    assert record is not None
    views = [action_view(ledger, a) for a in record["actions"]]
    svg = timeline_svg(datetime.fromisoformat(record["received_at"]), [lane_of(v) for v in views], clock.now)
    assert svg.count('class="attempt"') == 3  # the deploy waits: no attempt yet
    assert "registry busy &lt;b&gt;" in svg and "<b>" not in svg  # every text escaped
    assert "runs after register" in svg  # the chain's arrow
    ledger.close()
