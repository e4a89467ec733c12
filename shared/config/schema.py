"""The configuration file's schema: sources, registries, deployments, batch, rules, cleanup."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, get_args

from pydantic import Field, field_validator, model_validator

from shared.config.base import ConfigModel
from shared.config.batch import BatchConfig, DatabricksBatch, LocalBatch, SparkLocalBatch
from shared.config.cleanup import CleanupConfig
from shared.config.deployments import (
    AciDeployment,
    AksDeployment,
    DeploymentConfig,
    KubernetesOnlineDeployment,
    LocalDeployment,
    ManagedOnlineDeployment,
)
from shared.config.registries import (
    AzureMLRegistry,
    AzureMLSharedRegistry,
    DatabricksRegistry,
    MlflowRegistry,
    RegistryConfig,
)
from shared.domain.actions import ACTION_KINDS
from shared.domain.events import KINDS

SOURCE_NAMES = ("mlflow", "databricks", "azureml")

# Every target an action can name, as one type: what `ActionContext.target_config()` returns.
TargetConfig = (
    MlflowRegistry
    | AzureMLRegistry
    | AzureMLSharedRegistry
    | DatabricksRegistry
    | LocalDeployment
    | ManagedOnlineDeployment
    | KubernetesOnlineDeployment
    | AciDeployment
    | AksDeployment
    | LocalBatch
    | SparkLocalBatch
    | DatabricksBatch
)


def target_classes(section: Any) -> tuple[type, ...]:
    """The config classes of a section's discriminated union (RegistryConfig, DeploymentConfig...)."""
    union = get_args(section)[0]  # Annotated[A | B | C, Field(discriminator=...)]
    return tuple(get_args(union))


TARGET_CLASSES: dict[str, tuple[type, ...]] = {
    "register": target_classes(RegistryConfig),
    "deploy": target_classes(DeploymentConfig),
    "batch_score": target_classes(BatchConfig),
}


class SourceConfig(ConfigModel):
    """Where the models named by a source's events live."""

    tracking_uri: str | None = Field(default=None, description="MLflow tracking URI of the source registry")
    registry_uri: str | None = Field(default=None, description="MLflow registry URI if not the tracking URI")
    registry: str | None = Field(default=None, description="name of a `registries:` entry holding the models")
    poll: bool = Field(default=False, description="true to let the registry poller watch this source")
    poll_lookback_seconds: float = Field(
        default=3600, ge=0, description="on the first poll, versions created this long ago count as new"
    )

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        if not self.tracking_uri and not self.registry:
            raise ValueError("give `tracking_uri` (an MLflow URI) or `registry` (a registries: entry)")
        return self


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
    """One step of a rule: exactly one of register/deploy/batch_score, naming a target."""

    register_: str | None = Field(default=None, alias="register", description="name of a `registries:` entry")
    deploy: str | None = Field(default=None, description="name of a `deployments:` entry")
    batch_score: str | None = Field(default=None, description="name of a `batch:` entry")
    name: str | None = Field(default=None, description="model name in the target registry (register only)")

    @model_validator(mode="after")
    def _exactly_one(self) -> RuleAction:
        given = [k for k in ACTION_KINDS if self._step(k)]
        if len(given) != 1:
            raise ValueError("each `do:` step names exactly one of register, deploy, batch_score")
        if self.name and not self.register_:
            raise ValueError("`name` applies to register steps only")
        return self

    def _step(self, kind: str) -> str | None:
        return {"register": self.register_, "deploy": self.deploy, "batch_score": self.batch_score}[kind]

    @property
    def kind(self) -> str:
        return next(k for k in ACTION_KINDS if self._step(k))

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

    @field_validator("on")
    @classmethod
    def _known_kinds(cls, value: list[str]) -> list[str]:
        unknown = [k for k in value if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown event kind {unknown[0]!r}; use one of {', '.join(sorted(KINDS))}")
        return value


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
    poll_interval_seconds: float = Field(default=0.5, gt=0, description="idle worker poll interval")
    threads: int = Field(default=2, ge=1, description="actions run at once by `modelops serve`")


class ReactorConfig(ConfigModel):
    sources: dict[str, SourceConfig] = Field(default_factory=dict, description="mlflow, databricks, azureml")
    registries: dict[str, RegistryConfig] = Field(default_factory=dict, description="register targets")
    deployments: dict[str, DeploymentConfig] = Field(default_factory=dict, description="deploy targets")
    batch: dict[str, BatchConfig] = Field(default_factory=dict, description="batch_score targets")
    rules: list[Rule] = Field(default_factory=list, description="event -> actions")
    cleanup: CleanupConfig = Field(default_factory=CleanupConfig, description="stale resource cleanup")
    worker: WorkerConfig = Field(default_factory=WorkerConfig, description="worker tuning")

    @field_validator("sources")
    @classmethod
    def _known_sources(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name in value:
            if name not in SOURCE_NAMES:
                raise ValueError(f"unknown source {name!r}; use one of {', '.join(SOURCE_NAMES)}")
        return value

    def targets(self, kind: str) -> Mapping[str, TargetConfig]:
        sections: dict[str, Mapping[str, TargetConfig]] = {
            "register": self.registries,
            "deploy": self.deployments,
            "batch_score": self.batch,
        }
        return sections[kind]

    def cross_check(self) -> list[tuple[str, str, str]]:
        """Problems a schema alone cannot see: references between sections."""
        problems: list[tuple[str, str, str]] = []
        for name, src in self.sources.items():
            if src.registry and src.registry not in self.registries:
                problems.append(
                    (
                        f"sources.{name}.registry",
                        f"no registry named {src.registry!r}",
                        f"add it under registries: or use one of {sorted(self.registries)}",
                    )
                )
        section = {"register": "registries", "deploy": "deployments", "batch_score": "batch"}
        for i, rule in enumerate(self.rules):
            for j, step in enumerate(rule.do):
                if step.target not in self.targets(step.kind):
                    known = sorted(self.targets(step.kind)) or ["(none defined)"]
                    problems.append(
                        (
                            f"rules[{i}].do[{j}].{step.kind}",
                            f"no {section[step.kind]} entry named {step.target!r}",
                            f"define it under {section[step.kind]}: or use one of {', '.join(known)}",
                        )
                    )
            for source_name in rule.source or []:
                if source_name not in SOURCE_NAMES:
                    problems.append(
                        (f"rules[{i}].source", f"unknown source {source_name!r}", f"use one of {SOURCE_NAMES}")
                    )
        return problems
