"""Properties of the staleness rules, whatever the tags, names and clocks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.cleanup.groups import Group, Lock
from shared.cleanup.planner import plan
from shared.cleanup.policy import Action, Policy
from shared.config.cleanup import CleanupConfig
from shared.timeparse import format_timestamp

TAGS = ["modelops-cleanup", "ModelOps-Cleanup", "expires-on", "ttl", "created-at", "delete-after", "owner"]
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))
durations = st.builds(
    lambda n, u: f"P{n}D" if u == "D" else f"PT{n}{u}", st.integers(0, 500), st.sampled_from(["D", "H", "M", "S"])
)
tag_values = st.one_of(
    st.sampled_from(["true", "TRUE", " true ", "false", "yes", "", "1"]),
    moments.map(format_timestamp),
    moments.map(lambda m: m.date().isoformat()),
    durations,
    st.text(max_size=12),
)
names = st.one_of(
    st.sampled_from(["prod-db", "app-rg", "keep", "rg-1", "PROD-x"]),
    st.from_regex(r"[a-zA-Z0-9_.()-]{1,20}", fullmatch=True),
)
locks = st.lists(
    st.builds(Lock, st.text(min_size=1, max_size=5), st.sampled_from(["CanNotDelete", "ReadOnly"]), st.just("/s")),
    max_size=2,
).map(tuple)


@st.composite
def groups(draw: st.DrawFn) -> Group:
    name = draw(names)
    return Group(
        name=name,
        id=f"/subscriptions/s/resourceGroups/{name}",
        scope="s",
        tags=draw(st.dictionaries(st.sampled_from(TAGS), tag_values, max_size=6)),
        managed_by=draw(st.one_of(st.none(), st.just("/subscriptions/s/aks"))),
        locks=draw(locks),
        created_time=draw(st.one_of(st.none(), moments)),
        provisioning_state=draw(st.sampled_from([None, "Succeeded", "Deleting"])),
    )


configs = st.builds(
    lambda grace, ttl, names_, patterns, app: CleanupConfig(
        grace_period=grace,
        default_ttl=ttl,
        protected_names=names_,
        protected_patterns=patterns,
        app_resource_group=app,
    ),
    durations,
    st.one_of(st.none(), durations),
    st.lists(st.sampled_from(["keep", "KEEP", "prod-db"]), max_size=2),
    st.lists(st.sampled_from(["prod-*", "*-rg", "rg-?"]), max_size=2),
    st.one_of(st.none(), st.sampled_from(["app-rg", "rg-1"])),
)


def opted_in(group: Group) -> bool:
    return (group.tag("modelops-cleanup") or "").strip().lower() == "true"


def refused_by_safety(policy: Policy, group: Group) -> bool:
    from fnmatch import fnmatchcase

    name = group.name.lower()
    return bool(
        name in policy.app_groups
        or name in policy.protected_names
        or any(fnmatchcase(name, p) for p in policy.protected_patterns)
        or group.managed_by
        or group.locks
        or group.provisioning_state == "Deleting"
    )


@settings(max_examples=250, deadline=None)
@given(configs, st.lists(groups(), max_size=8), moments, st.integers(0, 5))
def test_nothing_outside_the_opt_in_set_is_ever_touched(
    config: CleanupConfig, candidates: list[Group], now: datetime, cap: int
) -> None:
    policy = Policy.from_config(config)
    for item in plan(candidates, policy, now, cap=cap):
        if item.decision.action is not Action.SKIP:
            # not even a tag write (mark or unmark) reaches a group that did not opt in
            assert opted_in(item.group)
            assert not refused_by_safety(policy, item.group)


@settings(max_examples=250, deadline=None)
@given(configs, st.lists(groups(), max_size=8), moments)
def test_reactor_managed_groups_still_obey_every_safety_rule(
    config: CleanupConfig, candidates: list[Group], now: datetime
) -> None:
    policy = Policy.from_config(config, implied_opt_in=True)
    for item in plan(candidates, policy, now, cap=100):
        if item.decision.action in (Action.MARK, Action.DELETE, Action.UNMARK):
            assert not refused_by_safety(policy, item.group)


@settings(max_examples=250, deadline=None)
@given(configs, st.lists(groups(), max_size=10), moments, st.integers(0, 4))
def test_deletes_need_a_due_mark_an_expiry_and_respect_the_cap(
    config: CleanupConfig, candidates: list[Group], now: datetime, cap: int
) -> None:
    policy = Policy.from_config(config)
    planned = plan(candidates, policy, now, cap=cap)
    deletes = [p.decision for p in planned if p.decision.action is Action.DELETE]
    assert len(deletes) <= cap
    for d in deletes:
        assert d.marked_until is not None and d.marked_until <= now
        assert d.expires_at is not None and d.expires_at <= now
    for p in planned:
        if p.decision.action is Action.MARK:
            assert p.decision.new_mark == format_timestamp(now + policy.grace)


@settings(max_examples=200, deadline=None)
@given(configs, groups(), moments, st.integers(0, 10_000))
def test_time_passing_never_turns_delete_into_mark(
    config: CleanupConfig, group: Group, now: datetime, minutes: int
) -> None:
    """Once due, a group stays due (or is refused): a later run never restarts its grace."""
    policy = Policy.from_config(config)
    if policy.decide(group, now).action is Action.DELETE:
        later = policy.decide(group, now + timedelta(minutes=minutes))
        assert later.action is Action.DELETE
