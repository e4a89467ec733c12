"""The approve executor under a real worker and SQLite ledger: it waits holding no worker, announces
itself once, and acts on a recorded decision at once."""

from __future__ import annotations

from pathlib import Path

from shared.config.loader import load_config
from shared.domain.actions import Action, PlannedAction
from shared.domain.events import MODEL_VERSION_ALIAS_SET, ModelEvent
from shared.domain.outputs import ApproveOutputs
from shared.domain.params import ActionParams
from shared.ledger.sqlite import SqliteLedger
from shared.service.dispatch import LocalDispatcher
from shared.service.worker import Worker

CONFIG = """
sources:
  mlflow: {tracking_uri: "http://127.0.0.1:1"}
approvals:
  owners: {expires: PT1H}
"""


def test_an_approval_waits_is_announced_once_and_completes_on_the_decision(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    config = load_config(tmp_path / "c.yaml", env={})
    ledger = SqliteLedger(tmp_path / "ledger.db")
    told: list[Action] = []
    worker = Worker(ledger, config, tmp_path, LocalDispatcher(), worker_id="w", on_finished=told.append)
    event = ModelEvent(
        source="mlflow", kind=MODEL_VERSION_ALIAS_SET, source_type="t", model_name="m", model_version="2"
    )
    planned = PlannedAction("approve", "owners", "m", "2", params=ActionParams(source="mlflow"), rule="gate")
    [action_id] = ledger.record_event(event, [planned], reason=None, max_attempts=3).action_ids

    waiting = worker.run_once()
    assert waiting is not None and waiting.status == "waiting" and waiting.lease_owner is None
    assert waiting.not_before is not None and waiting.created_at is not None
    assert (waiting.not_before - waiting.created_at).total_seconds() > 3500  # re-checked at expiry, no tag to read
    assert [(a.id, a.status) for a in told] == [(action_id, "waiting")]
    assert worker.run_once() is None  # nothing due: no worker is held by the approval

    decision = ApproveOutputs(decision="approve", decided_by="ana", decided_at="2026-01-01T00:00:00+00:00")
    assert ledger.decide(action_id, decision, "approved by ana via api") is not None
    done = worker.run_once()
    assert done is not None and done.status == "succeeded" and done.attempts == 1
    assert done.outputs.to_dict()["decided_by"] == "ana" and done.outputs.to_dict()["expires_at"]
    assert [a.status for a in told] == ["waiting", "succeeded"]
    ledger.close()
