"""The configuration file's schema: sources, registries, deployments, batch, rules, cleanup."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, get_args

from pydantic import Field, ModelWrapValidatorHandler, PrivateAttr, field_validator, model_validator

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
from shared.config.rules import Rule
from shared.config.sources import LEGACY_SOURCE_NAMES, SOURCE_KINDS, SourceConfig
from shared.config.worker import WorkerConfig

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
        """Problems a schema alone cannot see: references between sections (shared/config/checks.py)."""
        from shared.config.checks import cross_check

        return cross_check(self)
