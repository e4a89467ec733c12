"""Validate against the champion, then wait for an approver, on the real stack (tests/gates/conftest.py)."""

from __future__ import annotations

import subprocess
import sys

import mlflow
import pytest
import requests
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from tests.gates.conftest import APPROVER, FEATURES, OPS, Gates
from tests.support import ROOT, unique, wait_for


def _good(gates: Gates) -> LogisticRegression:
    return LogisticRegression().fit(gates.data.train_x, gates.data.train_y)


def _weak(gates: Gates) -> DummyClassifier:
    return DummyClassifier(strategy="most_frequent").fit(gates.data.train_x, gates.data.train_y)


def _holdout_accuracy(gates: Gates, model: object) -> float:
    holdout = gates.data.holdout
    return float(accuracy_score(holdout["label"], model.predict(holdout[FEATURES])))  # type: ignore[attr-defined]


class TestValidation:
    def test_a_better_challenger_passes_against_the_champion_and_deploys_once_approved(self, gates: Gates) -> None:
        name = unique("churn-better")
        weak, good = _weak(gates), _good(gates)
        champion = gates.register(name, weak)
        challenger = gates.register(name, good)
        gates.alias(name, champion, "champion")
        gates.alias(name, challenger, "challenger")

        validate = gates.until(name, challenger, "validate", "succeeded")
        out = validate["outputs"]
        assert out["passed"] is True and out["baseline_version"] == champion and out["rows"] == 400
        # MLflow's numbers are sklearn's own on the holdout, for both models
        assert out["candidate_metrics"]["accuracy_score"] == pytest.approx(_holdout_accuracy(gates, good), abs=1e-12)
        assert out["baseline_metrics"]["accuracy_score"] == pytest.approx(_holdout_accuracy(gates, weak), abs=1e-12)
        [verdict] = out["verdicts"]
        assert verdict["metric"] == "accuracy_score" and verdict["passed"] is True
        tags = mlflow.MlflowClient(tracking_uri=gates.mlflow).get_model_version(name, challenger).tags
        assert tags["modelops.validation.status"] == "passed"
        assert float(tags["modelops.validation.accuracy_score"]) == pytest.approx(_holdout_accuracy(gates, good))

        approve = gates.until(name, challenger, "approve", "waiting")
        pending = {p["action_id"]: p for p in gates.get("/api/approvals")["approvals"]}
        evidence = pending[approve["id"]]
        assert evidence["validation"]["outputs"]["candidate_metrics"] == out["candidate_metrics"]
        assert evidence["source_link"] == f"{gates.mlflow}/#/models/{name}/versions/{challenger}"
        assert gates.actions(name, challenger)["deploy"]["status"] == "queued"

        # deciding needs the approver credential, and a decision that says what it is
        assert gates.decide(approve["id"], {"decision": "approve"}, token=None).status_code == 401
        refused = gates.decide(approve["id"], {"decision": "approve"}, token=OPS)
        assert refused.status_code == 403 and "MODELOPS_APPROVER_TOKEN" in refused.json()["error"]
        maybe = gates.decide(approve["id"], {"decision": "maybe"})
        assert maybe.status_code == 400 and maybe.json()["problems"][0]["field"].endswith("decision")
        assert gates.action(approve["id"])["status"] == "waiting"

        decided = gates.decide(approve["id"], {"decision": "approve", "comment": "beats the champion"})
        assert decided.status_code == 200, decided.text
        deploy = gates.until(name, challenger, "deploy", "succeeded", timeout=600)
        scored = requests.post(
            deploy["outputs"]["scoring_url"],
            json={"dataframe_split": gates.data.holdout[FEATURES].head(4).to_dict(orient="split")},
            timeout=60,
        )
        assert scored.status_code == 200 and len(scored.json()["predictions"]) == 4

        done = gates.action(approve["id"])
        assert done["status"] == "succeeded"
        assert done["outputs"]["decision"] == "approve" and done["outputs"]["comment"] == "beats the champion"
        assert done["outputs"]["decided_by"] == "approver token (MODELOPS_APPROVER_TOKEN)"
        assert any("approved by approver token" in line["message"] for line in done["log"])
        again = gates.decide(approve["id"], {"decision": "reject"})
        assert again.status_code == 409 and "already approved" in again.json()["error"]
        assert gates.action(approve["id"])["outputs"]["decision"] == "approve"

    def test_a_worse_challenger_fails_with_its_verdicts_and_nothing_after_it_runs(self, gates: Gates) -> None:
        name = unique("churn-worse")
        champion = gates.register(name, _good(gates))
        challenger = gates.register(name, _weak(gates))
        gates.alias(name, champion, "champion")
        gates.alias(name, challenger, "challenger")

        validate = gates.until(name, challenger, "validate", "failed")
        assert validate["error"].startswith("permanent error: validation holdout failed: accuracy_score=")
        [verdict] = validate["outputs"]["verdicts"]
        assert verdict["passed"] is False and verdict["baseline"] == pytest.approx(
            _holdout_accuracy(gates, _good(gates))
        )
        kinds = gates.actions(name, challenger)
        assert kinds["approve"]["status"] == "skipped" and kinds["deploy"]["status"] == "skipped"
        tags = mlflow.MlflowClient(tracking_uri=gates.mlflow).get_model_version(name, challenger).tags
        assert tags["modelops.validation.status"] == "failed"

    def test_the_first_model_validates_on_thresholds_only_and_a_cli_rejection_skips_the_deploy(
        self, gates: Gates
    ) -> None:
        name = unique("churn-first")
        good = _good(gates)
        first = gates.register(name, good)
        gates.alias(name, first, "challenger")

        out = gates.until(name, first, "validate", "succeeded")["outputs"]
        assert "baseline_version" not in out and "baseline_metrics" not in out  # None: left out
        assert out["note"] == "no version holds champion yet (first model): thresholds only"
        assert out["candidate_metrics"]["accuracy_score"] == pytest.approx(_holdout_accuracy(gates, good), abs=1e-12)

        approve = gates.until(name, first, "approve", "waiting")
        listed = subprocess.run(
            [sys.executable, "-m", "shared.cli.main", "approvals", "-o", "json"],
            cwd=ROOT,
            env=gates.reactor.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert listed.returncode == 0, listed.stderr
        assert approve["id"] in listed.stdout
        cli = subprocess.run(
            [sys.executable, "-m", "shared.cli.main", "approve", approve["id"], "--reject", "--comment", "not yet"],
            cwd=ROOT,
            env=gates.reactor.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr
        rejected = gates.until(name, first, "approve", "failed")
        assert "rejected by" in rejected["error"] and "(CLI): not yet" in rejected["error"]
        assert gates.actions(name, first)["deploy"]["status"] == "skipped"


class TestApprovalWaits:
    def test_a_pending_approval_survives_a_restart_and_is_approved_by_the_source_tag(self, gates: Gates) -> None:
        name = unique("churn-tag")
        version = gates.register(name, _good(gates))
        gates.alias(name, version, "candidate")
        approve = gates.until(name, version, "approve", "waiting")

        gates.reactor.stop()
        gates.reactor.start()
        assert approve["id"] in [p["action_id"] for p in gates.get("/api/approvals")["approvals"]]
        assert gates.action(approve["id"])["status"] == "waiting"

        # the tag's webhook wakes it (its re-check is an hour away); the approval reads the tag itself
        mlflow.MlflowClient(tracking_uri=gates.mlflow).set_model_version_tag(
            name, version, "approval.owners", "approved"
        )
        done = gates.until(name, version, "approve", "succeeded", timeout=120)
        assert done["outputs"]["via"] == "tag"
        assert done["outputs"]["decided_by"] == "tag approval.owners=approved on source mlflow"

    def test_an_approval_nobody_decides_expires(self, gates: Gates) -> None:
        name = unique("churn-quick")
        version = gates.register(name, _weak(gates))
        gates.alias(name, version, "quick")
        failed = gates.until(name, version, "approve", "failed", timeout=120)
        assert "approval expired" in failed["error"]
        assert gates.decide(failed["id"], {"decision": "approve"}).status_code == 409

    def test_deciding_on_a_step_that_is_no_approval_is_refused(self, gates: Gates) -> None:
        missing = gates.decide("act_missing", {"decision": "approve"})
        assert missing.status_code == 404 and set(missing.json()) == {"error", "problems"}
        wait_for(lambda: gates.get("/api/health")["status"] == "ok")
        assert requests.post(f"{gates.url}/api/actions/x/approve", json={}, timeout=10).status_code == 401
        empty = gates.decide("act_missing", {})
        assert empty.status_code == 400
        assert APPROVER not in empty.text
