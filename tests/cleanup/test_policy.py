"""The decision table of one group at one instant (pure policy, replaceable clock)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TypedDict, Unpack

import pytest

from shared.cleanup.groups import Group, Lock
from shared.cleanup.planner import plan
from shared.cleanup.policy import Action, Policy, Reason
from shared.config.cleanup import CleanupConfig
from shared.timeparse import parse_duration, parse_timestamp

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OPT_IN = {"modelops-cleanup": "true"}
EXPIRED = {**OPT_IN, "expires-on": "2025-02-01"}
DUE = {**EXPIRED, "delete-after": "2025-02-28T00:00:00Z"}


def policy(**cfg: object) -> Policy:
    return Policy.from_config(CleanupConfig.model_validate(cfg))


class GroupFields(TypedDict, total=False):
    """The optional fields of a Group, as keyword arguments to group()."""

    location: str
    tags: Mapping[str, str]
    managed_by: str | None
    locks: tuple[Lock, ...]
    created_time: datetime | None
    provisioning_state: str | None


def group(name: str = "rg-a", **kw: Unpack[GroupFields]) -> Group:
    return Group(name=name, id=f"/subscriptions/s/resourceGroups/{name}", scope="s", **kw)


class TestStaleness:
    def test_absolute_expiry_in_the_past_marks_with_grace(self) -> None:
        d = policy(grace_period="PT6H").decide(group(tags=EXPIRED), NOW)
        assert (d.action, d.reason) == (Action.MARK, Reason.STALE)
        assert d.new_mark == "2025-03-01T18:00:00Z"

    def test_future_expiry_is_not_stale(self) -> None:
        d = policy().decide(group(tags={**OPT_IN, "expires-on": "2025-03-02T00:00:00Z"}), NOW)
        assert (d.action, d.reason) == (Action.SKIP, Reason.NOT_STALE)

    def test_ttl_counts_from_created_tag_before_created_time(self) -> None:
        tags = {**OPT_IN, "ttl": "P7D", "created-at": "2025-02-27"}
        d = policy().decide(group(tags=tags, created_time=NOW - timedelta(days=30)), NOW)
        assert d.action is Action.SKIP and d.expires_at == datetime(2025, 3, 6, tzinfo=UTC)

    def test_ttl_counts_from_created_time(self) -> None:
        d = policy().decide(group(tags={**OPT_IN, "ttl": "PT24H"}, created_time=NOW - timedelta(hours=25)), NOW)
        assert d.action is Action.MARK

    def test_ttl_without_any_creation_time_is_kept(self) -> None:
        d = policy().decide(group(tags={**OPT_IN, "ttl": "PT1H"}), NOW)
        assert (d.action, d.reason) == (Action.SKIP, Reason.NO_EXPIRY)

    def test_no_tags_kept_unless_default_ttl(self) -> None:
        old = group(tags=OPT_IN, created_time=NOW - timedelta(days=9))
        assert policy().decide(old, NOW).reason is Reason.NO_EXPIRY
        assert policy(default_ttl="P7D").decide(old, NOW).action is Action.MARK

    @pytest.mark.parametrize("tags", [{"expires-on": "soon"}, {"ttl": "7 days"}, {"ttl": "P1M"}])
    def test_unreadable_tags_never_mean_stale(self, tags: dict[str, str]) -> None:
        old = group(tags={**OPT_IN, **tags}, created_time=NOW - timedelta(days=99))
        d = policy().decide(old, NOW)
        assert (d.action, d.reason) == (Action.SKIP, Reason.UNREADABLE)


class TestTwoPhase:
    def test_mark_due_and_still_stale_deletes(self) -> None:
        d = policy().decide(group(tags=DUE), NOW)
        assert (d.action, d.reason) == (Action.DELETE, Reason.MARK_DUE)

    def test_mark_in_future_waits(self) -> None:
        d = policy().decide(group(tags={**EXPIRED, "delete-after": "2025-03-02"}), NOW)
        assert (d.action, d.reason) == (Action.SKIP, Reason.AWAITING_GRACE)

    def test_marked_but_no_longer_stale_unmarks(self) -> None:
        tags = {**DUE, "expires-on": "2026-01-01"}
        assert policy().decide(group(tags=tags), NOW).action is Action.UNMARK

    def test_unreadable_mark_restarts_the_grace_period(self) -> None:
        d = policy().decide(group(tags={**EXPIRED, "delete-after": "yesterday"}), NOW)
        assert d.action is Action.MARK

    def test_tag_names_and_opt_in_value_are_case_insensitive(self) -> None:
        tags = {"ModelOps-Cleanup": " True ", "Expires-On": "2025-02-01", "DELETE-AFTER": "2025-02-01"}
        assert policy().decide(group(tags=tags), NOW).action is Action.DELETE


class TestSafetyComesFirst:
    """Each rule refuses a group that would otherwise be deleted right now."""

    def test_baseline_is_deleted(self) -> None:
        assert policy().decide(group(tags=DUE), NOW).action is Action.DELETE

    @pytest.mark.parametrize(
        ("cfg", "kw", "reason"),
        [
            ({}, {"tags": {k: v for k, v in DUE.items() if k != "modelops-cleanup"}}, Reason.NOT_OPTED_IN),
            ({}, {"tags": {**DUE, "modelops-cleanup": "false"}}, Reason.NOT_OPTED_IN),
            ({"protected_names": ["RG-A"]}, {"tags": DUE}, Reason.PROTECTED_NAME),
            ({"protected_patterns": ["rg-*"]}, {"tags": DUE}, Reason.PROTECTED_PATTERN),
            ({"app_resource_group": "rg-a"}, {"tags": DUE}, Reason.HOSTS_APP),
            ({}, {"tags": DUE, "managed_by": "/subscriptions/s/workspaces/dbw"}, Reason.MANAGED),
            ({}, {"tags": DUE, "locks": (Lock("keep", "CanNotDelete", "/subscriptions/s"),)}, Reason.LOCKED),
            ({}, {"tags": DUE, "provisioning_state": "Deleting"}, Reason.DELETING),
        ],
    )
    def test_rule_refuses(self, cfg: dict[str, object], kw: GroupFields, reason: Reason) -> None:
        d = policy(**cfg).decide(group(**kw), NOW)
        assert (d.action, d.reason) == (Action.SKIP, reason)

    def test_locked_reason_reports_the_lock(self) -> None:
        lock = Lock("keep-me", "ReadOnly", "/subscriptions/s/resourceGroups/rg-a")
        assert "keep-me (ReadOnly)" in policy().decide(group(tags=DUE, locks=(lock,)), NOW).detail

    def test_app_group_from_app_setting(self) -> None:
        p = Policy.from_config(CleanupConfig(), app_group="RG-A")
        assert p.decide(group(tags=DUE), NOW).reason is Reason.HOSTS_APP


def test_cap_keeps_the_longest_marked_and_reports_the_rest() -> None:
    groups = [group(f"rg-{i:02}", tags={**EXPIRED, "delete-after": f"2025-02-{10 + i:02}"}) for i in range(10)]
    planned = plan(reversed(groups), policy(), NOW, cap=3)
    deleted = sorted(p.group.name for p in planned if p.decision.action is Action.DELETE)
    assert deleted == ["rg-00", "rg-01", "rg-02"]
    assert sum(p.decision.action is Action.OVER_CAP for p in planned) == 7


def test_durations_and_timestamps() -> None:
    assert parse_duration("P1DT12H") == timedelta(days=1, hours=12)
    assert parse_duration("P2W") == timedelta(days=14)
    assert parse_timestamp("2025-01-31T10:00:00+02:00") == datetime(2025, 1, 31, 8, tzinfo=UTC)
    with pytest.raises(ValueError, match="years or months"):
        parse_duration("P1M")
