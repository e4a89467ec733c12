"""Declarative rules: which normalized events lead to which actions."""

from __future__ import annotations

from fnmatch import fnmatchcase

from shared.config.schema import ReactorConfig, Rule
from shared.domain.actions import PlannedAction
from shared.domain.events import ModelEvent

LINEAGE_PREFIX = "modelops."


def plan_actions(config: ReactorConfig, event: ModelEvent) -> tuple[list[PlannedAction], str]:
    """The actions every matching rule asks for, and a reason when there are none.

    Steps of one rule run in order (each after the previous one). The same action asked for by
    two rules is planned once.
    """
    if event.kind is None:
        return [], event.ignored_reason or f"{event.source_type} is not an event the reactor acts on"
    plan: list[PlannedAction] = []
    index_of: dict[str, int] = {}
    misses: list[str] = []
    for number, rule in enumerate(config.rules):
        label = rule.name or f"rules[{number}]"
        miss = _mismatch(rule, event)
        if miss:
            if event.kind in rule.on:
                misses.append(f"{label}: {miss}")
            continue
        previous: int | None = None
        for step in rule.do:
            model_name = step.name if (step.kind == "register" and step.name) else event.model_name
            planned = PlannedAction(
                kind=step.kind,
                target=step.target,
                model_name=event.model_name or "",
                model_version=event.model_version or "",
                params=action_params(config, event, target_model_name=model_name),
                rule=label,
                after_index=previous,
            )
            if planned.key in index_of:
                previous = index_of[planned.key]
                continue
            index_of[planned.key] = len(plan)
            plan.append(planned)
            previous = len(plan) - 1
    if plan:
        return plan, ""
    if misses:
        return [], "no rule matched (" + "; ".join(misses) + ")"
    return [], f"no rule listens to {event.kind}"


def _mismatch(rule: Rule, event: ModelEvent) -> str | None:
    if event.kind not in rule.on:
        return "other event kind"
    if rule.source and event.source.split(":")[0] not in rule.source and event.source not in rule.source:
        return f"source {event.source} not in {rule.source}"
    if not event.model_name or not event.model_version:
        return "event names no model version"
    if not any(fnmatchcase(event.model_name, pattern) for pattern in rule.models):
        return f"model {event.model_name!r} not in {rule.models}"
    if rule.alias and event.alias != rule.alias:
        return f"alias {event.alias!r} is not {rule.alias!r}"
    if rule.stage and (event.stage or "").lower() != rule.stage.lower():
        return f"stage {event.stage!r} is not {rule.stage!r}"
    for key, value in rule.tags.items():
        if event.tags.get(key) != value:
            return f"tag {key}={value} missing"
    if rule.when is not None:
        value = event.metrics.get(rule.when.metric)
        if value is None:
            return f"run has no metric {rule.when.metric!r}"
        if rule.when.at_least is not None and value < rule.when.at_least:
            return f"{rule.when.metric}={value} < {rule.when.at_least}"
        if rule.when.at_most is not None and value > rule.when.at_most:
            return f"{rule.when.metric}={value} > {rule.when.at_most}"
    return None


def action_params(config: ReactorConfig, event: ModelEvent, *, target_model_name: str | None) -> dict[str, object]:
    source_name = event.source.removeprefix("poller:")
    params: dict[str, object] = {"source": source_name, "event_kind": event.kind}
    source = config.sources.get(source_name)
    if source is not None:
        if source.tracking_uri:
            params["source_tracking_uri"] = source.tracking_uri
            if source.registry_uri:
                params["source_registry_uri"] = source.registry_uri
        if source.registry:
            params["source_registry"] = source.registry
    if event.run_id:
        params["run_id"] = event.run_id
    if target_model_name and target_model_name != event.model_name:
        params["target_model_name"] = target_model_name
    return params
