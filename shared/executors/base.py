"""What the worker hands an executor, and what an executor hands back."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from shared.config.schema import ReactorConfig, TargetConfig
from shared.domain.actions import Action
from shared.domain.events import ModelEvent
from shared.errors import PermanentError
from shared.settings import Settings

T = TypeVar("T")


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "tracking_uri": self.tracking_uri,
            "registry_uri": self.registry_uri,
            "model_name": self.name,
            "model_version": self.version,
            "model_uri": self.uri,
            "registry": self.registry,
        }


@dataclass(frozen=True)
class Outcome:
    """An executor's result: done with outputs, or waiting on remote work to be re-checked."""

    outputs: dict[str, Any] = field(default_factory=dict)
    recheck_after_seconds: float | None = None  # set: remote work still running; call again later

    @classmethod
    def done(cls, **outputs: Any) -> Outcome:
        return cls(outputs=outputs)

    @classmethod
    def waiting(cls, recheck_after_seconds: float, **outputs: Any) -> Outcome:
        return cls(outputs=outputs, recheck_after_seconds=recheck_after_seconds)


@dataclass
class ActionContext:
    """Everything an executor may use. ``action.outputs`` holds what earlier attempts recorded."""

    action: Action
    config: ReactorConfig
    state_dir: Path
    upstream: dict[str, Any]  # outputs of the action this one runs after ({} if none)
    log: logging.Logger | logging.LoggerAdapter[logging.Logger]
    progress: Callable[[str], None] = lambda message: None
    # for run resolution: plan the rules again for the enriched event (returns new action ids)
    follow_up: Callable[[ModelEvent], list[str]] = lambda event: []
    # app settings: a value the config names by setting (`token_setting:`) is read here
    settings: Settings = field(default_factory=Settings)

    def target_config(self) -> TargetConfig:
        return self.config.targets(self.action.kind)[self.action.target]

    def target(self, cls: type[T]) -> T:
        """The action's target config, as the class this executor is registered for."""
        config = self.target_config()
        if not isinstance(config, cls):
            raise PermanentError(f"target {self.action.target!r} is a {config.kind!r} target, not {cls.__name__}")
        return config

    def model(self) -> ModelRef:
        """The model version to act on: the upstream register's copy if any, else the event's."""
        if self.upstream.get("model_uri"):
            return ModelRef(
                tracking_uri=self.upstream["tracking_uri"],
                registry_uri=self.upstream.get("registry_uri"),
                name=self.upstream["model_name"],
                version=str(self.upstream["model_version"]),
                registry=self.upstream.get("registry"),
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
