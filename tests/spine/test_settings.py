"""App settings are read once, in Settings; a bad value is refused naming the setting and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.settings import Settings


class TestSettings:
    def test_every_setting_is_read_from_the_given_environment(self) -> None:
        settings = Settings.from_env(
            {
                "MODELOPS_STATE_DIR": "/srv/state",
                "MODELOPS_STATE_BACKEND": "AZURE",
                "AzureWebJobsStorage__accountName": "acct",
                "MODELOPS_LEDGER_TABLE": "ledgerx",
                "MODELOPS_OUTCOME_TOPIC_ENDPOINT": "https://t/api/events",
                "MODELOPS_OUTCOME_RETRIES": "7",
                "WEBSITE_RESOURCE_GROUP": "rg-app",
                "MODELOPS_MAX_BODY_BYTES": "2048",
            }
        )
        assert settings.state_dir == Path("/srv/state") and settings.state_backend == "azure"
        assert settings.storage.account_name == "acct" and settings.storage.connection is None
        assert settings.ledger_table == "ledgerx" and settings.actions_queue == "modelops-actions"
        assert settings.outcome_topic is not None and settings.outcome_topic.retries == 7
        assert settings.app_resource_group == "rg-app" and settings.max_body_bytes == 2048

    def test_the_cli_flags_override_the_same_settings(self) -> None:
        base = Settings.from_env({"MODELOPS_CONFIG": "a.yaml", "MODELOPS_STATE_DIR": "s1"})
        changed = base.with_overrides(config_path="b.yaml", state_dir=None)
        assert (changed.config_path, changed.state_dir) == ("b.yaml", Path("s1"))
        assert changed.config_env()["MODELOPS_STATE_DIR"] == "s1"

    @pytest.mark.parametrize(
        ("name", "value", "needle"),
        [
            ("MODELOPS_MAX_BODY_BYTES", "1MB", "not a whole number"),
            ("MODELOPS_WEBHOOK_MAX_SKEW_SECONDS", "five", "not a whole number"),
            ("MODELOPS_STATE_BACKEND", "cosmos", "unknown state backend"),
            ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "11", "is not 0..10"),
            ("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "lots", "not a number"),
            ("MODELOPS_AZURE_READ_TIMEOUT", "1m", "not a whole number"),
        ],
    )
    def test_a_bad_value_is_refused_naming_the_setting_and_the_fix(self, name: str, value: str, needle: str) -> None:
        with pytest.raises(ConfigError) as refused:
            Settings.from_env({name: value})
        text = str(refused.value)
        assert name in text and needle in text and "fix:" in text
