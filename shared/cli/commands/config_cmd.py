"""`modelops config check`: validate the config and show what it defines."""

from __future__ import annotations

import argparse

from shared.config.loader import load_config


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
        print(f"  rule {rule.name or i}: on {', '.join(rule.on)} models {rule.models} do [{steps}]")
    print(
        f"  cleanup:     {'enabled' if config.cleanup.enabled else 'disabled'}, "
        f"timer {'applies' if config.cleanup.apply else 'reports only (dry run)'}"
    )
    return 0
