"""Decide, for one group at one instant, what cleanup should do. Pure: no I/O, clock passed in.

Safety rules run first and return early, so no tag value can talk the policy past them; only
then is staleness read from tags, and only an opted-in group can reach mark or delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from fnmatch import fnmatchcase

from shared.cleanup.groups import Group
from shared.config.cleanup import CleanupConfig
from shared.timeparse import format_timestamp, parse_duration, parse_timestamp


class Action(StrEnum):
    SKIP = "skip"
    MARK = "mark"
    UNMARK = "unmark"
    DELETE = "delete"
    OVER_CAP = "over-cap"


class Reason(StrEnum):
    HOSTS_APP = "hosts-this-app"
    PROTECTED_NAME = "protected-name"
    PROTECTED_PATTERN = "protected-pattern"
    MANAGED = "managed"
    LOCKED = "locked"
    DELETING = "already-deleting"
    NOT_OPTED_IN = "not-opted-in"
    NOT_STALE = "not-stale"
    NO_EXPIRY = "no-expiry"
    UNREADABLE = "unreadable-tag"
    AWAITING_GRACE = "awaiting-grace"
    STALE = "stale"
    MARK_DUE = "mark-due"
    NO_LONGER_STALE = "no-longer-stale"
    CAP_REACHED = "cap-reached"


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: Reason
    detail: str
    expires_at: datetime | None = None
    marked_until: datetime | None = None  # the mark found on the group
    new_mark: str | None = None  # the mark value to write (action MARK)


@dataclass(frozen=True)
class Policy:
    opt_in_name: str
    opt_in_value: str
    expiry_tag: str
    ttl_tag: str
    created_tag: str
    mark_tag: str
    grace: timedelta
    default_ttl: timedelta | None
    protected_names: frozenset[str]
    protected_patterns: tuple[str, ...]
    app_groups: frozenset[str]
    implied_opt_in: bool = False  # local deployments are reactor-managed: opted in by origin

    @classmethod
    def from_config(
        cls, config: CleanupConfig, *, app_group: str | None = None, implied_opt_in: bool = False
    ) -> Policy:
        app = {g.lower() for g in (config.app_resource_group, app_group) if g}
        return cls(
            opt_in_name=config.opt_in_tag.name,
            opt_in_value=config.opt_in_tag.value.strip().lower(),
            expiry_tag=config.expiry_tag,
            ttl_tag=config.ttl_tag,
            created_tag=config.created_tag,
            mark_tag=config.mark_tag,
            grace=parse_duration(config.grace_period),
            default_ttl=parse_duration(config.default_ttl) if config.default_ttl else None,
            protected_names=frozenset(n.lower() for n in config.protected_names),
            protected_patterns=tuple(p.lower() for p in config.protected_patterns),
            app_groups=frozenset(app),
            implied_opt_in=implied_opt_in,
        )

    def decide(self, group: Group, now: datetime) -> Decision:
        refusal = self._safety(group)
        if refusal:
            return refusal
        expires_at, why = self.expiry(group)
        mark_raw = group.tag(self.mark_tag)
        marked_until = _try_timestamp(mark_raw)
        if expires_at is None or expires_at > now:
            reason = why[0] if expires_at is None else Reason.NOT_STALE
            detail = why[1] if expires_at is None else f"expires {format_timestamp(expires_at)}"
            if mark_raw is not None:
                return Decision(Action.UNMARK, Reason.NO_LONGER_STALE, detail, expires_at, marked_until)
            return Decision(Action.SKIP, reason, detail, expires_at)
        stale_since = f"stale since {format_timestamp(expires_at)}"
        if marked_until is None:
            # an unreadable mark restarts the grace period rather than deleting early
            new_mark = format_timestamp(now + self.grace)
            return Decision(
                Action.MARK, Reason.STALE, f"{stale_since}; delete after {new_mark}", expires_at, None, new_mark
            )
        if marked_until > now:
            return Decision(
                Action.SKIP,
                Reason.AWAITING_GRACE,
                f"{stale_since}; delete after {format_timestamp(marked_until)}",
                expires_at,
                marked_until,
            )
        return Decision(
            Action.DELETE,
            Reason.MARK_DUE,
            f"{stale_since}; marked until {format_timestamp(marked_until)}",
            expires_at,
            marked_until,
        )

    def _safety(self, group: Group) -> Decision | None:
        name = group.name.lower()
        if name in self.app_groups:
            return Decision(Action.SKIP, Reason.HOSTS_APP, "hosts this app")
        if name in self.protected_names:
            return Decision(Action.SKIP, Reason.PROTECTED_NAME, "protected by name")
        pattern = next((p for p in self.protected_patterns if fnmatchcase(name, p)), None)
        if pattern:
            return Decision(Action.SKIP, Reason.PROTECTED_PATTERN, f"matches {pattern!r}")
        if group.managed_by:
            return Decision(Action.SKIP, Reason.MANAGED, f"managed by {group.managed_by}")
        if group.locks:
            locks = "; ".join(lock.describe() for lock in group.locks)
            return Decision(Action.SKIP, Reason.LOCKED, f"locked: {locks}")
        if (group.provisioning_state or "").lower() == "deleting":
            return Decision(Action.SKIP, Reason.DELETING, "a deletion is already running")
        opt_in = (group.tag(self.opt_in_name) or "").strip().lower()
        if not self.implied_opt_in and opt_in != self.opt_in_value:
            return Decision(Action.SKIP, Reason.NOT_OPTED_IN, f"no {self.opt_in_name}={self.opt_in_value} tag")
        return None

    def expiry(self, group: Group) -> tuple[datetime | None, tuple[Reason, str]]:
        """When the group expires; None with the reason when that cannot be known."""
        expiry_raw = group.tag(self.expiry_tag)
        if expiry_raw is not None:
            expires = _try_timestamp(expiry_raw)
            if expires is None:
                return None, (Reason.UNREADABLE, f"{self.expiry_tag}={expiry_raw!r} is not a date")
            return expires, (Reason.NOT_STALE, "")
        ttl_raw = group.tag(self.ttl_tag)
        if ttl_raw is not None:
            try:
                ttl = parse_duration(ttl_raw)
            except ValueError:
                return None, (Reason.UNREADABLE, f"{self.ttl_tag}={ttl_raw!r} is not a duration")
        elif self.default_ttl is not None:
            ttl = self.default_ttl
        else:
            return None, (Reason.NO_EXPIRY, f"no {self.expiry_tag} or {self.ttl_tag} tag")
        created_raw = group.tag(self.created_tag)
        created = _try_timestamp(created_raw) if created_raw is not None else group.created_time
        if created is None:
            return None, (Reason.NO_EXPIRY, f"ttl but no readable {self.created_tag} tag or createdTime")
        return created + ttl, (Reason.NOT_STALE, "")


def _try_timestamp(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except ValueError:
        return None
