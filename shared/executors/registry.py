"""Which executor runs which (action kind, target kind). Heavy SDKs load only when one is built."""

from __future__ import annotations

from collections.abc import Callable

from shared.errors import PermanentError
from shared.executors.base import Executor


def _register_mlflow() -> Executor:
    from shared.executors.register import RegisterExecutor

    return RegisterExecutor()


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


def _resolve_run() -> Executor:
    from shared.executors.resolve_run import ResolveRunExecutor

    return ResolveRunExecutor()


FACTORIES: dict[tuple[str, str], Callable[[], Executor]] = {
    ("resolve_run", "source"): _resolve_run,
    ("register", "mlflow"): _register_mlflow,
    ("register", "azureml"): _register_mlflow,
    ("register", "databricks"): _register_mlflow,
    ("register", "databricks-uc"): _register_mlflow,
    ("batch_score", "local"): _batch_local,
    ("batch_score", "spark-local"): _batch_spark_local,
    ("batch_score", "databricks"): _batch_databricks,
    ("deploy", "local"): _deploy_local,
    ("deploy", "managed-online"): _deploy_online,
    ("deploy", "kubernetes-online"): _deploy_online,
    ("deploy", "aci"): _deploy_legacy,
    ("deploy", "aks"): _deploy_legacy,
}


class ExecutorRegistry:
    """Builds each executor once, on first use."""

    def __init__(self, factories: dict[tuple[str, str], Callable[[], Executor]] | None = None) -> None:
        self._factories = dict(FACTORIES if factories is None else factories)
        self._built: dict[tuple[str, str], Executor] = {}

    def get(self, action_kind: str, target_kind: str) -> Executor:
        key = (action_kind, target_kind)
        if key not in self._built:
            factory = self._factories.get(key)
            if factory is None:
                raise PermanentError(f"no executor for {action_kind} on a target of kind {target_kind!r}")
            self._built[key] = factory()
        return self._built[key]
