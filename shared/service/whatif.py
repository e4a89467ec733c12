"""What-if: the actions the current rules would plan for an event, with the rule behind each and,
for every rule that did not match, the first filter that failed. Nothing is recorded or dispatched:
only the config is read, and the explanation is the rules engine's own (`shared.rules.explain`)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared.config.reach import rule_sources
from shared.config.rules import Rule
from shared.config.schema import ReactorConfig
from shared.domain.actions import APPROVE, VALIDATE, PlannedAction
from shared.domain.events import KINDS, RUN_KINDS, ModelEvent
from shared.errors import BadRequest
from shared.ingest.payloads import payload_events
from shared.rules import Explanation, explain


def from_payload(config: ReactorConfig, payload: Any, *, source: str | None = None) -> tuple[str, list[ModelEvent]]:
    """A sender's body as the events it carries, read as the named source's (default: as its route would)."""
    if source is not None:
        _require_source(config, source)
    return payload_events(config, payload, source=source)


def from_fields(
    config: ReactorConfig,
    *,
    kind: str,
    model_name: str | None = None,
    model_version: str | None = None,
    alias: str | None = None,
    stage: str | None = None,
    source: str | None = None,
    tags: dict[str, str] | None = None,
    run_id: str | None = None,
    metrics: dict[str, float] | None = None,
    model_uri: str | None = None,
) -> ModelEvent:
    """An event described by its fields (`--kind/--model/--version/...`)."""
    if kind not in KINDS:
        raise BadRequest(f"kind must be one of {', '.join(sorted(KINDS))}, not {kind!r}", field="kind")
    if source is not None:
        _require_source(config, source)
    return ModelEvent(
        source=source or next(iter(config.sources), "mlflow"),
        kind=kind,
        source_type=f"what-if {kind}",
        model_name=model_name,
        model_version=model_version,
        alias=alias,
        stage=stage,
        tags=dict(tags or {}),
        run_id=run_id or ("what-if" if kind in RUN_KINDS else None),
        run_status="Completed" if kind in RUN_KINDS else None,
        metrics=dict(metrics or {}),
        model_uri=model_uri,
        occurred_at=datetime.now(UTC),
    )


def _require_source(config: ReactorConfig, source: str) -> None:
    if config.sources and source not in config.sources:
        raise BadRequest(
            f"no source named {source!r}; configured: {', '.join(config.sources) or 'none'}", field="source"
        )


def what_if(config: ReactorConfig, event: ModelEvent) -> dict[str, Any]:
    """The explanation of one event as the API and the CLI show it."""
    return describe(event, explain(config, event), config)


def describe(event: ModelEvent, explained: Explanation, config: ReactorConfig | None = None) -> dict[str, Any]:
    keys = [a.key for a in explained.plan]
    actions = [
        {
            "key": a.key,
            "kind": a.kind,
            "target": a.target,
            "model_name": a.model_name,
            "model_version": a.model_version,
            "rule": a.rule,
            "after": keys[a.after_index] if a.after_index is not None else None,
        }
        for a in explained.plan
    ]
    if config is not None:
        for action, planned in zip(actions, explained.plan, strict=True):
            note = gate_note(config, planned, explained.plan)
            if note:
                action["gate"] = note
    return {
        "event": event.summary(),
        "actions": actions,
        "rules": [v.to_dict() for v in explained.rules],
        "reason": explained.reason or None,
    }


def example_events(config: ReactorConfig) -> list[tuple[str, ModelEvent | str]]:
    """For each rule and each kind it listens to, an event it should match, from a source it hears
    from that can send that kind (`config check --explain`); else why there is none."""
    out: list[tuple[str, ModelEvent | str]] = []
    for number, rule in enumerate(config.rules):
        heard = rule_sources(config, rule)
        for kind in rule.on:
            title = f"{rule.name or f'rules[{number}]'} / {kind}"
            sender = next((name for name, kinds in heard if kind in kinds), None)
            if sender is None:
                names = ", ".join(name for name, _ in heard) or "none"
                out.append((title, f"no source this rule hears from ({names}) sends {kind}: it never fires on it"))
            else:
                out.append((title, _example(config, rule, kind, sender)))
    return out


def _example(config: ReactorConfig, rule: Rule, kind: str, source: str) -> ModelEvent:
    pattern = next((m for m in rule.models if m), "*")
    name = "".join("example" if c == "*" else "x" if c in "?[]" else c for c in pattern)
    metrics: dict[str, float] = {}
    if rule.when is not None:
        bound = rule.when.at_least if rule.when.at_least is not None else rule.when.at_most
        metrics[rule.when.metric] = float(bound or 0)
    runs = kind in RUN_KINDS
    return from_fields(
        config,
        kind=kind,
        model_name=None if runs else name,
        model_version=None if runs else "1",
        alias=rule.alias,
        stage=rule.stage,
        source=source,
        tags=dict(rule.tags),
        run_id="example-run" if runs else None,
        metrics=metrics,
        model_uri="runs:/example-run/model" if runs else None,
    )


def gate_note(config: ReactorConfig, planned: PlannedAction, plan: list[PlannedAction]) -> str | None:
    """What a gate step does: the validation it runs, or the approval it waits for and what it holds."""
    version = f"{planned.model_name} v{planned.model_version}"
    if planned.kind == VALIDATE and planned.target in config.validations:
        v = config.validations[planned.target]
        against = f"against the holder of {v.baseline}" if v.baseline else "against thresholds only"
        bars = []
        for metric, bar in v.thresholds.items():
            sign = ">=" if bar.greater_is_better else "<="
            parts = [f"{metric} {sign} {bar.threshold:g}"] if bar.threshold is not None else [metric]
            if bar.min_absolute_change is not None:
                parts.append(f"+{bar.min_absolute_change:g} over the baseline")
            if bar.min_relative_change is not None:
                parts.append(f"+{bar.min_relative_change:.0%} over the baseline")
            bars.append(", ".join(parts))
        return f"validates {version} on {v.data.split('?', 1)[0]} {against} ({v.model_type}): " + "; ".join(bars)
    if planned.kind == APPROVE and planned.target in config.approvals:
        a = config.approvals[planned.target]
        tag = f", or tag {a.tag}=approved on the source version" if a.tag else ""
        index = plan.index(planned)
        held = [f"{p.kind} {p.target}" for p in plan if p.after_index == index]
        then = f"; then {', '.join(held)}" if held else ""
        return f"waits for approval {planned.target} (expires after {a.expires}){tag}{then}"
    return None
