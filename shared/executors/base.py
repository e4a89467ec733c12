"""What the worker hands an executor, and what an executor hands back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, TypeVar

from shared.config.schema import ReactorConfig, TargetConfig
from shared.domain.actions import Action
from shared.domain.events import ModelEvent
from shared.domain.outputs import ModelLocation, Outputs
from shared.errors import PermanentError
from shared.settings import Settings

T = TypeVar("T")
O = TypeVar("O", bound=Outputs)  # noqa: E741


@dataclass(frozen=True)
class ModelRef:
    """A model version in some MLflow registry."""

    tracking_uri: str
    registry_uri: str | None
    name: str
    version: str
    registry: str | None = None  # name of the `registries:` entry, when it is one

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class Outcome:
    """An executor's result: done with outputs, or waiting on remote work to be re-checked."""

    outputs: Outputs
    recheck_after_seconds: float | None = None  # set: remote work still running; call again later
    announce: bool = False  # waiting on someone (an approval): tell the outcome sink now, not only when done

    @classmethod
    def done(cls, outputs: Outputs) -> Outcome:
        return cls(outputs=outputs)

    @classmethod
    def waiting(cls, recheck_after_seconds: float, outputs: Outputs) -> Outcome:
        return cls(outputs=outputs, recheck_after_seconds=recheck_after_seconds)


def scratch_path(state_dir: Path, action_id: str) -> Path:
    """Where an attempt of the action keeps its downloads; shared/service/scratch.py clears it."""
    return state_dir / "tmp" / action_id


@dataclass
class ActionContext:
    """Everything an executor may use. ``action.outputs`` holds what earlier attempts recorded."""

    action: Action
    config: ReactorConfig
    state_dir: Path
    upstream: tuple[Outputs, ...]  # outputs of the chain this action runs after, nearest first
    log: logging.Logger | logging.LoggerAdapter[logging.Logger]
    progress: Callable[[str], None] = lambda message: None
    # for run resolution: plan the rules again for the enriched event (returns new action ids)
    follow_up: Callable[[ModelEvent], list[str]] = lambda event: []
    # app settings: a value the config names by setting (`token_setting:`) is read here
    settings: Settings = field(default_factory=Settings.from_env)
    # newest wins: raises shared.errors.Superseded when the action's version is no longer desired
    desired_check: Callable[[], None] = lambda: None

    def ensure_desired(self) -> None:
        """Call right before switching what a target serves (promote, traffic, retire): a deploy whose
        version stopped being desired (the alias moved on, a rollback pins the target) ends
        `superseded` and must switch nothing (shared/service/desired.py)."""
        self.desired_check()

    @property
    def scratch_dir(self) -> Path:
        """This action's scratch space (downloads): emptied at each claim, removed after the attempt."""
        return scratch_path(self.state_dir, self.action.id)

    def withheld_settings(self) -> set[str]:
        """The named sources' secret settings: never in a model's process, even when a target names one."""
        return {s.secret_setting for s in self.config.sources.values() if s.secret_setting}

    def target_config(self) -> TargetConfig:
        return self.config.targets(self.action.kind)[self.action.target]

    def target(self, cls: type[T]) -> T:
        """The action's target config, as the class this executor is registered for."""
        config = self.target_config()
        if not isinstance(config, cls):
            raise PermanentError(f"target {self.action.target!r} is a {config.kind!r} target, not {cls.__name__}")
        return config

    def earlier(self, cls: type[O]) -> O:
        """What earlier attempts or re-checks of this action recorded, as its kind's outputs."""
        recorded = self.action.outputs
        return recorded if isinstance(recorded, cls) else cls.from_dict(recorded.to_dict())

    def model(self) -> ModelRef:
        """The model version to act on: the nearest upstream register's copy if any, else the event's."""
        for outputs in self.upstream:
            if isinstance(outputs, ModelLocation) and outputs.model_name and outputs.tracking_uri:
                return ModelRef(
                    tracking_uri=outputs.tracking_uri,
                    registry_uri=outputs.registry_uri,
                    name=outputs.model_name,
                    version=str(outputs.model_version),
                    registry=outputs.registry,
                )
        tracking_uri, registry_uri = self.source_uris()
        params = self.action.params
        return ModelRef(
            tracking_uri, registry_uri, self.action.model_name, self.action.model_version, params.source_registry
        )

    def source_uris(self) -> tuple[str, str | None]:
        """(tracking URI, registry URI) of the event's source registry."""
        params = self.action.params
        if params.source_tracking_uri:
            return params.source_tracking_uri, params.source_registry_uri
        if params.source_registry:
            from shared.adapters.registry_uris import registry_uris

            return registry_uris(self.config.registries[params.source_registry])
        raise PermanentError(
            f"source {params.source!r} has no location: add `sources: {{{params.source}:"
            " {tracking_uri: ...}}` (or `registry: <name>`) to the config"
        )


class Executor(Protocol):
    """Runs one action kind against one target kind. Must be idempotent per action key."""

    def execute(self, ctx: ActionContext) -> Outcome: ...
