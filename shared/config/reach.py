"""Which events can reach a rule: the sources it hears from and the kinds of event each can send."""

from __future__ import annotations

from shared.config.rules import Rule
from shared.config.schema import ReactorConfig
from shared.config.sources import LEGACY_SOURCE_NAMES, SENDS


def rule_sources(config: ReactorConfig, rule: Rule) -> list[tuple[str, frozenset[str]]]:
    """The sources a rule hears from, each with the event kinds it can send (with no source
    configured: the kinds' own routes, /api/hooks/mlflow, /api/hooks/databricks and Event Grid)."""
    if not config.sources:
        return [(kind, SENDS[kind]) for kind in LEGACY_SOURCE_NAMES if not rule.source or kind in rule.source]
    names = rule.source or list(config.sources)
    return [(name, config.sources[name].event_kinds()) for name in names if name in config.sources]


def unreachable_rules(config: ReactorConfig) -> list[str]:
    """Warnings: each rule's event kinds that no source it hears from can send (it would never fire)."""
    warnings = []
    for i, rule in enumerate(config.rules):
        heard = rule_sources(config, rule)
        sendable: frozenset[str] = frozenset().union(*(kinds for _, kinds in heard))
        missing = [kind for kind in rule.on if kind not in sendable]
        if not missing:
            continue
        label = f"rules[{i}]" + (f" ({rule.name})" if rule.name else "")
        who = ", ".join(
            f"{name} ({config.sources[name].kind})" if name in config.sources else name for name, _ in heard
        )
        can = ", ".join(sorted(sendable)) or "nothing (a databricks-uc source reports only when reconciled)"
        warnings.append(
            f"{label} listens to {', '.join(missing)}, which no source it hears from sends "
            f"({who or 'no source'}), so it never fires on it; those sources send: {can}"
        )
    return warnings
