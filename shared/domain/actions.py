"""Planned actions and their lifecycle."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.clock import iso
from shared.domain.outputs import Outputs
from shared.domain.params import ActionParams

REGISTER = "register"
DEPLOY = "deploy"
BATCH_SCORE = "batch_score"
ACTION_KINDS = (REGISTER, DEPLOY, BATCH_SCORE)
VALIDATE = "validate"  # gate: score candidate and baseline on holdout data, decide by thresholds
APPROVE = "approve"  # gate: wait (no worker held) for an approver's decision
STEP_KINDS = (*ACTION_KINDS, VALIDATE, APPROVE)  # what a rule's `do:` step may be
RESOLVE_RUN = "resolve_run"  # internal: read a finished run's model and metrics, then plan the rules
ROLLBACK = "rollback"  # operator: a deployment target back to the version it kept (never planned by rules)

QUEUED = "queued"  # waiting for a worker (or for the action it runs after)
RUNNING = "running"  # claimed under a lease
WAITING = "waiting"  # started remote work (a Databricks run...); re-checked later
SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"  # the action it runs after failed (or was superseded)
SUPERSEDED = "superseded"  # a deploy whose version stopped being the desired one: it switched nothing
TERMINAL = frozenset({SUCCEEDED, FAILED, SKIPPED, SUPERSEDED})
STATUSES = (QUEUED, RUNNING, WAITING, SUCCEEDED, FAILED, SKIPPED, SUPERSEDED)
SERVING_KINDS = frozenset({DEPLOY, ROLLBACK})  # actions that change what a target serves: one at a time per line


# sources whose actions keep the keys of the one-source-per-kind configs (ledgers written then stay valid)
UNSCOPED_SOURCES = frozenset({"mlflow", "databricks", "azureml", "operator"})


def source_scope(source: str | None) -> str | None:
    """The source name that tells two sources' same-named versions apart, or None for the names of
    one-source-per-kind configs (mlflow, databricks, azureml, operator), whose keys and names stay as
    they were. Action keys and Azure ML deployment names both scope by it."""
    return source if source and source not in UNSCOPED_SOURCES else None


def action_key(kind: str, target: str, model_name: str, model_version: str, source: str | None = None) -> str:
    """One execution per (action, target, source model version), whichever event asked for it.

    Two named sources may both hold `churn` version 3: a source not named for its kind scopes the
    key (`register:central:team-b/churn:3`); the names mlflow, databricks and azureml do not.
    """
    scope = source_scope(source)
    return f"{kind}:{target}:{scope + '/' if scope else ''}{model_name}:{model_version}"


def serving_line(target: str, model_name: str, source: str | None, model_line: str | None = None) -> str:
    """The model line a deploy or rollback changes: (target, source scope, source model). Changes of one
    line are serialized by the ledger; ``model_line`` names the source model where the action's own
    model is a copy (a rollback names the deployed copy)."""
    return f"{target}|{source_scope(source) or ''}|{model_line or model_name}"


def line_of(action: Action) -> str | None:
    """The serving line an action changes, or None for actions that change no target's serving."""
    if action.kind not in SERVING_KINDS:
        return None
    params = action.params
    return serving_line(action.target, action.model_name, params.source, params.model_line)


def short_hash(text: str, length: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class PlannedAction:
    """An action a rule (or an operator) asks for; becomes an Action row in the ledger."""

    kind: str
    target: str
    model_name: str
    model_version: str
    params: ActionParams = field(default_factory=lambda: ActionParams(source="operator"))
    rule: str | None = None
    after_index: int | None = None  # index in the same plan of the action this one runs after
    qualifier: str | None = None  # appended to the key (a rollback: the version it moves away from)

    @property
    def key(self) -> str:
        key = action_key(self.kind, self.target, self.model_name, self.model_version, self.params.source)
        return f"{key}:{self.qualifier}" if self.qualifier else key


@dataclass
class Action:
    """An action as the ledger holds it."""

    id: str
    key: str
    kind: str
    target: str
    model_name: str
    model_version: str
    event_id: str
    status: str
    params: ActionParams
    outputs: Outputs
    attempts: int = 0
    max_attempts: int = 5
    after: str | None = None
    rule: str | None = None
    error: str | None = None
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    not_before: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_ms: int | None = None
    generation: int = 0  # attempt generation: a forced re-run of a succeeded action starts the next one

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "kind": self.kind,
            "target": self.target,
            "model_name": self.model_name,
            "model_version": self.model_version,
            "event_id": self.event_id,
            "status": self.status,
            "attempts": self.attempts,
            "generation": self.generation,
            "max_attempts": self.max_attempts,
            "after": self.after,
            "rule": self.rule,
            "params": self.params.to_dict(),
            "outputs": self.outputs.to_dict(),
            "error": self.error,
            "created_at": iso(self.created_at),
            "started_at": iso(self.started_at),
            "finished_at": iso(self.finished_at),
            "duration_ms": self.duration_ms,
            "not_before": iso(self.not_before),
        }
