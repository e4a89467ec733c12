"""The `reconcile:` section: how often the registries are compared with the ledger and the targets."""

from __future__ import annotations

from pydantic import Field, field_validator

from shared.config.base import ConfigModel, Flag
from shared.timeparse import parse_duration


class ReconcileConfig(ConfigModel):
    """Every listable source is reconciled (opt out per source with `reconcile: false`)."""

    every: str = Field(
        default="PT5M",
        description="ISO 8601 duration between passes, e.g. PT5M (`modelops serve` runs them; in Azure the "
        "registry_poller timer on the app setting MODELOPS_POLL_SCHEDULE)",
    )
    self_heal: Flag = Field(
        default=False,
        description="true to re-deploy the desired version on a degraded target (a dead local server, traffic "
        "moved by hand); false reports the drift only",
    )

    @field_validator("every")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value).total_seconds() <= 0:
            raise ValueError("must be a positive duration, e.g. PT5M or PT30S")
        return value

    @property
    def seconds(self) -> float:
        return parse_duration(self.every).total_seconds()
