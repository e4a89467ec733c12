"""Retention on both ledgers (SQLite, Table Storage over Azurite): a dry run changes nothing; an
applied prune removes only what is finished and old, never what is in flight or waiting, nor the
deployment history a rollback goes back to."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from shared.config.loader import load_config
from shared.domain.actions import PlannedAction
from shared.domain.events import MODEL_VERSION_ALIAS_SET
from shared.domain.outputs import DeployOutputs
from shared.domain.params import ActionParams
from shared.ledger.base import Ledger
from shared.service.reactor import Reactor
from shared.service.retention import prune
from shared.service.rollback import plan_rollback
from shared.settings import Settings
from tests.ledger.support import ManualClock, event, must, record

CONFIG = """
registries:
  a: {kind: mlflow, tracking_uri: "sqlite:///unused.db"}
deployments:
  local: {kind: local, keep_previous: 1}
retention: {keep: P30D}
"""
DAY = 86_400.0


def deploy(ledger: Ledger, clock: ManualClock, version: str) -> str:
    """A deploy of ``version`` on `local`, run to success."""
    step = PlannedAction("deploy", "local", "m", version, params=ActionParams(source="mlflow"), rule="serve")
    result = ledger.record_event(
        event(version, kind=MODEL_VERSION_ALIAS_SET, alias="champion"), [step], reason=None, max_attempts=3
    )
    [action_id] = result.action_ids
    must(ledger.claim("w", 60, action_id=action_id))
    clock.advance(1)
    ledger.complete(
        action_id, "w", DeployOutputs(endpoint_url=f"http://127.0.0.1/{version}", model_name="m", model_version=version)
    )
    return action_id


def everything(ledger: Ledger) -> tuple[list[str], list[str]]:
    return sorted(e["id"] for e in ledger.list_events(limit=1000)), sorted(
        a.id for a in ledger.list_actions(limit=1000)
    )


def test_prune_removes_only_what_is_finished_and_old(ledger: Ledger, clock: ManualClock, tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text(CONFIG)
    config = load_config(tmp_path / "c.yaml", env={})
    reactor = Reactor(Settings(state_dir=tmp_path), config, ledger, clock=clock)
    # old: an ignored event, a failed copy, three deploys in turn, a copy still queued, a refusal
    ignored = ledger.record_event(event("1"), [], reason="no rule matched", max_attempts=3).event_id
    failed = record(ledger, "2")
    must(ledger.claim("w", 60, action_id=failed.action_ids[0]))
    ledger.fail(failed.action_ids[0], "w", "PermanentError: refused", retry_at=None)
    deploys = [deploy(ledger, clock, v) for v in ("3", "4", "5")]
    queued = record(ledger, "6")
    ledger.record_refusal("mlflow", "refused-delivery", "the body is not JSON")
    clock.advance(40 * DAY)
    fresh = record(ledger, "7")  # new: kept whatever its state
    before = everything(ledger)
    oldest_deploy = must(ledger.get_action(deploys[0]))

    dry = prune(reactor)
    assert everything(ledger) == before  # a dry run changes nothing
    assert ledger.deliveries(delivery_id="refused-delivery")
    assert (dry.applied, dry.events, dry.actions, dry.kept_in_flight, dry.kept_for_rollback) == (False, 3, 2, 1, 2)
    assert dry.deliveries == 3 + 1  # one each of the three events, and the refusal

    done = prune(reactor, apply=True)
    assert (done.applied, done.events, done.actions, done.event_ids) == (True, 3, 2, dry.event_ids)
    events, actions = everything(ledger)
    assert ignored not in events and failed.event_id not in events and oldest_deploy.event_id not in events
    assert ledger.get_action(failed.action_ids[0]) is None and ledger.get_action(deploys[0]) is None
    assert ledger.action_log(failed.action_ids[0]) == [] and ledger.deliveries(event_id=failed.event_id) == []
    assert ledger.deliveries(delivery_id="refused-delivery") == []
    assert set(actions) == {deploys[1], deploys[2], queued.action_ids[0], fresh.action_ids[0]}
    assert ledger.get_event(queued.event_id) is not None and ledger.get_event(fresh.event_id) is not None
    # the history a rollback reads is whole: back from v5 to v4
    planned, current = plan_rollback(config, ledger, "local")
    assert current.model_version == "5" and planned is not None and planned.model_version == "4"
    # a pruned event's redelivery is new again (its dedupe key went with it), the kept one's is not
    assert record(ledger, "6").duplicate and not record(ledger, "2").duplicate
    assert prune(reactor, apply=True).events == 0  # nothing more is old enough


@pytest.mark.parametrize("keep", ["P0D", "P1Y", "soon"])
def test_a_retention_that_keeps_nothing_or_is_no_duration_is_refused(tmp_path: Path, keep: str) -> None:
    from shared.errors import ConfigError

    (tmp_path / "c.yaml").write_text(f"retention: {{keep: {keep}}}\n")
    with pytest.raises(ConfigError) as refused:
        load_config(tmp_path / "c.yaml", env={})
    assert "retention.keep" in str(refused.value)


def test_modelops_prune_reports_then_applies_and_gives_the_wal_back(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    from shared.domain.clock import now_utc
    from shared.ledger.sqlite import SqliteLedger
    from tests.support import ROOT

    clock = ManualClock(now_utc())
    clock.advance(-40 * DAY)
    ledger = SqliteLedger(tmp_path / "ledger.db", clock=clock)
    big = "x" * 200_000  # large payloads, as Event Grid's can be
    for version in range(30):
        large = replace(event(str(version)), raw={"blob": big})
        ledger.record_event(large, [], reason="no rule matched", max_attempts=3)
    (tmp_path / "c.yaml").write_text(CONFIG)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELOPS_")}

    def modelops(*args: str) -> dict:
        command = [sys.executable, "-m", "shared.cli.main", "prune", *args, "--state-dir", str(tmp_path)]
        command += ["--config", str(tmp_path / "c.yaml"), "-o", "json"]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return dict(json.loads(done.stdout))

    assert (tmp_path / "ledger.db-wal").stat().st_size > 1_000_000
    assert modelops()["events"] == 30 and len(ledger.list_events(limit=100)) == 30  # P30D: a dry run
    assert modelops("--older-than", "P60D")["events"] == 0
    applied = modelops("--apply")
    assert applied["applied"] is True and applied["events"] == 30
    assert ledger.list_events(limit=100) == []
    # this process's ledger is still open, so the WAL is not removed on close: the prune truncated it
    assert (tmp_path / "ledger.db-wal").stat().st_size == 0
    ledger.close()
    bad = subprocess.run(
        [sys.executable, "-m", "shared.cli.main", "prune", "--older-than", "P1M", "--state-dir", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--older-than" in bad.stderr and "months" in bad.stderr


def test_the_retention_timer_prunes_the_ledger_it_is_given(tmp_path: Path) -> None:
    from shared.bootstrap import Container
    from shared.domain.clock import now_utc
    from shared.ledger.sqlite import SqliteLedger
    from shared.service.dispatch import LocalDispatcher
    from tests.support import indexed_functions

    clock = ManualClock(now_utc())
    clock.advance(-31 * DAY)
    old = SqliteLedger(tmp_path / "state" / "ledger.db", clock=clock)
    gone = old.record_event(event("1"), [], reason="no rule matched", max_attempts=3).event_id
    clock.advance(2 * DAY)  # 29 days old: kept under P30D
    kept = old.record_event(event("2"), [], reason="no rule matched", max_attempts=3).event_id
    old.close()
    (tmp_path / "c.yaml").write_text(CONFIG)
    settings = Settings.from_env(
        {"MODELOPS_CONFIG": str(tmp_path / "c.yaml"), "MODELOPS_STATE_DIR": str(tmp_path / "state")}
    )
    container = Container(settings, dispatcher=LocalDispatcher())
    indexed_functions(container)["retention_timer"].get_user_function()(None)
    assert [e["id"] for e in container.reactor().ledger.list_events()] == [kept] != [gone]
