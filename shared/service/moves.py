"""Alias and stage moves as the ledger knows them: per (source, model, alias), the last holder
recorded and which move made it hold (a register ``alias:<source>|<model>|<alias>``); per (source,
model, stage) the same (``stage:<source>|<model>|<stage, lower case>``).

A move's identity is the sender's time of it (a redelivery repeats it; a move back to an earlier
holder is a new move: shared/domain/events.py ``ModelEvent.move``). Reconcile finds a move no event
reported and records it first, at its own time; the late webhook of that move (same holder, sent
before reconcile saw it) then takes the recorded move's identity, so the ledger answers it as a
duplicate. Clocks of sender and reactor are compared: a skew larger than the webhook's delay would
make the late webhook a second (harmless: the target already serves that version) change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from shared.domain.clock import iso, parse_dt
from shared.domain.events import MODEL_VERSION_ALIAS_SET, MODEL_VERSION_STAGE_CHANGED, ModelEvent
from shared.ledger.base import IntakeResult, Ledger


@dataclass(frozen=True)
class Move:
    version: str
    at: datetime
    change: str

    def encode(self) -> str:
        return json.dumps({"version": self.version, "at": iso(self.at), "change": self.change})


def register(source: str, model: str, alias: str | None = None, *, stage: str | None = None) -> str:
    if stage is not None:
        return f"stage:{source}|{model}|{stage.lower()}"
    return f"alias:{source}|{model}|{alias}"


def _register_of(event: ModelEvent) -> str | None:
    """The register an event's move writes: an alias set, or a stage change; None for other events."""
    if not event.model_name:
        return None
    if event.kind == MODEL_VERSION_ALIAS_SET and event.alias:
        return register(event.source, event.model_name, event.alias)
    if event.kind == MODEL_VERSION_STAGE_CHANGED and event.stage:
        return register(event.source, event.model_name, stage=event.stage)
    return None


def last_move(
    ledger: Ledger, source: str, model: str, alias: str | None = None, *, stage: str | None = None
) -> Move | None:
    return _read(ledger, register(source, model, alias, stage=stage))


def _read(ledger: Ledger, name: str) -> Move | None:
    raw = ledger.get_watermark(name)
    if not raw:
        return None
    data = json.loads(raw)
    at = parse_dt(data.get("at"))
    return Move(str(data["version"]), at, str(data["change"])) if at else None


def known_move(ledger: Ledger, event: ModelEvent) -> ModelEvent:
    """The event with the identity of the move already recorded, when it reports that move late."""
    name = _register_of(event)
    if name is None or event.change:
        return event
    last = _read(ledger, name)
    if last is not None and last.version == event.model_version and event.occurred_at <= last.at:
        return replace(event, change=last.change)
    return event


def note_move(ledger: Ledger, event: ModelEvent, result: IntakeResult) -> None:
    """Remember the newest recorded move of an alias or stage (what reconcile compares the registry with)."""
    name = _register_of(event)
    if name is None or result.duplicate:
        return
    for _ in range(5):  # compare-and-set: a concurrent move of the same alias may win a round
        raw = ledger.get_watermark(name)
        last = _read(ledger, name) if raw else None
        if last is not None and last.at > event.occurred_at:
            return  # an older move arriving late (unordered delivery): the newer one stays
        move = Move(str(event.model_version), event.occurred_at, event.move)
        if ledger.swap_watermark(name, raw, move.encode()):
            return
