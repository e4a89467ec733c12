"""The one event model every source normalizes into."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

# Normalized event kinds. Rules name these in `on:`.
REGISTERED_MODEL_CREATED = "registered_model.created"
MODEL_VERSION_CREATED = "model_version.created"
MODEL_VERSION_TAG_SET = "model_version.tag_set"
MODEL_VERSION_TAG_DELETED = "model_version.tag_deleted"
MODEL_VERSION_ALIAS_SET = "model_version.alias_set"
MODEL_VERSION_ALIAS_DELETED = "model_version.alias_deleted"
MODEL_VERSION_STAGE_CHANGED = "model_version.stage_changed"
MODEL_VERSION_TRANSITION_REQUESTED = "model_version.transition_requested"
MODEL_REGISTERED = "model.registered"  # Azure ML ModelRegistered
MODEL_DEPLOYED = "model.deployed"  # Azure ML ModelDeployed
RUN_COMPLETED = "run.completed"
RUN_STATUS_CHANGED = "run.status_changed"
COMMENT_CREATED = "comment.created"

# How an event arrived (`ModelEvent.via`); its `source` is the name of a configured source.
WEBHOOK = "webhook"
EVENTGRID = "eventgrid"
POLLER = "poller"  # stored by versions before reconcile; read back as it was
OPERATOR = "operator"
RECONCILE = "reconcile"  # a change no event reported, found by comparing the registry with the ledger
VIAS = (WEBHOOK, EVENTGRID, POLLER, OPERATOR, RECONCILE)
MOVES = frozenset({MODEL_VERSION_ALIAS_SET, MODEL_VERSION_ALIAS_DELETED, MODEL_VERSION_STAGE_CHANGED})

RUN_KINDS = frozenset({RUN_COMPLETED, RUN_STATUS_CHANGED})

KINDS = frozenset(
    {
        REGISTERED_MODEL_CREATED,
        MODEL_VERSION_CREATED,
        MODEL_VERSION_TAG_SET,
        MODEL_VERSION_TAG_DELETED,
        MODEL_VERSION_ALIAS_SET,
        MODEL_VERSION_ALIAS_DELETED,
        MODEL_VERSION_STAGE_CHANGED,
        MODEL_VERSION_TRANSITION_REQUESTED,
        MODEL_REGISTERED,
        MODEL_DEPLOYED,
        RUN_COMPLETED,
        RUN_STATUS_CHANGED,
        COMMENT_CREATED,
    }
)


@dataclass(frozen=True)
class ModelEvent:
    """A registry or run event, whatever source it came from.

    ``kind`` is one of KINDS, or None when the source sent something the reactor does not act on
    (it is then recorded as ignored, with ``ignored_reason``).
    """

    source: str  # the name of the `sources:` entry it came from (or "operator" in rows of older versions)
    kind: str | None
    source_type: str  # the sender's own event name, e.g. "model_version.created"
    via: str = WEBHOOK  # how it arrived: one of VIAS
    model_name: str | None = None
    model_version: str | None = None
    alias: str | None = None
    stage: str | None = None
    from_stage: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    run_id: str | None = None
    run_status: str | None = None
    experiment: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    model_uri: str | None = None  # a run's logged model, once the run is resolved
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    delivery_id: str | None = None
    subject: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    ignored_reason: str | None = None
    change: str | None = None  # a move's identity when the reactor knew it first (shared/service/moves.py)

    @property
    def move(self) -> str:
        """Which move of an alias or stage this is: the sender's time of it (a redelivery repeats it, a
        move back to an earlier holder is a new one), or the identity the reactor gave it first."""
        return self.change or self.occurred_at.isoformat()

    @property
    def dedupe_key(self) -> str:
        """Stable across redeliveries *and* across sources reporting the same change.

        A webhook delivery and the poller seeing the same new version of the same source yield the
        same key (``via`` is not part of it), so the change is acted on once. Events the reactor
        ignores are keyed by delivery id (or body).
        """
        registry = self.source
        if self.kind is None:
            basis = self.delivery_id or _digest(self.raw)
            return f"{registry}|ignored|{self.source_type}|{basis}"
        parts = [registry, self.kind, self.model_name or "", self.model_version or ""]
        if self.kind in (MODEL_VERSION_ALIAS_SET, MODEL_VERSION_ALIAS_DELETED):
            parts += [self.alias or "", self.move]
        elif self.kind in (MODEL_VERSION_TAG_SET, MODEL_VERSION_TAG_DELETED):
            parts.append(json.dumps(self.tags, sort_keys=True))
        elif self.kind in (MODEL_VERSION_STAGE_CHANGED, MODEL_VERSION_TRANSITION_REQUESTED):
            parts += [self.stage or "", self.move]
        elif self.kind in (RUN_COMPLETED, RUN_STATUS_CHANGED):
            parts += [self.run_id or str(self.raw.get("job_run_id", "")), self.run_status or ""]
        elif self.kind in (COMMENT_CREATED, MODEL_DEPLOYED):
            parts.append(self.delivery_id or _digest(self.raw))
        return "|".join(parts)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "via": self.via,
            "kind": self.kind,
            "source_type": self.source_type,
            "model_name": self.model_name,
            "model_version": self.model_version,
        }
        for name in ("alias", "stage", "from_stage", "run_id", "run_status", "experiment", "subject"):
            value = getattr(self, name)
            if value:
                out[name] = value
        if self.tags:
            out["tags"] = self.tags
        return out


def event_to_payload(event: ModelEvent) -> dict[str, Any]:
    """Everything needed to rebuild the event (for replay)."""
    out = {name: getattr(event, name) for name in ModelEvent.__dataclass_fields__}
    out["occurred_at"] = event.occurred_at.isoformat()
    return out


def event_from_payload(payload: dict[str, Any]) -> ModelEvent:
    data = {k: v for k, v in payload.items() if k in ModelEvent.__dataclass_fields__}
    data["occurred_at"] = datetime.fromisoformat(data["occurred_at"])
    if "via" not in data:  # stored before events said how they arrived: the source string did
        data["source"], data["via"] = _legacy_source(str(data.get("source", "")))
    return ModelEvent(**data)


def _legacy_source(source: str) -> tuple[str, str]:
    if source.startswith("poller:"):
        return source.removeprefix("poller:"), POLLER
    if source == "operator":
        return source, OPERATOR
    return source, EVENTGRID if source == "azureml" else WEBHOOK


def _digest(payload: dict[str, Any]) -> str:
    body = json.dumps(payload, sort_keys=True, default=str).encode()
    return hashlib.sha256(body).hexdigest()[:32]
