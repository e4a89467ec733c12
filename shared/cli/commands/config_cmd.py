"""`modelops config check`: validate the config and show what it defines."""

from __future__ import annotations

import argparse

from shared.config.loader import load_config
from shared.config.schema import Rule


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = csub.add_parser("check", help="validate the config file and summarize it")
    check.set_defaults(func=check_config)


def check_config(args: argparse.Namespace) -> int:
    settings = args.settings
    config = load_config(settings.config_path, env=settings.config_env())
    print(f"config OK: {settings.config_path or 'embedded default'}")
    print(f"  sources:     {', '.join(config.sources) or '-'}")
    for section, entries in (
        ("registries", config.registries),
        ("deployments", config.deployments),
        ("batch", config.batch),
    ):
        listed = ", ".join(f"{name} ({entry.kind})" for name, entry in entries.items()) or "-"
        print(f"  {section + ':':12} {listed}")
    for i, rule in enumerate(config.rules):
        steps = ", ".join(f"{s.kind}->{s.target}" for s in rule.do)
        print(f"  rule {rule.name or i}: on {', '.join(rule.on)}{rule_filters(rule)} do [{steps}]")
    print(
        f"  cleanup:     {'enabled' if config.cleanup.enabled else 'disabled'}, "
        f"timer {'applies' if config.cleanup.apply else 'reports only (dry run)'}"
    )
    return 0


def rule_filters(rule: Rule) -> str:
    """Every filter a rule has, as it reads in the config: models, source, alias, stage, tags, when."""
    parts = [f"models {rule.models}"]
    if rule.source:
        parts.append(f"source {rule.source}")
    if rule.alias:
        parts.append(f"alias {rule.alias}")
    if rule.stage:
        parts.append(f"stage {rule.stage}")
    if rule.tags:
        parts.append(f"tags {rule.tags}")
    if rule.when:
        bounds = [f">= {rule.when.at_least}" if rule.when.at_least is not None else ""]
        bounds.append(f"<= {rule.when.at_most}" if rule.when.at_most is not None else "")
        parts.append(f"when {rule.when.metric} {' '.join(b for b in bounds if b)}")
    return "".join(f" {part}" for part in parts)
