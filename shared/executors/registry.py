"""Which executor runs which action on which kind of target, keyed by the target's config class.

Heavy SDKs load only when an executor is first built. `tests/spine/test_executor_registry.py`
checks that every class of the config's target unions has an executor.
"""

from __future__ import annotations

from collections.abc import Callable

from shared.config.batch import DatabricksBatch, LocalBatch, SparkLocalBatch
from shared.config.deployments import (
    AciDeployment,
    AksDeployment,
    KubernetesOnlineDeployment,
    LocalDeployment,
    ManagedOnlineDeployment,
)
from shared.config.gates import ApprovalConfig, ValidationConfig
from shared.config.registries import AzureMLRegistry, AzureMLSharedRegistry, DatabricksRegistry, MlflowRegistry
from shared.config.schema import SourceConfig
from shared.domain.actions import APPROVE, BATCH_SCORE, DEPLOY, REGISTER, RESOLVE_RUN, ROLLBACK, VALIDATE
from shared.errors import PermanentError
from shared.executors.base import Executor

ExecutorFactory = Callable[[], Executor]


def _register() -> Executor:
    from shared.executors.register import RegisterExecutor

    return RegisterExecutor()


def _register_aml_registry() -> Executor:
    from shared.executors.register_aml_registry import RegistryRegisterExecutor

    return RegistryRegisterExecutor()


def _deploy_local() -> Executor:
    from shared.executors.deploy_local import LocalDeployExecutor

    return LocalDeployExecutor()


def _deploy_online() -> Executor:
    from shared.executors.deploy_online import OnlineDeployExecutor

    return OnlineDeployExecutor()


def _deploy_legacy() -> Executor:
    from shared.executors.deploy_legacy import LegacyWebserviceExecutor

    return LegacyWebserviceExecutor()


def _batch_local() -> Executor:
    from shared.executors.batch_local import LocalBatchExecutor

    return LocalBatchExecutor()


def _batch_spark_local() -> Executor:
    from shared.executors.batch_spark_local import SparkLocalBatchExecutor

    return SparkLocalBatchExecutor()


def _batch_databricks() -> Executor:
    from shared.executors.batch_databricks import DatabricksBatchExecutor

    return DatabricksBatchExecutor()


def _rollback_local() -> Executor:
    from shared.executors.rollback_local import LocalRollbackExecutor

    return LocalRollbackExecutor()


def _rollback_online() -> Executor:
    from shared.executors.rollback_azure import OnlineRollbackExecutor

    return OnlineRollbackExecutor()


def _rollback_legacy() -> Executor:
    from shared.executors.rollback_azure import LegacyRollbackExecutor

    return LegacyRollbackExecutor()


def _validate() -> Executor:
    from shared.executors.validate import ValidateExecutor

    return ValidateExecutor()


def _approve() -> Executor:
    from shared.executors.approve import ApproveExecutor

    return ApproveExecutor()


def _resolve_run() -> Executor:
    from shared.executors.resolve_run import ResolveRunExecutor

    return ResolveRunExecutor()


FACTORIES: dict[tuple[str, type], ExecutorFactory] = {
    (RESOLVE_RUN, SourceConfig): _resolve_run,
    (REGISTER, MlflowRegistry): _register,
    (REGISTER, AzureMLRegistry): _register,
    (REGISTER, DatabricksRegistry): _register,
    (REGISTER, AzureMLSharedRegistry): _register_aml_registry,
    (DEPLOY, LocalDeployment): _deploy_local,
    (DEPLOY, ManagedOnlineDeployment): _deploy_online,
    (DEPLOY, KubernetesOnlineDeployment): _deploy_online,
    (DEPLOY, AciDeployment): _deploy_legacy,
    (DEPLOY, AksDeployment): _deploy_legacy,
    (BATCH_SCORE, LocalBatch): _batch_local,
    (BATCH_SCORE, SparkLocalBatch): _batch_spark_local,
    (BATCH_SCORE, DatabricksBatch): _batch_databricks,
    (ROLLBACK, LocalDeployment): _rollback_local,
    (ROLLBACK, ManagedOnlineDeployment): _rollback_online,
    (ROLLBACK, KubernetesOnlineDeployment): _rollback_online,
    (ROLLBACK, AciDeployment): _rollback_legacy,
    (ROLLBACK, AksDeployment): _rollback_legacy,
    (VALIDATE, ValidationConfig): _validate,
    (APPROVE, ApprovalConfig): _approve,
}


class ExecutorRegistry:
    """Builds each executor once, on first use; ``factories`` replace the defaults (tests)."""

    def __init__(self, factories: dict[tuple[str, type], ExecutorFactory] | None = None) -> None:
        self._factories = dict(FACTORIES if factories is None else factories)
        self._built: dict[tuple[str, type], Executor] = {}

    def knows(self, action_kind: str, target_class: type) -> bool:
        return (action_kind, target_class) in self._factories

    def get(self, action_kind: str, target: object) -> Executor:
        """The executor for ``action_kind`` on ``target`` (a config entry: its class decides)."""
        key = (action_kind, type(target))
        if key not in self._built:
            factory = self._factories.get(key)
            if factory is None:
                kind = getattr(target, "kind", type(target).__name__)
                raise PermanentError(f"no executor for {action_kind} on a target of kind {kind!r}")
            self._built[key] = factory()
        return self._built[key]
