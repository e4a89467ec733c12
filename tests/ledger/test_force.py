"""Forcing a succeeded action again: the next attempt generation, stored on the action and in its
audit log, with empty outputs; concurrent forces make one generation. Same on each backend."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from shared.domain.outputs import RegisterOutputs
from shared.ledger.base import Ledger
from shared.ledger.sqlite import SqliteLedger
from tests.ledger.support import messages, must, record, together


def succeed(ledger: Ledger, action_id: str) -> None:
    assert must(ledger.claim("w", 30, action_id=action_id)).id == action_id
    ledger.complete(action_id, "w", RegisterOutputs(model_version="9", run_id="r1"))


class TestForce:
    def test_forcing_a_succeeded_action_starts_the_next_generation(self, ledger: Ledger) -> None:
        [action_id] = record(ledger).action_ids
        succeed(ledger, action_id)

        assert ledger.requeue([action_id], include_succeeded=True) == [action_id]

        forced = must(ledger.get_action(action_id))
        assert (forced.status, forced.generation, forced.attempts) == ("queued", 1, 0)
        assert forced.outputs == RegisterOutputs()  # the last generation's results are not this one's
        assert "forced re-run: attempt generation 1 (was succeeded)" in messages(ledger, action_id)
        assert forced.to_dict()["generation"] == 1

    def test_a_replay_of_a_failed_action_keeps_its_generation(self, ledger: Ledger) -> None:
        [action_id] = record(ledger).action_ids
        must(ledger.claim("w", 30, action_id=action_id))
        ledger.fail(action_id, "w", "boom", retry_at=None)
        assert ledger.requeue([action_id], include_succeeded=True) == [action_id]
        assert must(ledger.get_action(action_id)).generation == 0

    def test_ten_concurrent_forces_make_one_generation(self, ledger: Ledger) -> None:
        [action_id] = record(ledger).action_ids
        succeed(ledger, action_id)

        requeued = together(10, lambda _: ledger.requeue([action_id], include_succeeded=True))

        assert sum(len(ids) for ids in requeued) == 1
        assert must(ledger.get_action(action_id)).generation == 1


def test_a_ledger_file_from_before_generations_opens_and_reads_generation_0(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    SqliteLedger(str(path)).close()
    with sqlite3.connect(path) as db:  # the file as an older release left it: no generation column
        db.execute("ALTER TABLE actions DROP COLUMN generation")
    ledger = SqliteLedger(str(path))
    [action_id] = record(ledger).action_ids
    assert must(ledger.get_action(action_id)).generation == 0
    ledger.close()
