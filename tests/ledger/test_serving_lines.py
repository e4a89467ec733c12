"""Serving lines: deploys of one (target, source, model) run one at a time; a deploy no longer desired
ends `superseded` (terminal, not a failure) and its dependents are skipped. Both backends."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from shared.domain.actions import PlannedAction
from shared.domain.events import MODEL_VERSION_ALIAS_SET
from shared.domain.outputs import DeployOutputs
from shared.domain.params import ActionParams
from shared.ledger.base import Ledger
from tests.ledger.support import ManualClock, event, messages, must, together


def deploy(ledger: Ledger, version: str, *, target: str = "t", model: str = "m", then_score: bool = False) -> list[str]:
    """Record an alias move to ``version`` that deploys it on ``target`` (and then batch-scores)."""
    params = ActionParams(source="mlflow", alias="champion", change=f"move-{version}")
    steps = [PlannedAction("deploy", target, model, version, params=params, rule="champion", qualifier=f"mv{version}")]
    if then_score:
        steps.append(PlannedAction("batch_score", "nightly", model, version, params=params, after_index=0))
    moved = replace(event(version, kind=MODEL_VERSION_ALIAS_SET, alias="champion"), model_name=model, change=target)
    return ledger.record_event(moved, steps, reason=None, max_attempts=3).action_ids


class TestServingLines:
    def test_a_second_deploy_of_the_line_waits_for_the_running_one(self, ledger: Ledger, clock: ManualClock) -> None:
        [first] = deploy(ledger, "2")
        clock.advance(1)  # recorded later: claims run the oldest first (within one millisecond the order is open)
        [second] = deploy(ledger, "3")
        assert must(ledger.claim("w1", 30)).id == first
        assert ledger.claim("w2", 30) is None  # the line is held: nothing else is runnable
        assert ledger.claim("w2", 30, action_id=second) is None
        waiting = must(ledger.get_action(second))
        # tried again shortly, not when the holder's lease would expire: it renews that while it runs
        assert waiting.status == "queued" and waiting.not_before == clock.now + timedelta(seconds=10)
        assert any(f"waiting for {first}" in line for line in messages(ledger, second))
        clock.advance(11)
        assert ledger.claim("w2", 30) is None  # the holder still runs: deferred again
        assert sum(f"waiting for {first}" in line for line in messages(ledger, second)) == 1  # said once
        ledger.complete(first, "w1", DeployOutputs(model_version="2"))
        clock.advance(11)  # within one re-check of the holder's end, not its lease's
        assert must(ledger.claim("w2", 30)).id == second

    def test_other_lines_are_not_held(self, ledger: Ledger) -> None:
        [one] = deploy(ledger, "2")
        [other_model] = deploy(ledger, "2", model="n")
        [other_target] = deploy(ledger, "2", target="u")
        claimed = {must(ledger.claim(f"w{i}", 30)).id for i in range(3)}
        assert claimed == {one, other_model, other_target}

    def test_a_dead_holder_does_not_hold_the_line(self, ledger: Ledger, clock: ManualClock) -> None:
        [first] = deploy(ledger, "2")
        [second] = deploy(ledger, "3")
        must(ledger.claim("crashed", 30, action_id=first))
        clock.advance(31)  # its lease expired: the worker died
        assert must(ledger.claim("w2", 30, action_id=second)).lease_owner == "w2"

    def test_racing_claims_run_one_deploy_of_a_line_at_a_time(self, ledger: Ledger) -> None:
        for version in "2345":
            deploy(ledger, version)
        claimed = together(4, lambda i: ledger.claim(f"w{i}", 30))
        assert len([a for a in claimed if a is not None]) == 1

    def test_a_superseded_deploy_is_done_and_skips_what_runs_after_it(self, ledger: Ledger) -> None:
        deployed, score = deploy(ledger, "2", then_score=True)
        must(ledger.claim("w1", 30, action_id=deployed))
        assert not ledger.supersede(deployed, "someone-else", "late writer")  # fenced, like every outcome
        assert ledger.supersede(deployed, "w1", "alias champion of m now names v3")
        done = must(ledger.get_action(deployed))
        assert done.status == "superseded" and done.error is None and done.finished_at is not None
        assert messages(ledger, deployed)[-1] == "superseded: alias champion of m now names v3"
        skipped = must(ledger.get_action(score))
        assert (
            skipped.status == "skipped" and skipped.error == f"not run: {deployed} (which it runs after) was superseded"
        )
        assert ledger.requeue([deployed], include_succeeded=False) == [deployed]  # replay may try it again
