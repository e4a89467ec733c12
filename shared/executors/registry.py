"""Which executor runs which (action kind, target kind). Heavy SDKs load only when one is built."""

from __future__ import annotations

from collections.abc import Callable

from shared.errors import PermanentError
from shared.executors.base import Executor


def _register_mlflow() -> Executor:
    from shared.executors.register import RegisterExecutor

    return RegisterExecutor()


FACTORIES: dict[tuple[str, str], Callable[[], Executor]] = {
    ("register", "mlflow"): _register_mlflow,
    ("register", "azureml"): _register_mlflow,
    ("register", "databricks"): _register_mlflow,
    ("register", "databricks-uc"): _register_mlflow,
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
