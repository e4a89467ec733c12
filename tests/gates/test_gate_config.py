"""Gate config refused at start, naming file, key and fix; `modelops plan` explains the gates."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config.loader import load_config
from shared.errors import ConfigError
from shared.service.whatif import from_fields, what_if

BASE = """
sources:
  mlflow: {tracking_uri: "http://127.0.0.1:5000"}
deployments:
  local: {kind: local}
"""

GATES = """
validations:
  holdout:
    data: holdout.parquet
    targets: label
    model_type: classifier
    baseline: champion
    thresholds:
      accuracy_score: {threshold: 0.8, min_absolute_change: 0.01, greater_is_better: true}
approvals:
  owners: {expires: PT30S, tag: approval.owners}
"""

RULE = """
rules:
  - on: model_version.alias_set
    alias: challenger
    do: [{validate: %s}, {approve: %s}, {deploy: local}]
"""


def refused(tmp_path: Path, text: str) -> list[tuple[str, str, str]]:
    path = tmp_path / "modelops.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in str(info.value)
    return info.value.problems


class TestGateConfig:
    def test_an_unknown_validation_or_approval_name_is_refused_with_the_known_ones(self, tmp_path: Path) -> None:
        found = refused(tmp_path, BASE + GATES + RULE % ("hold-out", "owner"))
        assert found[0][:2] == ("rules[0].do[0].validate", "no validations entry named 'hold-out'")
        assert "holdout" in found[0][2]
        assert found[1][:2] == ("rules[0].do[1].approve", "no approvals entry named 'owner'")
        assert "owners" in found[1][2]

    def test_a_threshold_on_a_metric_the_model_type_cannot_produce_is_refused(self, tmp_path: Path) -> None:
        text = BASE + GATES.replace("accuracy_score:", "r2_score:") + RULE % ("holdout", "owners")
        [(key, problem, fix)] = refused(tmp_path, text)
        assert key == "validations.holdout.thresholds.r2_score"
        assert "a classifier does not produce 'r2_score'" in problem and "accuracy_score" in problem
        assert "model_type" in fix

    def test_a_validation_without_data_is_refused(self, tmp_path: Path) -> None:
        text = BASE + GATES.replace("    data: holdout.parquet\n", "") + RULE % ("holdout", "owners")
        [(key, problem, fix)] = refused(tmp_path, text)
        assert key == "validations.holdout.data" and "required" in problem.lower()
        assert "Parquet/CSV" in fix

    def test_a_threshold_needs_greater_is_better_and_a_bar(self, tmp_path: Path) -> None:
        text = BASE + GATES.replace(", greater_is_better: true", "") + RULE % ("holdout", "owners")
        [(key, _, _)] = refused(tmp_path, text)
        assert key == "validations.holdout.thresholds.accuracy_score.greater_is_better"

    def test_a_validation_naming_a_secret_for_the_models_process_is_refused(self, tmp_path: Path) -> None:
        text = BASE + GATES + RULE % ("holdout", "owners")
        secret = text.replace(
            '{tracking_uri: "http://127.0.0.1:5000"}',
            '{tracking_uri: "http://127.0.0.1:5000", secret_setting: TEAM_SECRET}',
        )
        [(key, problem, fix)] = refused(
            tmp_path, secret.replace("    baseline: champion\n", "    baseline: champion\n    env: [TEAM_SECRET]\n")
        )
        assert key == "validations.holdout.env" and "webhook secret of source 'mlflow'" in problem
        assert fix == "remove TEAM_SECRET from env:"
        [(key, problem, _)] = refused(
            tmp_path,
            text.replace("    baseline: champion\n", "    baseline: champion\n    env: [MODELOPS_OPS_TOKEN]\n"),
        )
        assert key == "validations.holdout.env" and "MODELOPS_OPS_TOKEN" in problem

    def test_a_change_of_zero_is_refused_as_mlflow_refuses_it(self, tmp_path: Path) -> None:
        text = (
            BASE + GATES.replace("min_absolute_change: 0.01", "min_absolute_change: 0") + RULE % ("holdout", "owners")
        )
        [(key, problem, _)] = refused(tmp_path, text)
        assert (
            key == "validations.holdout.thresholds.accuracy_score.min_absolute_change" and "greater than 0" in problem
        )

    def test_plan_says_which_validation_runs_and_which_steps_wait_for_approval(self, tmp_path: Path) -> None:
        path = tmp_path / "modelops.yaml"
        path.write_text(BASE + GATES + RULE % ("holdout", "owners"))
        config = load_config(path, env={})
        event = from_fields(
            config, kind="model_version.alias_set", model_name="churn", model_version="3", alias="challenger"
        )
        explained = what_if(config, event)
        gates = {a["kind"]: a["gate"] for a in explained["actions"] if a.get("gate")}
        assert gates["validate"].startswith("validates churn v3 on holdout.parquet against the holder of champion")
        assert "accuracy_score >= 0.8" in gates["validate"] and "+0.01 over the baseline" in gates["validate"]
        assert gates["approve"] == (
            "waits for approval owners (expires after PT30S), or tag approval.owners=approved on the source version;"
            " then deploy local"
        )
