"""How long the ledger keeps what is finished (the `retention:` section)."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from shared.config.base import ConfigModel
from shared.timeparse import parse_duration


class RetentionConfig(ConfigModel):
    """Events, deliveries and finished actions older than ``keep`` are pruned (``modelops prune``, and
    the retention timer); never an action in flight or waiting, nor a target's deployment history."""

    keep: str = Field(default="P90D", description="ISO 8601 duration, e.g. P90D or P2W")

    @field_validator("keep")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value) <= timedelta(0):
            raise ValueError(f"{value!r} keeps nothing; give a positive duration, e.g. P90D")
        return value

    def keep_for(self) -> timedelta:
        return parse_duration(self.keep)
