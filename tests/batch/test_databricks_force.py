"""`force` on a Databricks batch score, through the HTTP API, the ledger and the worker, against the
Jobs API contract server: a forced re-run after success is the next attempt generation, whose
idempotency token is new, so exactly one new run starts; concurrent forced requests start one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.bootstrap import Container
from shared.config.batch import DatabricksBatch
from shared.domain.actions import BATCH_SCORE, Action
from shared.executors.batch_databricks import DatabricksBatchExecutor
from shared.executors.registry import ExecutorRegistry
from shared.service.dispatch import LocalDispatcher
from shared.settings import Settings
from tests.batch.test_databricks import MODEL, RUN_NOW, target
from tests.contract.credentials import StaticTokenCredential
from tests.contract.databricks_jobs_server import DatabricksJobsContract
from tests.ledger.support import together
from tests.support import write_config

REQUEST = {"kind": BATCH_SCORE, "target": "nightly", "model_name": MODEL.name, "model_version": MODEL.version}


def reactor_app(tmp_path: Path, url: str) -> tuple[TestClient, Container]:
    body = "".join(
        f"    {line}\n"
        for line in target(url).replace("poll_interval_seconds: 30", "poll_interval_seconds: 0.05").splitlines()
    )
    config = write_config(
        tmp_path / "modelops.yaml",
        f"sources:\n  mlflow: {{tracking_uri: 'sqlite:///{tmp_path}/source.db'}}\nbatch:\n  nightly:\n{body}",
    )
    settings = Settings.from_env({"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp_path / "state")})
    executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())
    executors = ExecutorRegistry({(BATCH_SCORE, DatabricksBatch): lambda: executor})
    container = Container(settings, dispatcher=LocalDispatcher(), executors=executors)
    return TestClient(container.http_app()), container


def run_to_the_end(container: Container, action_id: str) -> Action:
    [done] = container.worker().run_until_done([action_id], timeout=60)
    return done


@dataclass
class Scored:
    """A batch score that ran once and succeeded, and how to reach it again."""

    contract: DatabricksJobsContract
    client: TestClient
    container: Container
    first: Action

    def force(self) -> dict[str, Any]:
        answer = self.client.post("/api/actions", json={**REQUEST, "force": True})
        assert answer.status_code in (200, 202), answer.text
        return dict(answer.json())

    def run_again(self) -> Action:
        return run_to_the_end(self.container, self.first.id)


@pytest.fixture
def scored(tmp_path: Path, workspace: tuple[DatabricksJobsContract, str]) -> Scored:
    contract, url = workspace
    client, container = reactor_app(tmp_path, url)
    action_id = client.post("/api/actions", json=REQUEST).json()["action_ids"][0]
    first = run_to_the_end(container, action_id)
    assert first.status == "succeeded" and first.generation == 0 and len(contract.runs) == 1
    return Scored(contract, client, container, first)


class TestForcedBatchScore:
    def test_a_forced_run_after_success_starts_exactly_one_new_run(self, scored: Scored) -> None:
        assert not scored.force().get("duplicate")

        again = scored.run_again()

        before, after = scored.first.outputs.to_dict(), again.outputs.to_dict()
        assert again.status == "succeeded" and again.generation == 1
        assert len(scored.contract.runs) == 2 and len(scored.contract.requests_to(RUN_NOW)) == 2
        assert after["run_id"] != before["run_id"] and after["idempotency_token"] != before["idempotency_token"]
        assert {run.token for run in scored.contract.runs.values()} == {
            before["idempotency_token"],
            after["idempotency_token"],
        }
        log = [line["message"] for line in scored.container.reactor().ledger.action_log(again.id)]
        assert "forced re-run: attempt generation 1 (was succeeded)" in log

    def test_ten_concurrent_forced_requests_start_one_new_run(self, scored: Scored) -> None:
        answers = together(10, lambda _: scored.force())

        done = scored.run_again()

        assert sum(1 for answer in answers if not answer.get("duplicate")) == 1
        assert done.status == "succeeded" and done.generation == 1
        assert len(scored.contract.runs) == 2

    def test_a_retry_of_the_forced_attempt_lands_on_its_run(self, scored: Scored) -> None:
        scored.force()
        scored.contract.fail_next("/api/2.2/jobs/runs/get", 500)  # the new run starts, then reading it fails once

        done = scored.run_again()

        assert done.status == "succeeded" and done.generation == 1 and done.attempts == 2
        assert len(scored.contract.runs) == 2
