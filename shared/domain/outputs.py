"""What each action kind records when it runs: frozen, typed, stored by the ledger as JSON.

An executor returns one of these; the ledger merges it into what earlier attempts recorded (a
field set now wins, a field left None keeps the earlier value) and stores ``to_dict()``, the JSON
the ops API shows under ``outputs``. ``outputs_from_dict`` reads a stored row back by the
action's kind, ignoring keys it does not know, so a row written by another version still loads.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, TypeVar

O = TypeVar("O", bound="Outputs")  # noqa: E741 - one letter, like the T of a generic


@dataclass(frozen=True)
class Outputs:
    def to_dict(self) -> dict[str, Any]:
        # one level deep, as asdict would copy these flat fields (lists and dicts of scalars) but
        # without its recursion: every intake encodes its actions' empty outputs
        out: dict[str, Any] = {}
        for name in _names(type(self)):
            value = getattr(self, name)
            if value is not None:
                out[name] = value.copy() if isinstance(value, list | dict) else value
        return out

    @classmethod
    def from_dict(cls: type[O], data: dict[str, Any]) -> O:
        known = _names(cls)
        return cls(**{k: v for k, v in data.items() if k in known})

    def merged(self: O, newer: Outputs) -> O:
        """These outputs updated by ``newer`` (of the same kind): its fields that are set win."""
        if not isinstance(newer, type(self)):
            return self.from_dict({**self.to_dict(), **newer.to_dict()})
        return replace(self, **newer.to_dict())


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _names(cls: type) -> tuple[str, ...]:
    """A kind's field names in order, read once (``dataclasses.fields`` builds them on every call)."""
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = tuple(f.name for f in fields(cls))
    return names


@dataclass(frozen=True)
class ModelLocation(Outputs):
    """A model version in an MLflow registry: what a register step hands the steps after it."""

    tracking_uri: str | None = None
    registry_uri: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_uri: str | None = None
    registry: str | None = None  # the `registries:` entry


@dataclass(frozen=True)
class RegisterOutputs(ModelLocation):
    run_id: str | None = None  # the copy's run in the target registry
    reused: bool | None = None  # an earlier copy (found by its lineage tags) was kept
    params_copied: int | None = None  # dual tracking: the source run's (or logged model's) params on the copy's run
    metrics_copied: int | None = None  # its metric keys
    metric_points_copied: int | None = None  # their points, every (step, timestamp, value) of each history
    run_items_refused: int | None = None  # params, tags or points the target refused (each one in the log)


@dataclass(frozen=True)
class DeployOutputs(Outputs):
    target: str | None = None
    kind: str | None = None
    model_name: str | None = None
    model_version: str | None = None
    model_uri: str | None = None
    scoring_url: str | None = None  # local: the /invocations URL
    endpoint_url: str | None = None  # local: the server's base URL
    scoring_uri: str | None = None  # Azure ML: the endpoint's or web service's scoring URI
    endpoint: str | None = None  # online endpoints
    deployment: str | None = None  # online endpoints: the blue/green deployment name
    service: str | None = None  # ACI/AKS web service name
    phase: str | None = None  # online: where a deploy that waits on Azure stands
    submitted_at: float | None = None  # online: when this deployment was submitted (epoch s)
    traffic: dict[str, int] | None = None
    smoke_test: str | None = None
    replaced: list[str] | None = None  # local: versions stopped once this one served
    deleted: list[str] | None = None  # Azure: old deployments/services removed
    kept: list[str] | None = None  # Azure: old ones kept for rollback
    pid: int | None = None
    port: int | None = None
    log_file: str | None = None
    reused: bool | None = None
    legacy: str | None = None  # ACI/AKS: the SDK v1 notice
    router_url: str | None = None  # local: the target's stable endpoint (<router>/invocations)
    # a rollout in steps (shared/executors/rollout.py): where it stands, so a re-check resumes there
    rollout_step: int | None = None  # index of the phase (mirror, then each step) under way
    rollout_window: str | None = None  # the phase's judging window: a router window, or its start (ISO)
    rollout_since: float | None = None  # when the phase's hold began (epoch s)
    rollout_extra_holds: int | None = None  # holds added to this phase for want of traffic
    rollout_from: list[str] | None = None  # what served before: route ids (local) or deployments (online)
    rollout_failed: str | None = None  # a failed judgement, traffic already restored: the action fails with it
    rollout_attempt: int | None = None  # the attempt that recorded rollout_failed (a replay starts afresh)
    rollout_pending: dict[str, Any] | None = None  # online: a traffic change Azure has not taken yet
    rollout: list[dict[str, Any]] | None = None  # one entry per phase: traffic, hold, figures, verdict


@dataclass(frozen=True)
class BatchScoreOutputs(Outputs):
    model_name: str | None = None
    model_version: str | None = None
    model_uri: str | None = None
    output: str | None = None
    rows: int | None = None
    seconds: float | None = None
    rows_per_second: int | None = None
    log: str | None = None
    reused: bool | None = None
    job_id: int | None = None  # Databricks
    job_parameters: dict[str, str] | None = None
    idempotency_token: str | None = None
    run_id: int | None = None
    run_page_url: str | None = None
    life_cycle_state: str | None = None
    result_state: str | None = None
    duration_seconds: float | None = None
    first_seen_at: float | None = None


@dataclass(frozen=True)
class RollbackOutputs(Outputs):
    target: str | None = None
    kind: str | None = None
    model_name: str | None = None
    model_version: str | None = None  # serving now (the version rolled back to)
    from_version: str | None = None  # the version it replaced
    scoring_url: str | None = None  # local
    endpoint_url: str | None = None
    scoring_uri: str | None = None  # Azure ML
    endpoint: str | None = None
    deployment: str | None = None
    service: str | None = None
    traffic: dict[str, int] | None = None
    smoke_test: str | None = None
    pid: int | None = None
    port: int | None = None
    reused: bool | None = None  # it was already serving (a retry after the switch, or a rollout stopped)
    router_url: str | None = None  # local: the target's stable endpoint


@dataclass(frozen=True)
class ResolveRunOutputs(Outputs):
    run_id: str | None = None
    metrics: dict[str, float] | None = None
    model_uri: str | None = None
    planned: list[str] | None = None


@dataclass(frozen=True)
class ValidateOutputs(Outputs):
    """Evidence of a validation: both metric sets and each threshold's verdict (shared/executors/validate.py)."""

    validation: str | None = None  # the `validations:` entry
    model_name: str | None = None
    model_version: str | None = None  # the candidate
    baseline_alias: str | None = None
    baseline_version: str | None = None  # None: no holder of the alias yet (thresholds only)
    candidate_metrics: dict[str, float] | None = None
    baseline_metrics: dict[str, float] | None = None
    verdicts: list[dict[str, object]] | None = None  # [{metric, candidate, baseline, threshold..., passed, why}]
    passed: bool | None = None
    rows: int | None = None
    data: str | None = None
    candidate_run_id: str | None = None  # the evaluation runs, in the candidate's tracking server
    baseline_run_id: str | None = None
    note: str | None = None

    def summary(self) -> str:
        """The verdicts in one line: what an error message, a log line and `modelops actions` say."""
        parts = []
        for v in self.verdicts or []:
            base = "" if v.get("baseline") is None else f" vs baseline {v['baseline']:.4g}"
            parts.append(f"{v['metric']}={v['candidate']:.4g}{base}: {'passed' if v['passed'] else v['why']}")
        return "; ".join(parts)


@dataclass(frozen=True)
class ApproveOutputs(Outputs):
    """A gate waiting for a person: when it was asked, until when, and the decision once made."""

    approval: str | None = None  # the `approvals:` entry
    requested_at: str | None = None  # ISO 8601
    expires_at: str | None = None
    tag: str | None = None  # the tag that also approves (`approved` on the source version)
    decision: str | None = None  # approve | reject
    decided_by: str | None = None
    decided_at: str | None = None
    comment: str | None = None
    via: str | None = None  # api | cli | ui | tag


OUTPUT_TYPES: dict[str, type[Outputs]] = {
    "register": RegisterOutputs,
    "deploy": DeployOutputs,
    "batch_score": BatchScoreOutputs,
    "resolve_run": ResolveRunOutputs,
    "rollback": RollbackOutputs,
    "validate": ValidateOutputs,
    "approve": ApproveOutputs,
}


def outputs_from_dict(kind: str, data: dict[str, Any]) -> Outputs:
    return OUTPUT_TYPES.get(kind, Outputs).from_dict(data)


def empty_outputs(kind: str) -> Outputs:
    return OUTPUT_TYPES.get(kind, Outputs)()
