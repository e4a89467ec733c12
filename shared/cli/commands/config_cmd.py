"""`modelops config check` validates the config and shows what it defines; `config init` writes one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shared.config.loader import AZURE_TEMPLATE, DEFAULT_CONFIG, load_config
from shared.config.schema import Rule
from shared.ingest.sources import unsigned_sources


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = csub.add_parser("check", help="validate the config file and summarize it")
    check.add_argument(
        "--explain",
        action="store_true",
        help="also show what every rule makes of an example event of each kind it listens to",
    )
    check.set_defaults(func=check_config)
    init = csub.add_parser("init", help="write a starting config file (the local default, or --azure)")
    init.add_argument("--azure", action="store_true", help="the Azure template (Azure ML, Databricks, cleanup)")
    init.add_argument("--path", default="modelops.yaml", help="file to write (default: modelops.yaml)")
    init.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    init.set_defaults(func=init_config)


def init_config(args: argparse.Namespace) -> int:
    """Write the embedded local default or the Azure template; never overwrite without --force."""
    target = Path(args.path)
    if target.exists() and not args.force:
        print(f"{target} already exists; not overwritten (use --force to replace it)", file=sys.stderr)
        return 2
    template = AZURE_TEMPLATE if args.azure else DEFAULT_CONFIG
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(template.read_text(encoding="utf-8"), encoding="utf-8")
    print(f"wrote {target} ({'Azure template' if args.azure else 'local default'})")
    if args.azure:
        print("next: replace every <placeholder> (subscription, resource group, workspace, endpoint,")
        print("      Databricks URL and job id, model name), then:")
    else:
        print("next: edit the sources, targets and rules, then:")
    print(f"  modelops config check --config {target}")
    print(f"  set MODELOPS_CONFIG={target} (in Azure: an app setting naming the deployed file)")
    return 0


def check_config(args: argparse.Namespace) -> int:
    settings = args.settings
    config = load_config(settings.config_path, env=settings.config_env())
    print(f"config OK: {settings.config_path or 'embedded default'}")
    sources = ", ".join(
        f"{name} ({source.kind}{', polled' if source.poll else ''})" for name, source in config.sources.items()
    )
    print(f"  sources:     {sources or '-'}")
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
    for unsigned in unsigned_sources(config, settings.webhook_secret, in_azure=settings.in_azure):
        print(f"warning: {unsigned.notice}")
    for notice in config.notices():
        print(f"notice: {notice}")
    if getattr(args, "explain", False):
        from shared.cli.commands.plan_cmd import print_explanation
        from shared.service.whatif import example_events, what_if

        print()
        for title, event in example_events(config):
            print(f"example for {title}:")
            print_explanation(what_if(config, event))
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
