"""What a rule (or an operator) hands an executor with an action: frozen, typed, stored as JSON.

The ledger stores ``to_dict()`` (the same JSON the ops API shows under ``params``) and reads it
back with ``from_dict()``, which ignores keys it does not know, so a row written by another
version still loads.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class ActionParams:
    """Where the event's model lives and what the event said about it."""

    source: str  # name of the `sources:` entry (or "operator")
    event_kind: str | None = None
    source_tracking_uri: str | None = None
    source_registry_uri: str | None = None
    source_registry: str | None = None  # a `registries:` entry holding the source's models
    run_id: str | None = None
    source_model_uri: str | None = None  # a finished run's logged model (runs:/... or models:/...)
    job_run_id: str | None = None  # a Databricks job run, for run resolution
    target_model_name: str | None = None  # register: the name in the target registry, if not the source's
    event_payload: dict[str, Any] | None = None  # resolve_run: the event to plan again once resolved
    from_version: str | None = None  # rollback: the version serving when it was asked for
    alias: str | None = None  # deploy: the alias (or stage) whose holder the target should serve
    stage: str | None = None
    change: str | None = None  # deploy: which move of that alias asked for it (a move back is a new change)
    model_line: str | None = None  # rollback: the source model of the line it changes (its own model is the copy)
    line_version: str | None = None  # rollback: the source version it restores

    def to_dict(self) -> dict[str, Any]:
        # shallow (asdict recursed and deep-copied every field: a tenth of an intake's encoding);
        # the one container field is copied
        out = {name: getattr(self, name) for name in _FIELD_NAMES}
        if self.event_payload is not None:
            out["event_payload"] = copy.deepcopy(self.event_payload)
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActionParams:
        values = {k: v for k, v in data.items() if k in _KNOWN}
        for name in ("run_id", "job_run_id"):
            if values.get(name) is not None:
                values[name] = str(values[name])
        values.setdefault("source", "operator")
        return cls(**values)


_FIELD_NAMES = tuple(f.name for f in fields(ActionParams))
_KNOWN = frozenset(_FIELD_NAMES)
