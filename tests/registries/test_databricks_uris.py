"""Databricks registries become per-registry databricks-sdk profiles (no global DATABRICKS_HOST/TOKEN)."""

from __future__ import annotations

import configparser
import os
from pathlib import Path

import pytest

from shared.adapters.registry_uris import registry_uris
from shared.config.loader import load_config
from shared.errors import ConfigError, PermanentError


def _registry(tmp_path: Path, body: str) -> object:
    path = tmp_path / "modelops.yaml"
    path.write_text("registries:\n  dbx:\n" + "".join(f"    {line}\n" for line in body.splitlines()))
    return load_config(path, env={}).registries["dbx"]


def test_a_token_registry_gets_its_own_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABRICKS_CONFIG_FILE", raising=False)
    monkeypatch.setenv("DBX_PAT", "dapi-contract")
    uc = _registry(
        tmp_path, "kind: databricks-uc\nhost: https://adb-1.2.azuredatabricks.net/\nauth: token\ntoken_setting: DBX_PAT"
    )
    tracking, registry = registry_uris(uc)  # type: ignore[arg-type]
    profile = tracking.removeprefix("databricks://")
    assert registry == f"databricks-uc://{profile}"
    parsed = configparser.ConfigParser()
    parsed.read(os.environ["DATABRICKS_CONFIG_FILE"])
    assert dict(parsed[profile]) == {
        "host": "https://adb-1.2.azuredatabricks.net",
        "auth_type": "pat",
        "token": "dapi-contract",
    }
    assert Path(os.environ["DATABRICKS_CONFIG_FILE"]).stat().st_mode & 0o077 == 0


def test_an_empty_token_setting_says_what_to_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBX_EMPTY", raising=False)
    cfg = _registry(
        tmp_path, "kind: databricks\nhost: https://adb-1.2.azuredatabricks.net\nauth: token\ntoken_setting: DBX_EMPTY"
    )
    with pytest.raises(PermanentError, match="app setting DBX_EMPTY .* is empty"):
        registry_uris(cfg)  # type: ignore[arg-type]


def test_token_auth_without_a_setting_name_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="token_setting"):
        _registry(tmp_path, "kind: databricks\nhost: https://adb-1.2.azuredatabricks.net\nauth: token")
