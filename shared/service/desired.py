"""What the rules declare each deployment target should serve, read from the source registries.

A rule listening to an alias (or a stage) with a `deploy` step declares that the target serves, for
every model its globs match in its source, the version holding that alias now. A deploy re-reads
this right before it switches anything (``superseded_by``): newest wins. An operator's rollback pins
its line until the alias moves again (``pin`` / ``pin_of``); the reconciler never undoes a pin.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Protocol

from shared.config.schema import ReactorConfig
from shared.domain.actions import DEPLOY, Action, line_of
from shared.domain.clock import Clock, iso, now_utc
from shared.domain.desired import Heads, Pin
from shared.domain.events import MODEL_VERSION_ALIAS_SET, MODEL_VERSION_STAGE_CHANGED
from shared.ledger.base import Ledger
from shared.rules import rule_label
from shared.service import moves


class RegistryReader(Protocol):
    """The read-only registry port (shared/adapters/mlflow_registry_state.py)."""

    requests: int

    def alias_holder(self, model: str, alias: str) -> str | None: ...

    def stage_holder(self, model: str, stage: str) -> str | None: ...

    def has_version(self, model: str, version: str) -> bool: ...

    def version_tags(self, model: str, version: str) -> dict[str, str]: ...

    def heads(self, globs: Iterable[str]) -> Iterator[tuple[str, Heads]]: ...


@dataclass(frozen=True)
class Declaration:
    """One rule's deploy step: ``target`` serves the holder of ``alias``/``stage`` for ``models``."""

    rule: str
    target: str
    sources: tuple[str, ...]  # the sources it covers
    models: tuple[str, ...]
    alias: str | None
    stage: str | None

    def covers(self, source: str, model: str) -> bool:
        return source in self.sources and any(fnmatchcase(model, glob) for glob in self.models)


def declarations(config: ReactorConfig) -> list[Declaration]:
    """Every (rule, deploy target) that declares a desired version, in rule order."""
    out: list[Declaration] = []
    for number, rule in enumerate(config.rules):
        listens = (MODEL_VERSION_ALIAS_SET in rule.on and rule.alias) or (
            MODEL_VERSION_STAGE_CHANGED in rule.on and rule.stage
        )
        if not listens:
            continue
        sources = tuple(rule.source) if rule.source else tuple(config.sources)
        for step in rule.do:
            if step.kind == DEPLOY:
                alias = rule.alias if MODEL_VERSION_ALIAS_SET in rule.on else None
                stage = rule.stage if alias is None else None
                label = rule_label(rule, number)
                out.append(Declaration(label, step.target, sources, tuple(rule.models), alias, stage))
    return out


def default_reader(config: ReactorConfig) -> Callable[[str], RegistryReader]:
    def build(source: str) -> RegistryReader:
        from shared.adapters.mlflow_registry_state import RegistryState
        from shared.service.sources import source_uris

        return RegistryState(*source_uris(config, source))

    return build


class DesiredState:
    """Reads desired versions through one registry reader per source (built on first use)."""

    def __init__(
        self,
        config: ReactorConfig,
        ledger: Ledger,
        *,
        readers: Callable[[str], RegistryReader] | None = None,
        clock: Clock = now_utc,
    ) -> None:
        self.config = config
        self.ledger = ledger
        self._build = readers or default_reader(config)
        self._readers: dict[str, RegistryReader] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def reader(self, source: str) -> RegistryReader:
        with self._lock:
            if source not in self._readers:
                self._readers[source] = self._build(source)
            return self._readers[source]

    def holder(self, source: str, model: str, *, alias: str | None, stage: str | None) -> str | None:
        reader = self.reader(source)
        if alias:
            return reader.alias_holder(model, alias)
        return reader.stage_holder(model, stage or "")

    def declaration(self, target: str, source: str, model: str) -> Declaration | None:
        return next((d for d in declarations(self.config) if d.target == target and d.covers(source, model)), None)

    # -- newest wins --------------------------------------------------------------------------
    def superseded_by(self, action: Action) -> str | None:
        """Why a deploy must not switch anything now (its version is no longer desired), or None."""
        params = action.params
        if action.kind != DEPLOY or not (params.alias or params.stage):
            return None  # an operator's deploy, or a rule that declares nothing: it does what it was asked
        what = f"alias {params.alias}" if params.alias else f"stage {params.stage}"
        holder = self.holder(params.source, action.model_name, alias=params.alias, stage=params.stage)
        if holder is None and not self.reader(params.source).has_version(action.model_name, action.model_version):
            return None  # the registry has no such version: the deploy fails with that, instead of hiding it
        if holder != action.model_version:
            now = f"v{holder}" if holder else "no version"
            return f"{what} of {action.model_name} now names {now}: v{action.model_version} is no longer desired"
        line = line_of(action)
        pin = self.pin_of(line) if line else None
        if pin is None or line is None:
            return None
        if self.pin_holds(pin, holder, params.source, action.model_name, params.alias):
            if pin.version != action.model_version:
                return f"rollback {pin.action_id} pins the target to v{pin.version} until {what} moves again"
            return None
        self.release(line)  # the alias moved since the rollback: the pin is over
        return None

    def pin_holds(self, pin: Pin, holder: str | None, source: str, model: str, alias: str | None) -> bool:
        """A pin holds while the alias names what it named then, by the same move (a stage: the same holder)."""
        if pin.holder != holder:
            return False
        return alias is None or self._current_change(source, model, alias) == pin.change

    def _current_change(self, source: str, model: str, alias: str | None) -> str | None:
        last = moves.last_move(self.ledger, source, model, alias) if alias else None
        return last.change if last else None

    # -- pins ---------------------------------------------------------------------------------
    def pin(self, rollback: Action, version: str) -> Pin | None:
        """After a rollback of a declared line: hold it at ``version`` (the source version it restored)."""
        line = line_of(rollback)
        model = rollback.params.model_line or rollback.model_name
        found = self.declaration(rollback.target, rollback.params.source, model)
        if line is None or found is None:
            return None
        holder = self.holder(rollback.params.source, model, alias=found.alias, stage=found.stage)
        change = self._current_change(rollback.params.source, model, found.alias)
        pin = Pin(version=version, holder=holder, action_id=rollback.id, change=change or iso(self._clock()))
        self.ledger.set_watermark(f"pin:{line}", json.dumps(pin.__dict__))
        return pin

    def pin_of(self, line: str) -> Pin | None:
        raw = self.ledger.get_watermark(f"pin:{line}")
        return Pin(**json.loads(raw)) if raw else None  # "" once released

    def release(self, line: str) -> None:
        self.ledger.set_watermark(f"pin:{line}", "")
