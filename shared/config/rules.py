"""The `rules:` section: when an event matches, which steps run (each naming a target)."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from shared.config.base import ConfigModel, check_glob
from shared.config.hints import did_you_mean
from shared.domain.actions import STEP_KINDS
from shared.domain.events import KINDS


class MetricGate(ConfigModel):
    metric: str = Field(description="run metric name, e.g. accuracy")
    at_least: float | None = Field(default=None, description="lowest passing value")
    at_most: float | None = Field(default=None, description="highest passing value")

    @model_validator(mode="after")
    def _bound(self) -> MetricGate:
        if self.at_least is None and self.at_most is None:
            raise ValueError("give `at_least` or `at_most`")
        return self


class RuleAction(ConfigModel):
    """One step of a rule: exactly one of register/deploy/batch_score/validate/approve, naming a target."""

    register_: str | None = Field(default=None, alias="register", description="name of a `registries:` entry")
    deploy: str | None = Field(default=None, description="name of a `deployments:` entry")
    batch_score: str | None = Field(default=None, description="name of a `batch:` entry")
    validate_: str | None = Field(default=None, alias="validate", description="name of a `validations:` entry")
    approve: str | None = Field(default=None, description="name of an `approvals:` entry")
    name: str | None = Field(default=None, description="model name in the target registry (register only)")

    @model_validator(mode="after")
    def _exactly_one(self) -> RuleAction:
        given = [k for k in STEP_KINDS if self._step(k)]
        if len(given) != 1:
            raise ValueError(f"each `do:` step names exactly one of {', '.join(STEP_KINDS)}")
        if self.name and not self.register_:
            raise ValueError("`name` applies to register steps only")
        return self

    def _step(self, kind: str) -> str | None:
        steps = {
            "register": self.register_,
            "deploy": self.deploy,
            "batch_score": self.batch_score,
            "validate": self.validate_,
            "approve": self.approve,
        }
        return steps[kind]

    @property
    def kind(self) -> str:
        return next(k for k in STEP_KINDS if self._step(k))

    @property
    def target(self) -> str:
        return str(self._step(self.kind))


class Rule(ConfigModel):
    """When an event matches, plan the `do:` steps; later steps run after earlier ones succeed."""

    name: str | None = Field(default=None, description="label shown in the audit trail")
    on: list[str] = Field(description=f"event kinds, any of: {', '.join(sorted(KINDS))}")
    source: list[str] | None = Field(default=None, description="only events from these sources")
    models: list[str] = Field(default_factory=lambda: ["*"], description="model name globs")
    alias: str | None = Field(default=None, description="only this alias (alias events)")
    stage: str | None = Field(default=None, description="only transitions to this stage")
    tags: dict[str, str] = Field(default_factory=dict, description="tags the event must carry")
    when: MetricGate | None = Field(default=None, description="run metric gate (run.completed)")
    do: list[RuleAction] = Field(min_length=1, description="steps, e.g. [{register: local-aml}]")

    @field_validator("on", "source", "models", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("models")
    @classmethod
    def _globs(cls, value: list[str]) -> list[str]:
        return [check_glob(pattern) for pattern in value]

    @field_validator("on")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = [k for k in value if k not in KINDS]
        if unknown:
            meant = did_you_mean(unknown[0], KINDS)
            raise ValueError(f"unknown event kind {unknown[0]!r}; {meant}use one of {', '.join(sorted(KINDS))}")
        return value
