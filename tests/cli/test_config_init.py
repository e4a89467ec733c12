"""`modelops config init [--azure] [--path FILE] [--force]`: a starting config, never an accidental overwrite."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.cli.main import main
from shared.config.loader import AZURE_TEMPLATE, DEFAULT_CONFIG, load_config
from shared.errors import ConfigError

PLACEHOLDERS = {
    "<subscription-id>": "00000000-0000-0000-0000-000000000000",
    "<aml-resource-group>": "rg-ml",
    "<aml-workspace-name>": "ws-ml",
    "<online-endpoint-name>": "churn-online",
    "<databricks-workspace-url>": "https://adb-123.4.azuredatabricks.net",
    "<databricks-job-id>": "42",
    "<input-table>": "main.ml.features",
    "<output-table>": "main.ml.predictions",
    "<model-name>": "churn",
}


def filled(text: str) -> str:
    for placeholder, value in PLACEHOLDERS.items():
        text = text.replace(placeholder, value)
    return text


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELOPS_CONFIG", "MODELOPS_STATE_DIR", "WEBSITE_INSTANCE_ID", "WEBSITE_SITE_NAME"):
        monkeypatch.delenv(name, raising=False)


def test_init_writes_the_local_default_to_modelops_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["config", "init"]) == 0
    written = tmp_path / "modelops.yaml"
    assert written.read_text() == DEFAULT_CONFIG.read_text()
    out = capsys.readouterr().out
    assert "wrote modelops.yaml" in out and "modelops config check --config modelops.yaml" in out
    assert main(["config", "check", "--config", str(written)]) == 0


def test_init_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "mine.yaml"
    target.write_text("rules: []\n")
    assert main(["config", "init", "--path", str(target)]) == 2
    err = capsys.readouterr().err
    assert "already exists" in err and "--force" in err
    assert target.read_text() == "rules: []\n"
    assert main(["config", "init", "--path", str(target), "--force"]) == 0
    assert target.read_text() == DEFAULT_CONFIG.read_text()


def test_init_azure_writes_a_template_that_validates_once_the_placeholders_are_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "sub" / "azure.yaml"
    assert main(["config", "init", "--azure", "--path", str(target)]) == 0
    text = target.read_text()
    assert text == AZURE_TEMPLATE.read_text()
    out = capsys.readouterr().out
    assert "Azure template" in out and "<placeholder>" in out
    assert set(re.findall(r'"(<[a-z-]+>)"', text)) == set(PLACEHOLDERS)  # every one obviously named
    with pytest.raises(ConfigError):  # unfilled, it is refused rather than half-working
        load_config(target, env={})
    ready = tmp_path / "ready.yaml"
    ready.write_text(filled(text))
    assert not re.findall(r'"<[a-z-]+>"', ready.read_text())
    config = load_config(ready, env={})
    assert config.registries["aml"].kind == "azureml"
    assert config.deployments["online"].kind == "managed-online"
    assert config.batch["nightly"].kind == "databricks"
    assert config.rules and config.sources["azureml"].registry == "aml"
    assert config.cleanup.provider == "azure" and config.cleanup.apply is False
    assert config.cleanup.subscriptions == [PLACEHOLDERS["<subscription-id>"]]
