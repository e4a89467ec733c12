"""What the ledger contract tests share: the backends under test, a hand-driven clock, events and
plans, a scripted executor and a worker over any ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from shared.config.loader import load_config
from shared.config.registries import MlflowRegistry
from shared.domain.actions import Action, PlannedAction
from shared.domain.clock import Clock, now_utc
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent
from shared.domain.outputs import RegisterOutputs
from shared.domain.params import ActionParams
from shared.executors.base import ActionContext, Outcome
from shared.executors.registry import ExecutorRegistry
from shared.ledger.base import IntakeResult, Ledger
from shared.service.dispatch import LocalDispatcher
from shared.service.worker import Worker

T = TypeVar("T")

CONFIG = """
registries:
  a: {kind: mlflow, tracking_uri: "sqlite:///unused.db"}
  b: {kind: mlflow, tracking_uri: "sqlite:///unused.db"}
worker: {lease_seconds: 0.5, max_attempts: 3, backoff_base_seconds: 0.01, poll_interval_seconds: 0.05}
"""


@dataclass(frozen=True)
class Backend:
    """Where a ledger lives; picklable, so that other processes can open the same one."""

    kind: str  # sqlite | tables
    location: str  # the SQLite file, or the table name
    connection: str | None = None  # the storage connection string (tables)

    def open(self, clock: Clock = now_utc) -> Ledger:
        if self.kind == "sqlite":
            from shared.ledger.sqlite import SqliteLedger

            return SqliteLedger(self.location, clock=clock)
        from shared.adapters.azure_storage import StorageAccount
        from shared.ledger.azure_tables import TableLedger

        return TableLedger(StorageAccount(connection_string=self.connection).table_client(self.location), clock=clock)


class ManualClock:
    """A clock that moves only when told to: leases expire without sleeping."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def event(version: str = "1", *, kind: str = MODEL_VERSION_CREATED, alias: str | None = None) -> ModelEvent:
    return ModelEvent(source="mlflow", kind=kind, source_type=kind, model_name="m", model_version=version, alias=alias)


def plan(version: str = "1", steps: int = 1) -> list[PlannedAction]:
    """Register the version in registries a, b, c (``steps`` of them), each after the one before."""
    return [
        PlannedAction(
            "register",
            target,
            "m",
            version,
            params=ActionParams(source="mlflow", source_tracking_uri="x"),
            rule="copy",
            after_index=index - 1 if index else None,
        )
        for index, target in enumerate("abc"[:steps])
    ]


def record(ledger: Ledger, version: str = "1", steps: int = 1, max_attempts: int = 3) -> IntakeResult:
    """Record the creation of version ``version`` with a plan of ``steps`` chained actions."""
    return ledger.record_event(event(version), plan(version, steps), reason=None, max_attempts=max_attempts)


def together(count: int, task: Callable[[int], T]) -> list[T]:
    """Run ``task(0..count-1)`` in threads released at once; their results, in index order."""
    barrier = threading.Barrier(count)
    results: dict[int, T] = {}

    def run(index: int) -> None:
        barrier.wait()
        results[index] = task(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return [results[i] for i in range(count)]


def messages(ledger: Ledger, action_id: str) -> list[str]:
    return [line["message"] for line in ledger.action_log(action_id)]


def must(action: Action | None) -> Action:
    assert action is not None
    return action


class Scripted:
    """An executor port implementation that plays a script of outcomes (the port, not MLflow)."""

    def __init__(self, script: list[Outcome | Exception]) -> None:
        self.script = list(script)
        self.calls: list[ActionContext] = []

    def execute(self, ctx: ActionContext) -> Outcome:
        self.calls.append(ctx)
        step = self.script.pop(0) if self.script else Outcome.done(RegisterOutputs(reused=False))
        if isinstance(step, Exception):
            raise step
        return step


def worker(tmp_path: Path, ledger: Ledger, executor: Scripted, name: str = "w1", clock: Clock = now_utc) -> Worker:
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    config = load_config(path, env={})
    registry = ExecutorRegistry({("register", MlflowRegistry): lambda: executor})
    return Worker(ledger, config, tmp_path, LocalDispatcher(), registry, worker_id=name, clock=clock)
