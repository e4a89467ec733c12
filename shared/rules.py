"""Declarative rules: which normalized events lead to which actions."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from shared.config.rules import Rule
from shared.config.schema import ReactorConfig
from shared.domain.actions import DEPLOY, RESOLVE_RUN, PlannedAction
from shared.domain.events import (
    MODEL_VERSION_ALIAS_SET,
    MODEL_VERSION_STAGE_CHANGED,
    RUN_KINDS,
    ModelEvent,
    event_to_payload,
)
from shared.domain.params import ActionParams
from shared.lineage import ORIGINS_TAG, RULE_TAG, SOURCE_TAG, loop_back

# events that declare what a target should serve: the holder of an alias, or the version in a stage
DECLARING = frozenset({MODEL_VERSION_ALIAS_SET, MODEL_VERSION_STAGE_CHANGED})


def rule_label(rule: Rule, number: int) -> str:
    return rule.name or f"rules[{number}]"


@dataclass(frozen=True)
class RuleVerdict:
    """What one rule made of an event: matched (and the keys of the actions it asked for), or the
    first filter that failed (``on``, ``loop``, ``source``, ``tags``, ``register``, ``model``,
    ``models``, ``alias``, ``stage``, ``when``) and why; ``pending`` while a run is resolved first."""

    rule: str
    matched: bool
    failed: str | None = None
    reason: str | None = None
    actions: tuple[str, ...] = ()
    pending: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "matched": self.matched,
            "failed": self.failed,
            "reason": self.reason,
            "actions": list(self.actions),
            "pending": self.pending,
        }


@dataclass(frozen=True)
class Explanation:
    """The plan for an event, why it is empty when it is, and every rule's verdict."""

    plan: list[PlannedAction]
    reason: str
    rules: list[RuleVerdict] = field(default_factory=list)


def plan_actions(config: ReactorConfig, event: ModelEvent) -> tuple[list[PlannedAction], str]:
    """The actions every matching rule asks for, and a reason when there are none (see ``explain``)."""
    explained = explain(config, event)
    return explained.plan, explained.reason


def explain(config: ReactorConfig, event: ModelEvent) -> Explanation:
    """The actions every matching rule asks for, a reason when there are none, and each rule's verdict.

    Steps of one rule run in order (each after the previous one). The same action asked for by
    two rules is planned once. A finished run whose model and metrics are not known yet is first
    resolved (a `resolve_run` action reads them from the run's tracking server, then plans again).
    Intake plans with this function, so what it explains is what intake does.
    """
    labels = [rule_label(rule, number) for number, rule in enumerate(config.rules)]
    if event.kind is None:
        reason = event.ignored_reason or f"{event.source_type} is not an event the reactor acts on"
        return Explanation([], reason, [RuleVerdict(label, False, "on", reason) for label in labels])
    if event.kind in RUN_KINDS and event.model_uri is None:
        return _plan_resolution(config, event)
    plan: list[PlannedAction] = []
    index_of: dict[str, int] = {}
    misses: list[str] = []
    verdicts: list[RuleVerdict] = []
    for rule, label in zip(config.rules, labels, strict=True):
        miss = _mismatch(rule, event, label) or _loop_back(config, rule, event)
        if miss:
            if event.kind in rule.on:
                misses.append(f"{label}: {miss[1]}")
            verdicts.append(RuleVerdict(label, False, *miss))
            continue
        previous: int | None = None
        keys: list[str] = []
        for step in rule.do:
            if event.kind in RUN_KINDS:
                # a run's model has no registry name yet: the rule's register step names it
                name = next((s.name for s in rule.do if s.kind == "register" and s.name), None) or ""
                model_name, model_version, target_name = name, f"run-{event.run_id}", name
            else:
                model_name, model_version = event.model_name or "", event.model_version or ""
                target_name = step.name if (step.kind == "register" and step.name) else model_name
            params = action_params(config, event, target_model_name=target_name)
            declares = step.kind == DEPLOY and event.kind in DECLARING
            planned = PlannedAction(
                kind=step.kind,
                target=step.target,
                model_name=model_name,
                model_version=model_version,
                # a deploy asked for by a move serves the mover's holder while it holds (newest wins,
                # shared/service/desired.py); a move back to an earlier holder is a new deploy
                params=replace(params, alias=event.alias, stage=event.stage, change=event.move) if declares else params,
                rule=label,
                after_index=previous,
                qualifier=event.move if declares else None,
            )
            keys.append(planned.key)
            if planned.key in index_of:
                previous = index_of[planned.key]
                continue
            index_of[planned.key] = len(plan)
            plan.append(planned)
            previous = len(plan) - 1
        verdicts.append(RuleVerdict(label, True, actions=tuple(keys)))
    if plan:
        return Explanation(plan, "", verdicts)
    if misses:
        return Explanation([], "no rule matched (" + "; ".join(misses) + ")", verdicts)
    return Explanation([], f"no rule listens to {event.kind}", verdicts)


def _plan_resolution(config: ReactorConfig, event: ModelEvent) -> Explanation:
    misses = []
    verdicts: list[RuleVerdict] = []
    resolve: PlannedAction | None = None
    for number, rule in enumerate(config.rules):
        label = rule_label(rule, number)
        if event.kind not in rule.on:
            verdicts.append(RuleVerdict(label, False, "on", f"listens to {', '.join(rule.on)}, not {event.kind}"))
            continue
        miss = _source_or_tags_mismatch(rule, event)
        if miss is not None:
            misses.append(f"{label}: {miss[1]}")
            verdicts.append(RuleVerdict(label, False, *miss))
            continue
        if resolve is None:
            source = event.source
            params = action_params(config, event, target_model_name=None, event_payload=event_to_payload(event))
            resolve = PlannedAction(
                kind=RESOLVE_RUN,
                target=source,
                model_name=event.experiment or "(run)",
                model_version=event.run_id or str(event.raw.get("job_run_id", "")),
                params=params,
                rule="run resolution",
            )
        why = "the run's model and metrics are read first (resolve_run); the rules are then planned again"
        verdicts.append(RuleVerdict(label, False, reason=why, actions=(resolve.key,), pending=True))
    if resolve is not None:
        return Explanation([resolve], "", verdicts)
    if misses:
        return Explanation([], "no rule matched (" + "; ".join(misses) + ")", verdicts)
    return Explanation([], f"no rule listens to {event.kind}", verdicts)


Miss = tuple[str, str]  # (the filter that failed, why)


def _source_or_tags_mismatch(rule: Rule, event: ModelEvent) -> Miss | None:
    if rule.source and event.source not in rule.source:
        return "source", f"source {event.source} not in {rule.source}"
    for key, value in rule.tags.items():
        if event.tags.get(key) != value:
            return "tags", f"tag {key}={value} missing"
    return None


def _loop_back(config: ReactorConfig, rule: Rule, event: ModelEvent) -> Miss | None:
    """A rule that would copy a version back into a registry along its lineage (shared/lineage.py)."""
    if SOURCE_TAG not in event.tags and ORIGINS_TAG not in event.tags:
        return None  # not a copy (most events): nothing to look up
    for step in rule.do:
        if step.kind == "register":
            why = loop_back(config, step.target, event.tags)
            if why:
                return "loop", why
    return None


def _mismatch(rule: Rule, event: ModelEvent, label: str) -> Miss | None:
    """The first of the rule's filters the event fails, in the order intake checks them."""
    if event.kind not in rule.on:
        return "on", f"listens to {', '.join(rule.on)}, not {event.kind}"
    if event.tags.get(RULE_TAG) == label:
        origin = event.tags.get(SOURCE_TAG)
        where = f" from source {origin}" if origin else ""
        return "loop", f"this version was registered by this rule{where} (loop protection)"
    miss = _source_or_tags_mismatch(rule, event)
    if miss:
        return miss
    if event.kind in RUN_KINDS:
        if not any(s.kind == "register" and s.name for s in rule.do):
            return "register", "a run.completed rule needs a register step with `name:`"
    else:
        if not event.model_name or not event.model_version:
            return "model", "event names no model version"
        if not any(fnmatchcase(event.model_name, pattern) for pattern in rule.models):
            return "models", f"model {event.model_name!r} not in {rule.models}"
    if rule.alias and event.alias != rule.alias:
        return "alias", f"alias {event.alias!r} is not {rule.alias!r}"
    if rule.stage and (event.stage or "").lower() != rule.stage.lower():
        return "stage", f"stage {event.stage!r} is not {rule.stage!r}"
    if rule.when is not None:
        value = event.metrics.get(rule.when.metric)
        if value is None:
            return "when", f"run has no metric {rule.when.metric!r}"
        if rule.when.at_least is not None and value < rule.when.at_least:
            return "when", f"{rule.when.metric}={value} < {rule.when.at_least}"
        if rule.when.at_most is not None and value > rule.when.at_most:
            return "when", f"{rule.when.metric}={value} > {rule.when.at_most}"
    return None


def action_params(
    config: ReactorConfig,
    event: ModelEvent,
    *,
    target_model_name: str | None,
    event_payload: dict[str, Any] | None = None,
) -> ActionParams:
    """Where the event's model lives (its source's location) and what the event said of it."""
    source_name = event.source
    source = config.sources.get(source_name)
    tracking_uri = source.tracking_uri if source is not None else None
    job_run_id = event.raw.get("job_run_id")
    return ActionParams(
        source=source_name,
        event_kind=event.kind,
        source_tracking_uri=tracking_uri,
        source_registry_uri=source.registry_uri if source is not None and tracking_uri else None,
        source_registry=source.registry if source is not None else None,
        run_id=event.run_id or None,
        source_model_uri=event.model_uri or None,
        job_run_id=str(job_run_id) if job_run_id else None,
        target_model_name=target_model_name
        if target_model_name and (target_model_name != event.model_name or event.model_uri)
        else None,
        event_payload=event_payload,
    )
