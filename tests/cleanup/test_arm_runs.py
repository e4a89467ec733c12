"""Whole runs through the real azure-mgmt-resource client against the ARM contract server."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from shared.cleanup.report import format_report_table
from shared.cleanup.runner import run_cleanup
from shared.config.schema import ReactorConfig
from tests.cleanup.conftest import NOW, OPT_IN, SUB, SUB2
from tests.contract.arm_server import ArmContract
from tests.contract.credentials import StaticTokenCredential

Build = Callable[..., ReactorConfig]
PAST, FUTURE = "2025-01-15T00:00:00Z", "2025-06-01T00:00:00Z"
EXPIRED = {**OPT_IN, "expires-on": "2025-02-01"}
# category -> (group kwargs, expected decision, expected reason)
CATEGORIES: dict[str, tuple[dict[str, Any], str, str]] = {
    "not-opted": ({"tags": {"expires-on": "2025-01-01", "delete-after": PAST}}, "skip", "not-opted-in"),
    "opted-out": ({"tags": {**EXPIRED, "modelops-cleanup": "no", "delete-after": PAST}}, "skip", "not-opted-in"),
    "fresh": ({"tags": {**OPT_IN, "expires-on": FUTURE}}, "skip", "not-stale"),
    "fresh-ttl": ({"tags": {**OPT_IN, "ttl": "P30D"}, "created_time": NOW - timedelta(days=1)}, "skip", "not-stale"),
    "revived": ({"tags": {**OPT_IN, "expires-on": FUTURE, "delete-after": PAST}}, "unmark", "no-longer-stale"),
    "stale": ({"tags": EXPIRED}, "mark", "stale"),
    "stale-ttl": ({"tags": {**OPT_IN, "ttl": "PT24H", "created-at": "2025-02-27T00:00:00Z"}}, "mark", "stale"),
    "stale-created": ({"tags": {**OPT_IN, "ttl": "P7D"}, "created_time": NOW - timedelta(days=8)}, "mark", "stale"),
    "grace": ({"tags": {**EXPIRED, "delete-after": FUTURE}}, "skip", "awaiting-grace"),
    "due": ({"tags": {**EXPIRED, "delete-after": PAST}}, "delete", "mark-due"),
    "prod": ({"tags": {**EXPIRED, "delete-after": PAST}}, "skip", "protected-pattern"),
    "managed": (
        {
            "tags": {**EXPIRED, "delete-after": PAST},
            "managed_by": "/subscriptions/x/resourceGroups/y/providers/Microsoft.ContainerService/managedClusters/aks",
        },
        "skip",
        "managed",
    ),
    "locked": ({"tags": {**EXPIRED, "delete-after": PAST}}, "skip", "locked"),
    "no-expiry": ({"tags": OPT_IN}, "skip", "no-expiry"),
    "unreadable": ({"tags": {**OPT_IN, "expires-on": "someday"}}, "skip", "unreadable-tag"),
}


def seed(contract: ArmContract, count: int) -> dict[tuple[str, str], tuple[str, str]]:
    """``count`` groups over two subscriptions; returns (sub, name) -> expected decision."""
    expected = {}
    cats = list(CATEGORIES)
    for i in range(count):
        cat = cats[i % len(cats)]
        sub = SUB if i % 2 == 0 else SUB2
        name = f"{cat}-{i:04}"
        kwargs, decision, reason = CATEGORIES[cat]
        group = contract.add_group(sub, name, **copy.deepcopy(kwargs))
        if cat == "locked":
            contract.add_lock(group["id"], f"lock-{i}")
        expected[(sub, name)] = (decision, reason)
    return expected


def decisions(report: Any) -> dict[tuple[str, str], tuple[str, str]]:
    return {(r.scope, r.name): (r.decision, r.reason) for r in report.rows}


def run(cfg: ReactorConfig, credential: StaticTokenCredential, tmp: Path, *, apply: bool = True, **kw: Any) -> Any:
    kw.setdefault("now", NOW)
    return run_cleanup(cfg, apply=apply, state_dir=tmp, credential=credential, **kw)


def test_dry_run_then_applied_run_over_hundreds_of_groups(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
) -> None:
    contract, url = arm
    expected = seed(contract, 330)
    before = copy.deepcopy(contract.state.groups)
    cfg = azure_config(subscriptions=[SUB, SUB2], protected_patterns=["prod-*"])

    dry = run(cfg, credential, tmp_path, apply=False)
    assert decisions(dry) == expected
    assert contract.writes() == []
    assert contract.state.groups == before
    # 165 groups per subscription, 50 per page: every page was fetched through nextLink
    log = contract.state.log
    lists = [e for e in log if e.method == "GET" and e.path.endswith("resourcegroups")]
    assert len(lists) == 2 * 4 and all("createdTime" in e.query for e in lists)
    assert credential.scopes[0] == (f"{url}/.default",)

    applied = run(cfg, credential, tmp_path)
    assert decisions(applied) == expected
    statuses = {(r.scope, r.name): r.status for r in applied.rows}
    want = {"mark": "marked", "unmark": "unmarked", "delete": "finished", "skip": None}
    assert statuses == {key: want[d] for key, (d, _) in expected.items()}
    mark = "2025-03-02T12:00:00Z"  # NOW + grace P1D
    for (sub, name), (decision, _) in expected.items():
        group = contract.group(sub, name)
        old_tags = before[(sub.lower(), name.lower())]["tags"]
        if decision == "delete":
            assert group is None
            continue
        assert group is not None
        if decision == "mark":
            assert group["tags"] == {**old_tags, "delete-after": mark}
        elif decision == "unmark":
            assert group["tags"] == {k: v for k, v in old_tags.items() if k != "delete-after"}
        else:
            assert group["tags"] == old_tags
    deleted = sum(d == "delete" for d, _ in expected.values())
    assert deleted == 22 and f"delete={deleted}" in format_report_table(applied)


def test_two_phase_mark_then_delete_after_grace(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
) -> None:
    contract, _ = arm
    contract.add_group(SUB, "rg-temp", tags={**OPT_IN, "ttl": "P3D"}, created_time=NOW - timedelta(days=4))
    cfg = azure_config(grace_period="P1D")
    first = run(cfg, credential, tmp_path)
    assert (first.row("rg-temp").decision, first.row("rg-temp").status) == ("mark", "marked")
    marked = contract.group(SUB, "rg-temp")
    assert marked is not None
    assert marked["tags"]["delete-after"] == "2025-03-02T12:00:00Z"

    early = run(cfg, credential, tmp_path, now=NOW + timedelta(hours=12))
    assert early.row("rg-temp").reason == "awaiting-grace"
    assert contract.group(SUB, "rg-temp") is not None

    due = run(cfg, credential, tmp_path, now=NOW + timedelta(days=1, minutes=1))
    row = due.row("rg-temp")
    assert (row.decision, row.status) == ("delete", "finished")
    assert row.started_at and row.finished_at
    assert contract.group(SUB, "rg-temp") is None


def test_mark_is_removed_when_the_group_stops_being_stale(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
) -> None:
    contract, _ = arm
    group = contract.add_group(SUB, "rg-extended", tags={**EXPIRED, "owner": "ana"})
    cfg = azure_config()
    run(cfg, credential, tmp_path)
    assert "delete-after" in group["tags"]
    group["tags"]["expires-on"] = "2025-12-31"  # the owner extends it
    later = run(cfg, credential, tmp_path, now=NOW + timedelta(days=2))
    assert (later.row("rg-extended").decision, later.row("rg-extended").status) == ("unmark", "unmarked")
    assert group["tags"] == {**OPT_IN, "expires-on": "2025-12-31", "owner": "ana"}


def test_failed_deletes_do_not_stop_the_others(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
) -> None:
    contract, _ = arm
    due = {**EXPIRED, "delete-after": PAST}
    for name in ("rg-flaky", "rg-broken", "rg-lro-fails", "rg-ok-1", "rg-ok-2", "rg-ok-3"):
        contract.add_group(SUB, name, tags=due)
    contract.state.delete_5xx.update({"rg-flaky": 2, "rg-broken": 1000})
    contract.state.failing_operations.add("rg-lro-fails")
    report = run(azure_config(max_retries=3, delete_concurrency=2), credential, tmp_path)

    status = {r.name: (r.status, r.error) for r in report.rows}
    assert status["rg-flaky"] == ("finished", None)  # transient 5xx retried by the pipeline
    assert status["rg-broken"][0] == "failed" and "500" in status["rg-broken"][1]
    assert status["rg-lro-fails"][0] == "failed"
    assert "ResourceGroupDeletionBlocked" in status["rg-lro-fails"][1]
    assert all(status[f"rg-ok-{i}"] == ("finished", None) for i in (1, 2, 3))
    attempts = [e for e in contract.state.log if e.method == "DELETE" and "rg-broken" in e.path]
    assert len(attempts) == 4  # the first try and max_retries=3, then it is given up
    assert contract.group(SUB, "rg-broken") is not None
    assert report.status_counts() == {"finished": 4, "failed": 2}


def test_throttling_honours_retry_after(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
) -> None:
    contract, _ = arm
    contract.add_group(SUB, "rg-throttled", tags={**EXPIRED, "delete-after": PAST})
    contract.state.throttle_retry_after = "1"
    contract.throttle("GET", r"/resourcegroups$", 1)
    contract.throttle("DELETE", r"/rg-throttled$", 1)
    report = run(azure_config(), credential, tmp_path)
    assert report.row("rg-throttled").status == "finished"
    deletes = [e for e in contract.state.log if e.method == "DELETE"]
    assert [e.status for e in deletes] == [429, 202]
    # a lower bound only: the retry may come later on a busy machine, never sooner
    assert deletes[1].at - deletes[0].at >= 0.95


def test_a_subscription_that_cannot_be_listed_is_reported_and_left_alone(
    arm: tuple[ArmContract, str],
    azure_config: Build,
    credential: StaticTokenCredential,
    tmp_path: Path,
) -> None:
    contract, _ = arm
    contract.add_group(SUB, "rg-a", tags={**EXPIRED, "delete-after": PAST})
    contract.add_group(SUB2, "rg-b", tags={**EXPIRED, "delete-after": PAST})
    contract.state.throttle_retry_after = "0.01"
    contract.throttle("GET", rf"/subscriptions/{SUB2}/resourcegroups$", 100)
    report = run(azure_config(subscriptions=[SUB, SUB2], max_retries=2), credential, tmp_path)
    assert [r.name for r in report.rows] == ["rg-a"]
    assert report.row("rg-a").status == "finished"
    assert len(report.errors) == 1 and SUB2 in report.errors[0] and "429" in report.errors[0]
    assert contract.group(SUB2, "rg-b") is not None
    assert report.to_dict()["errors"] == report.errors


def test_a_long_retry_after_is_reported_with_the_delay_not_sat_out(
    arm: tuple[ArmContract, str], azure_config: Build, credential: StaticTokenCredential, tmp_path: Path
) -> None:
    contract, _ = arm
    contract.state.throttle_retry_after = "120"  # longer than the 10 s an SDK client may sit out
    contract.throttle("DELETE", r"/rg-slow$", 1)
    contract.add_group(SUB, "rg-slow", tags={**EXPIRED, "delete-after": PAST})
    started = time.monotonic()
    report = run(azure_config(), credential, tmp_path)
    assert time.monotonic() - started < 60, "the run sat out the Retry-After"
    row = report.row("rg-slow")
    assert row.status == "failed" and row.error is not None
    assert "429" in row.error and "asked to retry after 120s" in row.error
    assert contract.group(SUB, "rg-slow") is not None
    assert [e.status for e in contract.state.log if e.method == "DELETE"] == [429]
