"""Every safety rule, through the real azure-mgmt-resource client against the ARM contract.

Each case seeds a group that one applied run would delete (opted in, expired, mark due) plus
exactly one protective feature; without the rule, the group would be gone.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.cleanup.runner import run_cleanup
from shared.config.schema import ReactorConfig
from shared.settings import Settings
from tests.cleanup.conftest import NOW, OPT_IN, SUB
from tests.contract.arm_server import ArmContract
from tests.contract.credentials import StaticTokenCredential

DUE = {**OPT_IN, "expires-on": "2025-01-01", "delete-after": "2025-02-01T00:00:00Z"}
DATABRICKS = f"/subscriptions/{SUB}/resourceGroups/ml/providers/Microsoft.Databricks/workspaces/ws"
Build = Callable[..., ReactorConfig]


def run(cfg: ReactorConfig, credential: StaticTokenCredential, tmp: Path, **kw: Any):  # noqa: ANN201
    kw["app_group"] = Settings.from_env(kw.pop("env", {})).app_resource_group
    return run_cleanup(cfg, apply=True, state_dir=tmp, now=NOW, credential=credential, **kw)


def touched(contract: ArmContract, name: str) -> list[str]:
    mine = f"/{name}".lower()
    return [f"{e.method} {e.path}" for e in contract.writes() if mine in e.path.lower()]


def test_control_group_is_deleted(
    arm: tuple[ArmContract, str], azure_config: Build, credential: StaticTokenCredential, tmp_path: Path
) -> None:
    contract, _ = arm
    contract.add_group(SUB, "rg-due", tags=DUE)
    report = run(azure_config(), credential, tmp_path)
    assert report.row("rg-due").status == "finished"
    assert contract.group(SUB, "rg-due") is None


@pytest.mark.parametrize(
    ("name", "group_kw", "cleanup_kw", "env", "reason"),
    [
        ("rg-no-tag", {"tags": {k: v for k, v in DUE.items() if k != "modelops-cleanup"}}, {}, {}, "not-opted-in"),
        ("rg-opted-out", {"tags": {**DUE, "modelops-cleanup": "false"}}, {}, {}, "not-opted-in"),
        ("rg-named", {"tags": DUE}, {"protected_names": ["RG-NAMED"]}, {}, "protected-name"),
        ("prod-data", {"tags": DUE}, {"protected_patterns": ["prod-*"]}, {}, "protected-pattern"),
        ("databricks-rg-ws", {"tags": DUE, "managed_by": DATABRICKS}, {}, {}, "managed"),
        ("rg-app", {"tags": DUE}, {"app_resource_group": "rg-app"}, {}, "hosts-this-app"),
        ("rg-app2", {"tags": DUE}, {}, {"WEBSITE_RESOURCE_GROUP": "RG-APP2"}, "hosts-this-app"),
    ],
)
def test_rule_keeps_group(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
    name: str,
    group_kw: dict[str, Any],
    cleanup_kw: dict[str, Any],
    env: dict[str, str],
    reason: str,
) -> None:
    contract, _ = arm
    contract.add_group(SUB, name, **group_kw)
    report = run(azure_config(**cleanup_kw), credential, tmp_path, env=env)
    row = report.row(name)
    assert (row.decision, row.reason, row.status) == ("skip", reason, None)
    assert contract.group(SUB, name) is not None
    assert touched(contract, name) == []


@pytest.mark.parametrize("where", ["group", "resource", "subscription"])
def test_locked_group_is_reported_and_kept(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
    where: str,
) -> None:
    contract, _ = arm
    group = contract.add_group(SUB, "rg-locked", tags=DUE)
    scope = {
        "group": group["id"],
        "subscription": f"/subscriptions/{SUB}",
        "resource": group["id"] + "/providers/Microsoft.Storage/storageAccounts/st1",
    }[where]
    contract.add_lock(scope, "do-not-delete")
    row = run(azure_config(), credential, tmp_path).row("rg-locked")
    assert (row.decision, row.reason) == ("skip", "locked")
    assert f"do-not-delete (CanNotDelete) on {scope}" in row.detail
    assert contract.group(SUB, "rg-locked") is not None
    assert touched(contract, "rg-locked") == []


def test_lock_added_after_listing_is_scope_locked_and_not_retried(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
) -> None:
    contract, _ = arm
    group = contract.add_group(SUB, "rg-race", tags=DUE)
    contract.add_group(SUB, "rg-other", tags=DUE)

    def lock_after_planning(message: str) -> None:
        if message.startswith("planned"):
            contract.add_lock(group["id"], "late-lock")

    report = run(azure_config(), credential, tmp_path, progress=lock_after_planning)
    row = report.row("rg-race")
    assert row.status == "skipped-locked" and "ScopeLocked" in (row.error or "")
    deletes = [e for e in contract.state.log if e.method == "DELETE" and "rg-race" in e.path]
    assert [e.status for e in deletes] == [409]  # reported, not fought
    assert contract.group(SUB, "rg-race") is not None
    assert report.row("rg-other").status == "finished"


def test_cap_limits_deletions_per_run(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
) -> None:
    contract, _ = arm
    for i in range(12):
        contract.add_group(SUB, f"rg-{i:02}", tags={**DUE, "delete-after": f"2025-02-{i + 1:02}"})
    report = run(azure_config(max_deletions_per_run=5), credential, tmp_path)
    assert report.counts()["delete"] == 5 and report.counts()["over-cap"] == 7
    left = sorted(name for (_, name) in contract.state.groups)
    assert left == [f"rg-{i:02}" for i in range(5, 12)]  # the longest-marked went first
    assert len([e for e in contract.state.log if e.method == "DELETE"]) == 5


def test_dry_run_writes_nothing(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
) -> None:
    contract, _ = arm
    contract.add_group(SUB, "rg-due", tags=DUE)
    contract.add_group(SUB, "rg-new", tags={**OPT_IN, "expires-on": "2025-01-01"})
    report = run_cleanup(azure_config(), apply=False, state_dir=tmp_path, now=NOW, credential=credential)
    assert report.dry_run and report.row("rg-due").status == "planned"
    assert report.row("rg-new").decision == "mark"
    assert contract.writes() == []
    unmarked = contract.group(SUB, "rg-new")
    assert unmarked is not None
    assert "delete-after" not in unmarked["tags"]
    body = json.loads(json.dumps(report.to_dict()))  # what POST /api/cleanup returns
    assert body["dry_run"] is True and body["counts"]["delete"] == 1
    assert {g["name"]: g["status"] for g in body["groups"]} == {"rg-due": "planned", "rg-new": "planned"}
