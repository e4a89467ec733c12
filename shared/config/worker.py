"""The `worker:` section: leases, attempts, backoff and the local worker's threads."""

from __future__ import annotations

from pydantic import Field

from shared.config.base import ConfigModel


class WorkerConfig(ConfigModel):
    lease_seconds: float = Field(default=300, gt=0, description="lease on a claimed action; renewed while it runs")
    max_attempts: int = Field(default=5, ge=1, description="attempts before an action is failed")
    backoff_base_seconds: float = Field(default=2, gt=0, description="first retry delay; doubles per attempt")
    backoff_max_seconds: float = Field(default=300, gt=0, description="longest retry delay")
    max_retry_after_seconds: float = Field(
        default=3600,
        gt=0,
        description="longest Retry-After a server may ask for; a longer one fails the action with its message",
    )
    redelivery_delay_seconds: float = Field(
        default=30,
        ge=0,
        description="a duplicate event re-sends never-started actions this much later (the first message runs them)",
    )
    poll_interval_seconds: float = Field(default=0.5, gt=0, description="idle worker poll interval")
    threads: int = Field(default=2, ge=1, description="actions run at once by `modelops serve`")
