"""Who refused a Databricks call, and the fix: a rejected token (401, or 403 "Invalid access
token.") names the token; a valid token without the permission names the job permission."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import PermanentError
from shared.executors.batch_databricks import DatabricksBatchExecutor
from tests.batch.conftest import batch_context
from tests.batch.test_databricks import MODEL, RUN_NOW, target
from tests.contract.credentials import StaticTokenCredential
from tests.contract.databricks_jobs_server import DatabricksJobsContract


def refusal(tmp_path: Path, url: str) -> str:
    executor = DatabricksBatchExecutor(credential_factory=lambda cfg: StaticTokenCredential())
    with pytest.raises(PermanentError) as refused:
        executor.execute(batch_context(tmp_path, target(url), MODEL))
    return str(refused.value)


@pytest.mark.parametrize(
    ("status", "message"),
    [(403, "Invalid access token."), (401, "Invalid access token."), (403, "Token is expired.")],
)
def test_a_rejected_token_names_the_token_and_not_a_permission(
    tmp_path: Path, workspace: tuple[DatabricksJobsContract, str], status: int, message: str
) -> None:
    contract, url = workspace
    contract.fail_next(RUN_NOW, status, message=message)
    text = refusal(tmp_path, url)
    assert "the Databricks workspace rejected the token" in text and message in text
    assert "scope" in text and "personal access token" in text
    assert "CAN MANAGE RUN" not in text
    assert contract.runs == {}


def test_a_permission_denial_names_the_job_permission(
    tmp_path: Path, workspace: tuple[DatabricksJobsContract, str]
) -> None:
    contract, url = workspace
    denial = "User 1f2e-app does not have Manage Run or Owner or Admin permissions on job 101"
    contract.fail_next(RUN_NOW, 403, message=denial)
    text = refusal(tmp_path, url)
    assert "Databricks accepted the token but refused the request" in text and denial in text
    assert "CAN MANAGE RUN on the job" in text and "rejected the token" not in text
