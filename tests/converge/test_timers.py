"""One schedule of timers for both hosts: the Functions timer `registry_poller` (called as the host calls
it) and `modelops serve`'s local timers run the same reconcile; NCRONTAB is read as the host reads it."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import mlflow
import pytest

from functions import build_function_app
from shared.bootstrap import Container
from shared.ncrontab import next_fire
from shared.service.dispatch import LocalDispatcher
from shared.service.schedule import LocalTimers
from shared.settings import Settings
from tests.support import unique, write_config

CONFIG = """
sources:
  mlflow: {tracking_uri: "sqlite:///%(tmp)s/source.db", poll_lookback_seconds: 600}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db"}
rules:
  - {name: copy, on: model_version.created, models: ["%(model)s"], do: [{register: local-aml}]}
reconcile: {every: PT1S}
"""


def _container(tmp_path: Path, model: str) -> Container:
    config = write_config(tmp_path / "modelops.yaml", CONFIG % {"tmp": tmp_path, "model": model})
    env = {"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp_path / "state")}
    return Container(Settings.from_env(env), dispatcher=LocalDispatcher())


def _new_version(tmp_path: Path, model: str) -> None:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/source.db")
    client.create_registered_model(model)
    client.create_model_version(model, "s3://bucket/model")


def _reconciled(container: Container, model: str) -> list[dict]:
    return [e for e in container.reactor().ledger.list_events() if e["model_name"] == model]


def test_the_functions_timer_reconciles_as_the_host_calls_it(tmp_path: Path) -> None:
    model = unique("timer")
    container = _container(tmp_path, model)
    _new_version(tmp_path, model)
    functions = {f.get_function_name(): f for f in build_function_app(container).get_functions()}
    functions["registry_poller"].get_user_function()(None)  # the host passes a TimerRequest; it is unused
    [event] = _reconciled(container, model)
    assert (event["kind"], event["summary"]["via"]) == ("model_version.created", "reconcile")
    assert container.reactor().ledger.list_reports("reconcile")


def test_serve_runs_the_same_reconcile_every_interval(tmp_path: Path) -> None:
    model = unique("local-timer")
    container = _container(tmp_path, model)
    timers = LocalTimers(container.reactor()).start()
    try:
        _new_version(tmp_path, model)
        deadline = time.monotonic() + 60
        while not _reconciled(container, model) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _reconciled(container, model), "no reconcile pass within 60 s at every: PT1S"
        assert set(timers.schedule()) == {"registry_poller", "cleanup_timer", "retention_timer"}
    finally:
        timers.close()


@pytest.mark.parametrize(
    ("schedule", "after", "fires"),
    [
        ("0 */5 * * * *", datetime(2026, 12, 7, 13, 42, 11), datetime(2026, 12, 7, 13, 45)),
        ("*/10 * * * * *", datetime(2026, 12, 7, 13, 42, 11), datetime(2026, 12, 7, 13, 42, 20)),
        ("0 0 3 * * *", datetime(2026, 12, 7, 13, 42, 11), datetime(2026, 12, 8, 3, 0)),
        ("0 30 9 * * 1-5", datetime(2026, 12, 5, 12, 0), datetime(2026, 12, 7, 9, 30)),  # Saturday -> Monday
    ],
)
def test_ncrontab_fires_when_the_functions_host_would(schedule: str, after: datetime, fires: datetime) -> None:
    assert next_fire(schedule, after) == fires


def test_a_malformed_schedule_names_the_field() -> None:
    with pytest.raises(ValueError, match="hour field '25' is outside 0-23"):
        next_fire("0 0 25 * * *", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="needs 6"):
        next_fire("*/5 * * * *", datetime(2026, 1, 1))
