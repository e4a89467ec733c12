"""The `cleanup:` section: policy as data, validated before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config.loader import load_config
from shared.errors import ConfigError

AZURE = """
cleanup:
  enabled: true
  apply: false
  provider: azure
  subscriptions: ["00000000-0000-0000-0000-000000000001"]
  opt_in_tag: {name: cleanup, value: allowed}
  grace_period: P2D
  default_ttl: P14D
  protected_names: [rg-platform]
  protected_patterns: ["prod-*", "*-shared"]
  max_deletions_per_run: 5
  delete_concurrency: 4
  arm_endpoint: https://management.usgovcloudapi.net/
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "modelops.yaml"
    path.write_text(text)
    return path


def test_shipped_default_is_a_dry_running_local_policy() -> None:
    cleanup = load_config(None).cleanup
    assert cleanup.provider == "local" and cleanup.apply is False


def test_full_azure_policy_loads(tmp_path: Path) -> None:
    cleanup = load_config(write(tmp_path, AZURE)).cleanup
    assert cleanup.arm_endpoint == "https://management.usgovcloudapi.net"
    assert cleanup.opt_in_tag.value == "allowed" and cleanup.max_deletions_per_run == 5


@pytest.mark.parametrize(
    ("change", "key", "says"),
    [
        ("grace_period: P2D", "cleanup.grace_period", "P1M' uses years or months"),
        ("default_ttl: P14D", "cleanup.default_ttl", "not an ISO 8601 duration"),
        ("max_deletions_per_run: 5", "cleanup.max_deletions_per_run", "greater than or equal"),
        ("arm_endpoint: https://management.usgovcloudapi.net/", "cleanup.arm_endpoint", "must be an https:// host"),
        ('protected_patterns: ["prod-*", "*-shared"]', "cleanup.protected_patterns", "protects every group"),
        (
            'subscriptions: ["00000000-0000-0000-0000-000000000001"]',
            "cleanup.subscriptions",
            "needs at least one subscription",
        ),
    ],
)
def test_errors_name_the_key_and_the_fix(tmp_path: Path, change: str, key: str, says: str) -> None:
    bad = {
        "cleanup.grace_period": "grace_period: P1M",
        "cleanup.default_ttl": "default_ttl: 2 weeks",
        "cleanup.max_deletions_per_run": "max_deletions_per_run: -1",
        "cleanup.arm_endpoint": "arm_endpoint: http://management.azure.com",
        "cleanup.protected_patterns": 'protected_patterns: ["*"]',
        "cleanup.subscriptions": "subscriptions: []",
    }[key]
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, AZURE.replace(change, bad)))
    message = str(caught.value)
    assert key in message and says in message
    # a type error gets a "(fix: ...)" hint; a check of ours says what to write in its own words
    assert "(fix: " in message or any(how in message for how in ("e.g.", "such as", "instead"))


@pytest.mark.parametrize("value", ['"yes"', '"no"', "1", "0", '"on"'])
def test_apply_and_enabled_take_true_or_false_only(tmp_path: Path, value: str) -> None:
    for key in ("apply", "enabled"):
        with pytest.raises(ConfigError, match=f"cleanup.{key}.*not a boolean; write true or false"):
            load_config(write(tmp_path, f"cleanup:\n  {key}: {value}\n"), env={})


def test_a_setting_may_say_true(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "cleanup:\n  apply: ${APPLY}\n"), env={"APPLY": "true"})
    assert config.cleanup.apply is True
