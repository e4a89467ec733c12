"""A Databricks 429 with a long Retry-After, through the worker and each ledger: the next `run-now`
is scheduled no earlier than the server asked (on a hand-driven clock), and it is still one run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config.batch import DatabricksBatch
from shared.config.loader import load_config
from shared.domain.actions import BATCH_SCORE, PlannedAction
from shared.domain.clock import now_utc
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent
from shared.domain.params import ActionParams
from shared.executors.batch_databricks import DatabricksBatchExecutor
from shared.executors.registry import ExecutorRegistry
from shared.ledger.base import Ledger
from shared.service.dispatch import LocalDispatcher
from shared.service.worker import Worker
from tests.batch.test_databricks import MODEL, RUN_NOW, target
from tests.contract.credentials import StaticTokenCredential
from tests.contract.databricks_jobs_server import DatabricksJobsContract
from tests.ledger.support import Backend, ManualClock, must

WORKER = "worker:\n  max_attempts: 5\n  backoff_base_seconds: 0.5\n  max_retry_after_seconds: 60\n"


@pytest.fixture(params=["sqlite", "tables"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path, clock: ManualClock) -> Iterator[Ledger]:
    if request.param == "sqlite":
        backend = Backend("sqlite", str(tmp_path / "ledger.db"))
    else:
        azurite = request.getfixturevalue("azurite")
        backend = Backend("tables", f"ledger{uuid.uuid4().hex[:10]}", azurite.connection_string)
    opened = backend.open(clock)
    yield opened
    opened.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(now_utc())


def batch_worker(tmp_path: Path, url: str, ledger: Ledger, clock: ManualClock, worker_yaml: str = WORKER) -> Worker:
    config_file = tmp_path / "modelops.yaml"
    body = "".join(f"    {line}\n" for line in target(url).splitlines())
    config_file.write_text(f"batch:\n  nightly:\n{body}{worker_yaml}")
    config = load_config(config_file, env={})
    executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())
    registry = ExecutorRegistry({(BATCH_SCORE, DatabricksBatch): lambda: executor})
    return Worker(ledger, config, tmp_path, LocalDispatcher(), registry, worker_id="w1", clock=clock)


def record_batch_score(ledger: Ledger) -> str:
    event = ModelEvent(
        source="mlflow",
        kind=MODEL_VERSION_CREATED,
        source_type=MODEL_VERSION_CREATED,
        model_name=MODEL.name,
        model_version=MODEL.version,
    )
    params = ActionParams(source="mlflow", source_tracking_uri=MODEL.tracking_uri)
    step = PlannedAction(BATCH_SCORE, "nightly", MODEL.name, MODEL.version, params=params, rule="score")
    [action_id] = ledger.record_event(event, [step], reason=None, max_attempts=5).action_ids
    return action_id


class TestRetryAfterThroughTheLedger:
    def test_a_429_retry_after_12_schedules_the_next_run_now_12s_later_and_one_run(
        self, tmp_path: Path, workspace: tuple[DatabricksJobsContract, str], ledger: Ledger, clock: ManualClock
    ) -> None:
        contract, url = workspace
        contract.fail_next(RUN_NOW, 429, retry_after=12)  # above the target's max_retry_after_seconds: 3
        worker = batch_worker(tmp_path, url, ledger, clock)
        action_id = record_batch_score(ledger)
        failed_at = clock()

        first = must(worker.run_once(action_id))

        assert first.status == "queued" and first.attempts == 1
        assert first.not_before is not None and (first.not_before - failed_at).total_seconds() >= 12
        assert len(contract.requests_to(RUN_NOW)) == 1  # the SDK did not sit the 12 s out
        clock.advance(11.5)
        assert worker.run_once(action_id) is None and worker.run_once() is None
        assert len(contract.requests_to(RUN_NOW)) == 1

        clock.advance(0.5)
        started = must(worker.run_once(action_id))
        assert started.status == "waiting" and len(contract.requests_to(RUN_NOW)) == 2
        while started.status == "waiting":
            clock.advance(30)
            started = must(worker.run_once(action_id))
        assert started.status == "succeeded" and started.outputs.to_dict()["run_id"] in contract.runs
        assert len(contract.runs) == 1

    def test_a_retry_after_beyond_the_ceiling_fails_naming_the_server_and_the_delay(
        self, tmp_path: Path, workspace: tuple[DatabricksJobsContract, str], ledger: Ledger, clock: ManualClock
    ) -> None:
        contract, url = workspace
        contract.fail_next(RUN_NOW, 429, retry_after=7200)
        worker = batch_worker(tmp_path, url, ledger, clock)

        failed = must(worker.run_once(record_batch_score(ledger)))

        assert failed.status == "failed" and failed.attempts == 1 and failed.error is not None
        assert "injected 429" in failed.error  # the server's own message
        assert "retry after 7200s" in failed.error and "worker.max_retry_after_seconds (60s)" in failed.error
        assert contract.runs == {}
