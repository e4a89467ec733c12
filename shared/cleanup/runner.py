"""Entry point for the ops route, the CLI and the timer: list, plan, and (only if asked) act."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.cleanup.execute import apply_plan, describe
from shared.cleanup.groups import Group
from shared.cleanup.planner import plan
from shared.cleanup.policy import Policy
from shared.cleanup.provider import CleanupProvider
from shared.cleanup.report import CleanupReport, GroupRow
from shared.config.cleanup import CleanupConfig
from shared.config.schema import ReactorConfig

log = logging.getLogger("modelops.cleanup")


def run_cleanup(
    config: ReactorConfig,
    *,
    apply: bool,
    state_dir: Path,
    now: datetime | None = None,
    credential: Any = None,
    progress: Callable[[str], None] | None = None,
    app_group: str | None = None,
) -> CleanupReport:
    """Run the cleanup policy once. ``apply=False`` (dry run) writes nothing, not even tags.

    ``app_group`` is the group hosting this app (Settings.app_resource_group: Functions sets
    WEBSITE_RESOURCE_GROUP on every app), never deleted."""
    cfg = config.cleanup
    say = progress or (lambda message: log.info("cleanup: %s", message))
    policy = Policy.from_config(cfg, app_group=app_group, implied_opt_in=cfg.provider == "local")
    now = now or datetime.now(UTC)
    report = CleanupReport(
        run_id=uuid.uuid4().hex[:12],
        provider=cfg.provider,
        dry_run=not apply,
        now=now,
        started_at=datetime.now(UTC),
    )
    if cfg.provider == "azure" and not policy.app_groups:
        report.warnings.append(
            "the group hosting this app is unknown (no WEBSITE_RESOURCE_GROUP setting nor "
            "cleanup.app_resource_group); it is protected only by the other rules"
        )
    if cfg.provider == "local" and cfg.default_ttl is None:
        report.warnings.append("cleanup.default_ttl is not set: local deployments never become stale")
    provider = make_provider(cfg, state_dir=state_dir, credential=credential)
    try:
        groups = _list_all(provider, report, say)
        planned = plan(groups, policy, now, cap=cfg.max_deletions_per_run)
        report.rows = [GroupRow.from_planned(p, dry_run=not apply) for p in planned]
        say(f"planned {len(planned)} groups: {report.counts()}")
        if apply:
            apply_plan(provider, planned, report.rows, concurrency=cfg.delete_concurrency, progress=say)
    finally:
        provider.close()
    report.finished_at = datetime.now(UTC)
    return report


def _list_all(provider: CleanupProvider, report: CleanupReport, say: Callable[[str], None]) -> list[Group]:
    groups: list[Group] = []
    for scope in provider.scopes():
        try:
            found = provider.list_groups(scope)
        except Exception as exc:  # noqa: BLE001 - an unreadable scope is reported and left alone
            report.errors.append(f"{scope}: could not list groups: {describe(exc)}")
            say(f"listing {scope} failed: {describe(exc)}")
            continue
        say(f"listed {len(found)} groups in {scope}")
        groups.extend(found)
    return groups


def make_provider(cfg: CleanupConfig, *, state_dir: Path, credential: Any = None) -> CleanupProvider:
    # imported here so that the timer and the CLI load the Azure SDKs only when they are used
    if cfg.provider == "azure":
        from shared.cleanup.arm_provider import ArmProvider

        return ArmProvider(cfg, credential=credential)
    from shared.cleanup.local_provider import LocalProvider

    return LocalProvider(cfg, state_dir=state_dir)
