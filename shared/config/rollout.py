"""Safe rollout of a deployment target (its `rollout:` block): mirror, traffic steps, holds, judgement.

rollout:
  mirror: 20                 # percent copied to the new version first (managed-online: at most 50)
  steps: [10, 50, 100]       # percent of live traffic, one step per hold
  hold: PT10M                # ISO 8601 duration of each hold
  judge: {max_error_rate: 0.01, max_latency_p99_ms: 500, min_requests: 20, too_few_requests: hold}
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from shared.config.base import ConfigModel
from shared.timeparse import parse_duration


class Judge(ConfigModel):
    """Thresholds the new version's own figures must meet over each hold."""

    max_error_rate: float | None = Field(
        default=None, ge=0, le=1, description="highest share of error answers (0.01 = 1%); omit: not judged"
    )
    max_latency_p99_ms: float | None = Field(
        default=None, gt=0, description="highest 99th-percentile latency in milliseconds; omit: not judged"
    )
    count_4xx: bool = Field(
        default=True,
        description="count 4xx answers as errors too: a model that fails on its input answers 4xx (400 from "
        "`mlflow models serve`, 424 from an online endpoint); false: 5xx only (clients that often send bad input)",
    )
    min_requests: int = Field(default=20, ge=0, description="fewer requests than this over a hold are too few to judge")
    too_few_requests: Literal["pass", "hold"] = Field(
        default="hold", description="what too few requests mean: pass the step, or hold again"
    )
    max_extra_holds: int = Field(
        default=3, ge=0, description="holds added for want of traffic; after them the step fails (traffic restored)"
    )


class Rollout(ConfigModel):
    mirror: int | None = Field(
        default=None, ge=1, le=100, description="percent of live traffic copied to the new version before the steps"
    )
    steps: list[int] = Field(
        min_length=1, description="percent of live traffic for the new version, rising, ending at 100"
    )
    hold: str = Field(default="PT10M", description="ISO 8601 duration of each hold (e.g. PT10M, PT30S)")
    judge: Judge | None = Field(default=None, description="thresholds judged after each hold; omit: holds only")

    @field_validator("hold")
    @classmethod
    def _hold(cls, value: str) -> str:
        if parse_duration(value).total_seconds() <= 0:
            raise ValueError("must be longer than zero, e.g. PT10M")
        return value

    @field_validator("steps")
    @classmethod
    def _steps(cls, value: list[int]) -> list[int]:
        if any(not 1 <= step <= 100 for step in value):
            raise ValueError("each step is a percent from 1 to 100")
        if any(later <= earlier for earlier, later in zip(value, value[1:], strict=False)):
            raise ValueError("steps must rise, e.g. [10, 50, 100]")
        if value[-1] != 100:
            raise ValueError("the last step must be 100 (the new version takes all traffic)")
        return value

    @property
    def hold_seconds(self) -> float:
        return parse_duration(self.hold).total_seconds()


class OnlineRollout(Rollout):
    @model_validator(mode="after")
    def _mirror(self) -> OnlineRollout:
        if self.mirror is not None and self.mirror > 50:
            raise ValueError("mirror: Azure ML mirrors at most 50% of an endpoint's traffic")
        return self
