"""Cleanup policy (the `cleanup:` section)."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import ConfigModel


class CleanupConfig(ConfigModel):
    """Which stale resource groups (or local deployments) may be deleted, and how carefully."""

    enabled: bool = Field(default=True, description="true to let the timer run the policy")
    apply: bool = Field(default=False, description="true to let the timer delete; otherwise it only reports")
