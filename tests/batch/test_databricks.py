"""batch_score on Databricks: databricks-sdk over real HTTPS against a Jobs API 2.2 contract server."""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import replace

import pytest

from shared.adapters.databricks_jobs import DatabricksJobsClient
from shared.batch.naming import idempotency_token
from shared.domain.outputs import BatchScoreOutputs
from shared.errors import PermanentError, RetryableError
from shared.executors.base import Outcome
from shared.executors.batch_databricks import DatabricksBatchExecutor
from tests.batch.conftest import JOB_ID, Registered, batch_context
from tests.contract.credentials import CONTRACT_TOKEN, StaticTokenCredential

MODEL = Registered("databricks-uc", "main.ml.churn", "3")
RUN_NOW = "/api/2.2/jobs/run-now"
RUNS_GET = "/api/2.2/jobs/runs/get"


def target(url: str, *, job_id: int = JOB_ID, extra: str = "") -> str:
    return (
        f"kind: databricks\nhost: {url}\njob_id: {job_id}\ninput: main.default.features\n"
        "output: main.default.predictions_v{model_version}\njob_parameters: {input_format: table}\n"
        "poll_interval_seconds: 30\nretry_timeout_seconds: 10\nmax_retry_after_seconds: 3\n" + extra
    )


def follow(executor: DatabricksBatchExecutor, ctx) -> list[Outcome]:
    """What the worker does: call again with the recorded outputs while the outcome is waiting."""
    outcomes = [executor.execute(ctx)]
    while outcomes[-1].recheck_after_seconds is not None and len(outcomes) < 20:
        ctx.action.outputs = outcomes[-1].outputs
        outcomes.append(executor.execute(ctx))
    return outcomes


class TestStartAndFollow:
    def test_run_starts_with_documented_parameters_and_is_followed_to_success(self, tmp_path, workspace):
        contract, url = workspace
        credential = StaticTokenCredential()
        executor = DatabricksBatchExecutor(credential_factory=lambda cfg: credential)
        ctx = batch_context(tmp_path, target(url), MODEL)

        outcomes = follow(executor, ctx)

        body = json.loads(contract.requests_to(RUN_NOW)[0]["body"])
        assert body == {
            "job_id": JOB_ID,
            "idempotency_token": idempotency_token(ctx.action.key),
            "job_parameters": {
                "model_uri": "models:/main.ml.churn/3",
                "model_name": "main.ml.churn",
                "model_version": "3",
                "input": "main.default.features",
                "output": "main.default.predictions_v3",
                "input_format": "table",
            },
        }
        assert len(body["idempotency_token"]) <= 64
        assert credential.scopes[0] == ("2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",)
        assert {r["authorization"] for r in contract.requests} == {f"Bearer {CONTRACT_TOKEN}"}
        assert [o.outputs.to_dict()["life_cycle_state"] for o in outcomes] == ["PENDING", "RUNNING", "TERMINATED"]
        assert all(o.recheck_after_seconds == 30 for o in outcomes[:-1])
        done = outcomes[-1]
        assert done.recheck_after_seconds is None
        run_id = done.outputs.to_dict()["run_id"]
        assert done.outputs.to_dict()["result_state"] == "SUCCESS"
        assert done.outputs.to_dict()["duration_seconds"] == 42.0
        assert done.outputs.to_dict()["run_page_url"] == f"{url}/?o=1234567890123456#job/{JOB_ID}/run/{run_id}"
        assert len(contract.runs) == 1

    def test_a_run_still_going_after_timeout_fails_the_action(self, tmp_path, workspace):
        contract, url = workspace
        contract.jobs[JOB_ID].running_reads = 100
        executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())
        ctx = batch_context(tmp_path, target(url, extra="timeout_seconds: 60\n"), MODEL)
        started = executor.execute(ctx)
        assert isinstance(started.outputs, BatchScoreOutputs)
        ctx.action.outputs = replace(started.outputs, first_seen_at=time.time() - 61)

        with pytest.raises(PermanentError, match=r"still (PENDING|RUNNING) after .*timeout_seconds=60"):
            executor.execute(ctx)


class TestOneRunPerActionKey:
    def test_retries_and_concurrent_duplicates_land_on_one_run(self, tmp_path, workspace):
        contract, url = workspace
        ctx = batch_context(tmp_path, target(url), MODEL)

        def fresh_attempt(attempt_ctx) -> int:
            # a new worker, nothing recorded yet: as after a crash before the run id was stored
            executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())
            return executor.execute(attempt_ctx).outputs.to_dict()["run_id"]

        run_ids = [fresh_attempt(ctx), fresh_attempt(ctx)]
        contexts = [batch_context(tmp_path / str(i), target(url), MODEL) for i in range(4)]
        threads = [threading.Thread(target=lambda c=c: run_ids.append(fresh_attempt(c))) for c in contexts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert len(run_ids) == 6 and len(set(run_ids)) == 1
        assert len(contract.runs) == 1
        assert {json.loads(r["body"])["idempotency_token"] for r in contract.requests_to(RUN_NOW)} == {
            idempotency_token(ctx.action.key)
        }

    def test_another_model_version_is_another_run(self, tmp_path, workspace):
        contract, url = workspace
        executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())
        first = executor.execute(batch_context(tmp_path, target(url), MODEL))
        second = executor.execute(batch_context(tmp_path, target(url), Registered("databricks-uc", MODEL.name, "4")))
        assert first.outputs.to_dict()["run_id"] != second.outputs.to_dict()["run_id"]
        assert len(contract.runs) == 2


class TestFailures:
    @pytest.mark.parametrize("ending", ["FAILED", "CANCELED", "TIMEDOUT", "INTERNAL_ERROR"])
    def test_a_run_that_does_not_succeed_fails_the_action_with_its_message(self, tmp_path, workspace, ending):
        contract, url = workspace
        contract.jobs[JOB_ID].ending = ending
        executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())

        with pytest.raises(PermanentError) as failure:
            follow(executor, batch_context(tmp_path, target(url), MODEL))

        run = next(iter(contract.runs.values()))
        message = str(failure.value)
        expected = {"FAILED": "FAILED", "CANCELED": "CANCELED", "TIMEDOUT": "TIMEDOUT", "INTERNAL_ERROR": "FAILED"}
        assert f"ended {expected[ending]}" in message
        assert {
            "FAILED": "input table main.default.features not found",
            "CANCELED": "cancelled by a user",
            "TIMEDOUT": "timed out",
            "INTERNAL_ERROR": "spot instance lost",
        }[ending] in message
        assert f"#job/{JOB_ID}/run/{run.run_id}" in message
        assert failure.value.details["run_id"] == run.run_id

    def test_an_unknown_job_is_a_permanent_error(self, tmp_path, workspace):
        _, url = workspace
        executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())
        # the workspace's error code, as its API answers it, where the SDK's class name (InvalidParameterValue) was
        expected = r"starting job 999 on .*: Databricks answered INVALID_PARAMETER_VALUE: Job 999 does not exist\.$"
        with pytest.raises(PermanentError, match=expected):
            executor.execute(batch_context(tmp_path, target(url, job_id=999), MODEL))

    def test_a_rejected_token_is_a_permanent_error_saying_what_to_check(self, tmp_path, workspace):
        _, url = workspace
        executor = DatabricksBatchExecutor(env={"DATABRICKS_TOKEN": "dapi-wrong"})
        ctx = batch_context(tmp_path, target(url, extra="auth: token\n"), MODEL)
        with pytest.raises(PermanentError, match="workspace rejected the token"):
            executor.execute(ctx)

    def test_token_auth_reads_the_named_app_setting(self, tmp_path, workspace):
        contract, url = workspace
        executor = DatabricksBatchExecutor(env={"MY_PAT": CONTRACT_TOKEN})
        ctx = batch_context(tmp_path, target(url, extra="auth: token\ntoken_setting: MY_PAT\n"), MODEL)
        assert follow(executor, ctx)[-1].outputs.to_dict()["result_state"] == "SUCCESS"

    def test_a_missing_token_setting_names_it(self, tmp_path, workspace):
        _, url = workspace
        executor = DatabricksBatchExecutor(env={})
        with pytest.raises(PermanentError, match="DATABRICKS_TOKEN app setting is not set"):
            executor.execute(batch_context(tmp_path, target(url, extra="auth: token\n"), MODEL))


class TestThrottlingAndServerErrors:
    def test_a_short_429_is_waited_out_and_still_one_run(self, tmp_path, workspace):
        contract, url = workspace
        contract.fail_next(RUN_NOW, 429, retry_after=1)
        executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())

        outcome = executor.execute(batch_context(tmp_path, target(url), MODEL))

        assert outcome.outputs.to_dict()["run_id"] in contract.runs
        assert len(contract.requests_to(RUN_NOW)) == 2
        assert len(contract.runs) == 1

    def test_a_long_retry_after_goes_back_to_the_worker_then_one_run(self, tmp_path, workspace):
        contract, url = workspace
        contract.fail_next(RUN_NOW, 429, retry_after=120)
        executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())
        ctx = batch_context(tmp_path, target(url), MODEL)

        with pytest.raises(RetryableError, match="throttling"):
            executor.execute(ctx)
        assert contract.runs == {}
        assert len(contract.requests_to(RUN_NOW)) == 1  # the SDK did not sit out 120 s

        assert follow(executor, ctx)[-1].outputs.to_dict()["result_state"] == "SUCCESS"
        assert len(contract.runs) == 1

    def test_a_500_while_following_is_retryable_and_the_run_is_kept(self, tmp_path, workspace):
        contract, url = workspace
        executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())
        ctx = batch_context(tmp_path, target(url), MODEL)
        ctx.action.outputs = executor.execute(ctx).outputs
        contract.fail_next(RUNS_GET, 500)

        with pytest.raises(RetryableError, match=r"Databricks answered INTERNAL_ERROR: injected 500$"):
            executor.execute(ctx)
        contract.fail_next(RUNS_GET, 503)  # no Retry-After: the SDK retries it by itself
        assert follow(executor, ctx)[-1].outputs.to_dict()["result_state"] == "SUCCESS"
        assert len(contract.runs) == 1


def test_building_a_client_makes_no_network_call():
    """An unreachable or slow workspace must not hang app start-up or the worker."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        credential = StaticTokenCredential()

        DatabricksJobsClient(
            f"https://127.0.0.1:{listener.getsockname()[1]}",
            credential=credential,
            http_timeout_seconds=1,
            retry_timeout_seconds=1,
        )

        with pytest.raises(BlockingIOError):
            listener.accept()
        assert credential.scopes == []
