"""Invalid configuration is refused at start with the file, the key and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from shared.config.loader import DEFAULT_CONFIG, load_config
from shared.errors import ConfigError
from tests.support import ROOT

BASE = """
sources:
  mlflow: {tracking_uri: "http://127.0.0.1:5000"}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///x.db"}
deployments:
  local: {kind: local}
"""


def problems(tmp_path: Path, text: str) -> ConfigError:
    path = tmp_path / "modelops.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    assert str(path) in str(info.value)
    return info.value


class TestConfigErrors:
    def test_the_shipped_default_is_valid(self) -> None:
        config = load_config(DEFAULT_CONFIG, env={})
        assert config.rules and "local-aml" in config.registries

    @pytest.mark.parametrize(
        ("text", "key", "fix"),
        [
            (
                BASE + "rules:\n  - on: model_version.created\n    do: [{register: aml-prod}]\n",
                "rules[0].do[0].register",
                "use one of local-aml",
            ),
            (BASE + "rules:\n  - on: model.exploded\n    do: [{register: local-aml}]\n", "rules[0].on", "use one of"),
            (
                BASE + "rules:\n  - on: model_version.created\n    do: [{register: local-aml, deploy: local}]\n",
                "rules[0].do[0]",
                "exactly one",
            ),
            (BASE.replace("kind: local", "kind: lokal"), "deployments.local.kind", "set `kind:` to one of"),
            (BASE.replace("{kind: local}", "{port: 1}"), "deployments.local", "`kind:`"),
            (
                BASE.replace('tracking_uri: "sqlite:///x.db"', "trackin_uri: x"),
                "registries.local-aml.trackin_uri",
                "allowed:",
            ),
            (BASE.replace('tracking_uri: "sqlite:///x.db"', ""), "registries.local-aml.tracking_uri", "add it"),
            (BASE + "worker: {lease_seconds: -1}\n", "worker.lease_seconds", "lease on a claimed action"),
            (BASE + "sources:\n  other: {}\n", "line", "duplicate key"),
            (BASE + "rules: [\n", "line", "YAML"),
            ("sources:\n  kafka: {tracking_uri: x}\n", "sources.kafka", "give `kind:`, one of mlflow"),
            ("sources:\n  uc: {kind: databricks-uc, tracking_uri: databricks-uc}\n", "sources.uc", "set `poll: true`"),
            (
                "sources:\n  uc: {kind: databricks-uc, tracking_uri: x, poll: true, secret_setting: UC}\n",
                "sources.uc",
                "Unity Catalog sends no registry webhooks",
            ),
            (
                'registries:\n  r: {kind: mlflow, tracking_uri: "${NOT_SET_ANYWHERE}"}\n',
                "registries.r.tracking_uri",
                "NOT_SET_ANYWHERE",
            ),
        ],
    )
    def test_each_problem_names_key_and_fix(self, tmp_path: Path, text: str, key: str, fix: str) -> None:
        error = problems(tmp_path, text)
        assert any(k.startswith(key) for k, _, _ in error.problems), error.problems
        assert fix in str(error)

    def test_yaml_on_is_a_key_not_a_boolean(self, tmp_path: Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text(BASE + "rules:\n  - on: model_version.created\n    do: [{register: local-aml}]\n")
        assert load_config(path, env={}).rules[0].on == ["model_version.created"]

    def test_settings_are_expanded_with_defaults(self, tmp_path: Path) -> None:
        path = tmp_path / "c.yaml"
        path.write_text('sources:\n  mlflow: {tracking_uri: "${SRC:-http://127.0.0.1:5000}"}\n')
        assert load_config(path, env={}).sources["mlflow"].tracking_uri == "http://127.0.0.1:5000"
        assert load_config(path, env={"SRC": "http://h:1"}).sources["mlflow"].tracking_uri == "http://h:1"

    def test_config_check_cli_exits_2_with_the_explanation(self, tmp_path: Path) -> None:
        path = tmp_path / "bad.yaml"
        path.write_text(BASE.replace("kind: local", "kind: lokal"))
        out = subprocess.run(
            [sys.executable, "-m", "shared.cli.main", "--config", str(path), "config", "check"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 2
        assert str(path) in out.stderr and "deployments.local.kind" in out.stderr

    def test_missing_file_is_named(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="file not found"):
            load_config(tmp_path / "nope.yaml")
