"""Cleanup policy (the `cleanup:` section): which stale groups may be deleted, and how carefully.

Like a Cloud Custodian policy, the destructive part is data, validated before anything runs.
The timer's schedule is not here: it comes from the app setting MODELOPS_CLEANUP_SCHEDULE.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from shared.config.base import ConfigModel, Flag, check_glob
from shared.timeparse import parse_duration

_TAG_NAME = re.compile(r"^[^<>%&\\?/]{1,512}$")  # ARM refuses these characters in tag names


def _check_duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)  # raises ValueError with the accepted forms
    return value


def _check_tag_name(value: str) -> str:
    if not _TAG_NAME.match(value):
        raise ValueError(f"{value!r} is not a valid tag name (1-512 chars, none of < > % & \\ ? /)")
    return value


class OptInTag(ConfigModel):
    """The tag a group must carry before cleanup may ever touch it."""

    name: str = Field(default="modelops-cleanup", description="tag name, e.g. modelops-cleanup")
    value: str = Field(default="true", min_length=1, description="required tag value (compared case-insensitively)")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return _check_tag_name(value)


class CleanupConfig(ConfigModel):
    """Which stale resource groups (or local deployments) may be deleted, and how carefully."""

    enabled: Flag = Field(
        default=True,
        description="true to let the timer run the policy (schedule: app setting "
        "MODELOPS_CLEANUP_SCHEDULE, an NCRONTAB expression)",
    )
    apply: Flag = Field(
        default=False,
        description="true to let the timer mark and delete; otherwise it only reports",
    )
    provider: Literal["azure", "local"] = Field(
        default="local",
        description="`azure` cleans resource groups through ARM; `local` cleans the reactor's local model deployments",
    )
    subscriptions: list[str] = Field(
        default_factory=list,
        validate_default=True,
        description="Azure subscription ids to scan (provider azure)",
    )
    opt_in_tag: OptInTag = Field(
        default_factory=OptInTag,
        description="tag {name, value} a group must carry to be considered at all",
    )
    expiry_tag: str = Field(
        default="expires-on",
        description="tag holding an absolute expiry, ISO date or date-time (2025-01-31, 2025-01-31T18:00:00Z)",
    )
    ttl_tag: str = Field(
        default="ttl",
        description="tag holding an ISO 8601 duration (P7D, PT24H) counted from the created-at "
        "tag or the group's createdTime",
    )
    created_tag: str = Field(default="created-at", description="tag holding the creation time a ttl counts from")
    default_ttl: str | None = Field(
        default=None,
        description="ISO 8601 duration applied when a group has neither expiry nor ttl tag "
        "(local deployments: their age); leave empty to keep such groups",
    )
    mark_tag: str = Field(
        default="delete-after",
        description="tag written on the first stale run; holds the earliest deletion time",
    )
    grace_period: str = Field(default="P1D", description="ISO 8601 duration between marking a group and deleting it")
    protected_names: list[str] = Field(default_factory=list, description="group names never deleted (case-insensitive)")
    protected_patterns: list[str] = Field(
        default_factory=list,
        description="glob patterns (fnmatch, case-insensitive) of group names never deleted, e.g. prod-*",
    )
    app_resource_group: str | None = Field(
        default=None,
        description="the group hosting this app, never deleted; defaults to the WEBSITE_RESOURCE_GROUP app setting",
    )
    max_deletions_per_run: int = Field(
        default=10, ge=0, description="per-run deletion cap (blast radius); 0 deletes nothing"
    )
    delete_concurrency: int = Field(default=4, ge=1, le=32, description="deletions run at once (1-32)")
    arm_endpoint: str = Field(
        default="https://management.azure.com",
        description="Azure Resource Manager endpoint, e.g. https://management.usgovcloudapi.net "
        "for Azure Government; the token scope is <endpoint>/.default",
    )
    use_created_time: bool = Field(
        default=True,
        description="ask ARM for each group's createdTime ($expand=createdTime) as the ttl base "
        "when the created-at tag is missing",
    )
    max_retries: int = Field(
        default=4, ge=0, le=20, description="retries of a throttled (429) or failed (5xx) ARM call"
    )
    retry_backoff_seconds: float = Field(
        default=0.8, ge=0, description="base of the exponential backoff between 5xx retries"
    )
    poll_interval_seconds: float = Field(
        default=10, gt=0, description="delete polling interval when ARM sends no Retry-After"
    )

    @field_validator("expiry_tag", "ttl_tag", "created_tag", "mark_tag")
    @classmethod
    def _tag_names(cls, value: str) -> str:
        return _check_tag_name(value)

    @field_validator("default_ttl", "grace_period")
    @classmethod
    def _durations(cls, value: str | None) -> str | None:
        return _check_duration(value)

    @field_validator("protected_patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            check_glob(pattern)
            if pattern.strip() in {"*", "**"}:
                # protecting everything is legal but almost certainly a typo for a real pattern
                raise ValueError(f"pattern {pattern!r} protects every group; set enabled: false instead")
        return value

    @field_validator("subscriptions")
    @classmethod
    def _subscriptions(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if info.data.get("provider") == "azure" and not value:
            raise ValueError(
                "provider azure needs at least one subscription id; list them, e.g. subscriptions: [<subscription id>]"
            )
        for sub in value:
            if not re.fullmatch(r"[0-9A-Za-z-]{1,64}", sub):
                raise ValueError(f"{sub!r} is not a subscription id; give the GUID")
        return value

    @field_validator("arm_endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        if not re.match(r"^https://[^/\s]+/?$", value):
            raise ValueError(f"{value!r} must be an https:// host such as https://management.azure.com")
        return value.rstrip("/")

    @field_validator("mark_tag")
    @classmethod
    def _distinct_mark(cls, value: str, info: ValidationInfo) -> str:
        # the mark is written and removed by cleanup itself: sharing a name would erase user data
        opt_in = info.data.get("opt_in_tag")
        others = [info.data.get(k) for k in ("expiry_tag", "ttl_tag", "created_tag")]
        others.append(opt_in.name if opt_in else None)
        if value.lower() in {str(t).lower() for t in others if t}:
            raise ValueError(f"{value!r} is already used by another cleanup tag; pick another name")
        return value
