"""The one place the app is wired: Settings -> config, ledger, dispatcher, executors, outcome sink, clock.

Everything that runs the reactor builds it here: `function_app.py` (the HTTP app and every native
function share one `Container` per host process), the CLI, the demo, the benchmarks and the tests.
The config is loaded (and validated) once, when the container is made; the ledger and the
dispatcher open on first use, so indexing the Functions app makes no network call.

    Settings.from_env() ─► Container ─► config (validated now)
                                     ├► reactor(): ledger + dispatcher + executors + outcome sink + clock
                                     ├► worker():  the process's worker over that reactor
                                     ├► http_app(): the FastAPI app over that reactor
                                     └► hooks_app(): its webhook routes alone (a cold webhook's build)
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from shared.adapters.mlflow_http import set_limits as set_mlflow_limits
from shared.config.loader import DEFAULT_CONFIG, load_config
from shared.config.schema import ReactorConfig
from shared.domain.actions import Action
from shared.domain.clock import Clock, now_utc
from shared.errors import ConfigError
from shared.executors.registry import ExecutorRegistry
from shared.ledger.base import Ledger
from shared.service.dispatch import Dispatcher, LocalDispatcher
from shared.service.reactor import Reactor
from shared.service.worker import Worker
from shared.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI


class Container:
    """One process's reactor, built once from its settings; the parts can be given (tests, demo)."""

    def __init__(
        self,
        settings: Settings,
        *,
        config: ReactorConfig | None = None,
        ledger: Ledger | None = None,
        dispatcher: Dispatcher | None = None,
        executors: ExecutorRegistry | None = None,
        clock: Clock = now_utc,
    ) -> None:
        self.settings = settings
        set_mlflow_limits(settings.mlflow_http)  # the one place the environment is written (MLflow reads it)
        if config is None:
            refuse_local_default_in_azure(settings)
        self.config = config or load_config(settings.config_path, env=settings.config_env())
        self.clock = clock
        self._ledger = ledger
        self._dispatcher = dispatcher
        self._executors = executors
        self._lock = threading.Lock()
        self._reactor: Reactor | None = None
        self._worker: Worker | None = None
        self._http: FastAPI | None = None
        self._hooks: FastAPI | None = None
        self.http_announced = False  # the HTTP start-up warnings, once however many apps are built

    @classmethod
    def from_env(cls) -> Container:
        return cls(Settings.from_env())

    def reactor(self) -> Reactor:
        with self._lock:
            if self._reactor is None:
                self._reactor = Reactor(
                    settings=self.settings,
                    config=self.config,
                    ledger=self._ledger or open_ledger(self.settings, self.clock),
                    dispatcher=self._dispatcher or open_dispatcher(self.settings),
                    executors=self._executors or ExecutorRegistry(),
                    on_finished=outcome_sink(self.settings),
                    clock=self.clock,
                )
            return self._reactor

    def worker(self) -> Worker:
        """The worker of this process (the queue trigger's); `Reactor.worker()` makes more."""
        reactor = self.reactor()
        with self._lock:
            if self._worker is None:
                self._worker = reactor.worker()
                self._worker.sweep_scratch()
            return self._worker

    def http_app(self) -> FastAPI:
        from shared.api.app import create_app

        with self._lock:
            if self._http is None:
                self._http = create_app(self)
                # what start-up made (modules, config, the app and its routes) lives as long as the
                # process: out of the cyclic collector's scans, whose full passes over it stalled
                # the event loop for ~60-80 ms each under webhook load (the tail latency)
                gc.freeze()
            return self._http

    def hooks_app(self) -> FastAPI:
        """The webhook routes alone, the same as `http_app()` answers them (`shared.api.frame`)."""
        from shared.api.frame import create_hooks_app

        with self._lock:
            if self._hooks is None:
                self._hooks = create_hooks_app(self)
                gc.freeze()  # as for http_app
            return self._hooks


def open_ledger(settings: Settings, clock: Clock = now_utc) -> Ledger:
    if settings.state_backend == "azure":
        from shared.adapters.azure_storage import StorageAccount
        from shared.ledger.azure_tables import TableLedger

        account = StorageAccount.from_settings(settings.storage, settings.azure_http)
        return TableLedger(account.table_client(settings.ledger_table), clock=clock)
    from shared.ledger.sqlite import SqliteLedger

    return SqliteLedger(settings.state_dir / "ledger.db", clock=clock)


def open_dispatcher(settings: Settings) -> Dispatcher:
    """The Storage queue the `run_action` trigger reads (Azure), else in-process wake-ups."""
    if settings.state_backend == "azure":
        from shared.adapters.azure_storage import StorageAccount
        from shared.service.queue_dispatch import QueueDispatcher

        account = StorageAccount.from_settings(settings.storage, settings.azure_http)
        return QueueDispatcher.open(account, settings.actions_queue)
    return LocalDispatcher()


def outcome_sink(settings: Settings) -> Callable[[Action], None] | None:
    """The Event Grid publisher when MODELOPS_OUTCOME_TOPIC_ENDPOINT is set, else None."""
    if settings.outcome_topic is None:
        return None
    from shared.adapters.outcome_events import OutcomePublisher, OutcomeTopic

    topic = OutcomeTopic.from_settings(settings.outcome_topic)
    return OutcomePublisher(topic) if topic else None


def refuse_local_default_in_azure(settings: Settings) -> None:
    """In Azure the embedded local default (MLflow on 127.0.0.1, a SQLite "Azure ML") is never right."""
    if not settings.in_azure:
        return
    fix = (
        "run `modelops config init --azure`, fill in the placeholders, deploy the file with the app "
        "and set the MODELOPS_CONFIG app setting to its path (e.g. modelops.yaml in the package root)"
    )
    if not settings.config_path:
        problem = "not set while running in Azure (WEBSITE_INSTANCE_ID/WEBSITE_SITE_NAME are set)"
        raise ConfigError.single(
            "environment", "MODELOPS_CONFIG", f"{problem}; the embedded default is local only", fix
        )
    if Path(settings.config_path).resolve() == DEFAULT_CONFIG.resolve():
        problem = f"{settings.config_path} is the embedded local default, which does not work in Azure"
        raise ConfigError.single("environment", "MODELOPS_CONFIG", problem, fix)
