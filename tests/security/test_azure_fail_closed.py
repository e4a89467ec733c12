"""In Azure (WEBSITE_INSTANCE_ID set) a webhook source without its secret refuses every delivery,
naming the setting, and records nothing; the start-up log and `config check` say so once."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.spine.apptest import CONFIG, make_app
from tests.support import ROOT, write_config

ENVELOPE = {
    "entity": "model_version",
    "action": "created",
    "timestamp": "2026-11-28T04:00:00Z",
    "data": {"name": "churn-x", "version": "3", "source": "models:/m-1", "run_id": "r1", "tags": {}},
}
DATABRICKS = {"event": "MODEL_VERSION_CREATED", "webhook_id": "w1", "event_timestamp": 1764300000000}
DATABRICKS |= {"model_name": "churn-x", "version": "3", "text": "", "tags": []}


@pytest.mark.parametrize("in_azure", [True, False], ids=["azure", "local"])
def test_unsigned_deliveries_are_refused_in_azure_and_accepted_locally(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, in_azure: bool
) -> None:
    with caplog.at_level(logging.WARNING, logger="modelops.hooks"):
        client, reactor = make_app(
            tmp_path, in_azure=in_azure, mlflow_webhook_secret=None, databricks_webhook_secret=None
        )
        answers = {
            "MLFLOW_WEBHOOK_SECRET": client.post("/api/hooks/mlflow", json=ENVELOPE),
            "DATABRICKS_WEBHOOK_SECRET": client.post("/api/hooks/databricks", json=DATABRICKS),
        }
        answers["MLFLOW_WEBHOOK_SECRET (again)"] = client.post("/api/hooks/mlflow", json=ENVELOPE)
    notices = [r.getMessage() for r in caplog.records if r.name == "modelops.hooks"]
    if in_azure:
        for setting, answer in answers.items():
            assert answer.status_code == 401, (setting, answer.text)
            assert setting.split()[0] in answer.json()["error"] and "in Azure" in answer.json()["error"]
            assert answer.json()["problems"]
        assert reactor.ledger.list_events() == [] and reactor.ledger.list_actions() == []
        assert notices == [
            "MLFLOW_WEBHOOK_SECRET is not set: every webhook delivery to source mlflow is refused (401)",
            "DATABRICKS_WEBHOOK_SECRET is not set: every webhook delivery to source databricks is refused (401)",
        ]
    else:
        assert [a.status_code for a in answers.values()] == [202, 202, 200]
        assert [n.split(":")[0] for n in notices] == [
            "MLFLOW_WEBHOOK_SECRET is not set",
            "DATABRICKS_WEBHOOK_SECRET is not set",
        ]
        assert all("accepting unsigned webhooks" in n for n in notices)


def test_config_check_says_which_sources_refuse_in_azure(tmp_path: Path) -> None:
    config = write_config(tmp_path / "modelops.yaml", CONFIG % {"tmp": tmp_path})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELOPS_", "MLFLOW_", "DATABRICKS_", "WEBSITE_"))}
    env |= {"WEBSITE_INSTANCE_ID": "i-1", "DATABRICKS_WEBHOOK_SECRET": "set-here"}
    out = subprocess.run(
        [sys.executable, "-m", "shared.cli.main", "config", "check", "--config", str(config)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    warnings = [line for line in out.stdout.splitlines() if "webhook" in line]
    assert warnings == [
        "warning: MLFLOW_WEBHOOK_SECRET is not set: every webhook delivery to source mlflow is refused (401)"
    ]


def test_the_open_ops_warning_survives_its_own_redaction(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="modelops.auth"):
        make_app(tmp_path)
    [warning] = [r.getMessage() for r in caplog.records if r.name == "modelops.auth"]
    assert "***" not in warning and warning.endswith("(the Authorization header, scheme Bearer)")
