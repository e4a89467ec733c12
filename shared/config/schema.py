"""The configuration file's schema: sources, registries, deployments, batch, rules, cleanup."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import Field, ModelWrapValidatorHandler, PrivateAttr, field_validator, model_validator

from shared.config.base import ConfigModel, check_glob
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
from shared.config.gates import ApprovalConfig, ValidationConfig
from shared.config.reconcile import ReconcileConfig
from shared.config.registries import (
    AzureMLRegistry,
    AzureMLSharedRegistry,
    DatabricksRegistry,
    MlflowRegistry,
    RegistryConfig,
)
from shared.config.retention import RetentionConfig
from shared.config.sources import LEGACY_SOURCE_NAMES, SOURCE_KINDS, SourceConfig
from shared.domain.actions import STEP_KINDS
from shared.domain.events import KINDS

_SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")

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
    | ValidationConfig
    | ApprovalConfig
)


def target_classes(section: Any) -> tuple[type, ...]:
    """The config classes of a section's discriminated union (RegistryConfig, DeploymentConfig...)."""
    union = get_args(section)[0]  # Annotated[A | B | C, Field(discriminator=...)]
    return tuple(get_args(union))


TARGET_CLASSES: dict[str, tuple[type, ...]] = {
    "register": target_classes(RegistryConfig),
    "deploy": target_classes(DeploymentConfig),
    "batch_score": target_classes(BatchConfig),
    "validate": (ValidationConfig,),
    "approve": (ApprovalConfig,),
}
# the config section each step kind names an entry of
SECTIONS = {
    "register": "registries",
    "deploy": "deployments",
    "batch_score": "batch",
    "validate": "validations",
    "approve": "approvals",
}


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
    redelivery_delay_seconds: float = Field(
        default=30,
        ge=0,
        description="a duplicate event re-sends never-started actions this much later (the first message runs them)",
    )
    poll_interval_seconds: float = Field(default=0.5, gt=0, description="idle worker poll interval")
    threads: int = Field(default=2, ge=1, description="actions run at once by `modelops serve`")


class ReactorConfig(ConfigModel):
    sources: dict[str, SourceConfig] = Field(
        default_factory=dict, description=f"named event sources, each of a kind: {', '.join(SOURCE_KINDS)}"
    )
    registries: dict[str, RegistryConfig] = Field(default_factory=dict, description="register targets")
    deployments: dict[str, DeploymentConfig] = Field(default_factory=dict, description="deploy targets")
    batch: dict[str, BatchConfig] = Field(default_factory=dict, description="batch_score targets")
    validations: dict[str, ValidationConfig] = Field(
        default_factory=dict, description="validate steps: holdout data, model_type, baseline alias, thresholds"
    )
    approvals: dict[str, ApprovalConfig] = Field(
        default_factory=dict, description="approve steps: expiry and the tag that approves too"
    )
    rules: list[Rule] = Field(default_factory=list, description="event -> actions")
    cleanup: CleanupConfig = Field(default_factory=CleanupConfig, description="stale resource cleanup")
    worker: WorkerConfig = Field(default_factory=WorkerConfig, description="worker tuning")
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig, description="registry vs ledger vs targets")
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="how long the ledger keeps")

    _implied_kinds: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("sources")
    @classmethod
    def _source_names(cls, value: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name in value:
            if not _SOURCE_NAME.match(name):
                raise ValueError(
                    f"source name {name!r} must be letters, digits, '-', '_' or '.' "
                    "(it is a URL path: /api/hooks/<name>)"
                )
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _legacy_source_kinds(cls, data: Any, handler: ModelWrapValidatorHandler[ReactorConfig]) -> ReactorConfig:
        """A source named mlflow, databricks or azureml may leave out `kind:` (the one-source-per-kind configs)."""
        implied: list[str] = []
        raw = data.get("sources") if isinstance(data, dict) else None
        if isinstance(raw, dict):
            sources = dict(raw)
            for name, entry in raw.items():
                if name in LEGACY_SOURCE_NAMES and isinstance(entry, dict) and "kind" not in entry:
                    sources[name] = {"kind": name, **entry}
                    implied.append(name)
            data = {**data, "sources": sources}
        config = handler(data)
        config._implied_kinds = tuple(implied)
        return config

    def source_kind(self, name: str) -> str:
        """The kind of a configured source (its name, for a legacy source left without `kind:`)."""
        return str(self.sources[name].kind)

    def sources_of_kind(self, kind: str) -> list[str]:
        return [name for name, source in self.sources.items() if source.kind == kind]

    def notices(self) -> list[str]:
        """What is valid but written the old way, with the new way to write it."""
        return [
            f"sources.{name}: no `kind:` given, so the kind is taken from the name; write "
            f"`{name}: {{kind: {name}, ...}}` (a source of any name may then be of kind {name})"
            for name in self._implied_kinds
        ]

    def workspace_ids(self) -> dict[str, str | None]:
        """azureml source name -> its workspace resource id (lowercased), None if it names none."""
        return {
            name: self.sources[name].workspace_resource_id(self.registries) for name in self.sources_of_kind("azureml")
        }

    def _workspace_problems(self) -> list[tuple[str, str, str]]:
        """Event Grid events are routed by workspace: with several azureml sources each needs its own."""
        ids = self.workspace_ids()
        problems: list[tuple[str, str, str]] = []
        seen: dict[str, str] = {}
        for name, workspace_id in ids.items():
            if workspace_id is None and len(ids) > 1:
                problems.append(
                    (
                        f"sources.{name}",
                        "several azureml sources, and this one names no workspace to match Event Grid events by",
                        "add `workspace_id: <resource id>` (or subscription_id, resource_group, workspace), "
                        "or `registry:` an azureml registries: entry",
                    )
                )
            elif workspace_id is not None and workspace_id in seen:
                problems.append(
                    (
                        f"sources.{name}",
                        f"the same workspace as source {seen[workspace_id]!r}",
                        "give each azureml source its own workspace (one source per workspace)",
                    )
                )
            elif workspace_id is not None:
                seen[workspace_id] = name
        return problems

    def targets(self, kind: str) -> Mapping[str, TargetConfig]:
        sections: dict[str, Mapping[str, TargetConfig]] = {
            "register": self.registries,
            "deploy": self.deployments,
            "batch_score": self.batch,
            "rollback": self.deployments,
            "validate": self.validations,
            "approve": self.approvals,
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
        problems += self._workspace_problems()
        for name, src in self.sources.items():
            if name in ("mlflow", "databricks", "eventgrid") and src.kind != name:
                problems.append(
                    (
                        f"sources.{name}",
                        f"/api/hooks/{name} is the route of the {name} kind, so a source of kind {src.kind} "
                        "cannot be named so",
                        "rename the source",
                    )
                )
        section = SECTIONS
        problems += gate_problems(self)
        problems += child_env_problems(self)
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
                if source_name not in self.sources:
                    choices = ", ".join(self.sources) or "(none: define sources: first)"
                    problems.append(
                        (
                            f"rules[{i}].source",
                            f"unknown source {source_name!r}",
                            f"use one of the configured sources: {choices}",
                        )
                    )
        return problems


def child_env_problems(config: ReactorConfig) -> list[tuple[str, str, str]]:
    """A target handing a source's webhook secret to the model's process (it would be withheld)."""
    secrets = {src.secret_setting: name for name, src in config.sources.items() if src.secret_setting}
    problems: list[tuple[str, str, str]] = []
    for section, targets in (("deployments", config.deployments), ("batch", config.batch)):
        for name, target in targets.items():
            for setting in getattr(target, "env", ()):
                if setting in secrets:
                    problems.append(
                        (
                            f"{section}.{name}.env",
                            f"{setting} is the webhook secret of source {secrets[setting]!r}, never handed to a "
                            "model's process",
                            f"remove {setting} from env:",
                        )
                    )
    return problems


def gate_problems(config: ReactorConfig) -> list[tuple[str, str, str]]:
    """Thresholds on metrics a validation's model_type cannot produce."""
    problems: list[tuple[str, str, str]] = []
    for name, validation in config.validations.items():
        for metric, why in validation.metric_problems():
            problems.append(
                (
                    f"validations.{name}.thresholds.{metric}",
                    why,
                    "use one of those metrics, or change model_type",
                )
            )
    return problems
