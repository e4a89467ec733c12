"""`modelops config check` validates the config and shows what it defines; `config init` writes one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shared.cli.output import Section, emit_json, emit_sections
from shared.config.loader import AZURE_TEMPLATE, DEFAULT_CONFIG, load_config
from shared.config.reach import unreachable_rules
from shared.config.rules import Rule
from shared.config.schema import ReactorConfig
from shared.errors import BadRequest
from shared.ingest.sources import unsigned_sources


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("config", help="configuration tools")
    csub = p.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = csub.add_parser("check", help="validate the config file and summarize it")
    check.add_argument("file", nargs="?", help="the config file (same as --config; default: $MODELOPS_CONFIG)")
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
    kind = "Azure template" if args.azure else "local default"
    steps = [
        f"modelops config check {target}",
        f"set MODELOPS_CONFIG={target} (in Azure: an app setting naming the file)",
    ]
    if args.output != "table":
        emit_sections(
            args.output,
            {"wrote": str(target), "template": kind, "next": steps},
            [Section("wrote", [(target, kind)], [])],
        )
        return 0
    print(f"wrote {target} ({kind})")
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
    if args.file:
        if args.config and args.config != args.file:
            raise BadRequest(f"two config files given ({args.file} and --config {args.config}): give one")
        settings = settings.with_overrides(config_path=args.file)
    config = load_config(settings.config_path, env=settings.config_env())
    path = settings.config_path or "embedded default"
    unsigned = unsigned_sources(config, settings.webhook_secret, in_azure=settings.in_azure)
    warnings = [source.notice for source in unsigned]
    warnings += unreachable_rules(config)
    notices = config.notices()
    sources = [(name, source.kind, "polled" if source.poll else "") for name, source in config.sources.items()]
    targets = [
        (section, name, entry.kind)
        for section, entries in (
            ("registries", config.registries),
            ("deployments", config.deployments),
            ("batch", config.batch),
        )
        for name, entry in entries.items()
    ]
    rules = [
        (
            rule.name or f"rules[{i}]",
            ", ".join(rule.on),
            rule_filters(rule).strip(),
            ", ".join(f"{s.kind}->{s.target}" for s in rule.do),
        )
        for i, rule in enumerate(config.rules)
    ]
    cleanup = f"{'enabled' if config.cleanup.enabled else 'disabled'}, timer " + (
        "applies" if config.cleanup.apply else "reports only (dry run)"
    )
    examples = _explanations(config) if args.explain else []
    data: dict[str, Any] = {
        "ok": True,
        "config": path,
        "sources": [dict(zip(("name", "kind", "polled"), (n, k, bool(p)), strict=True)) for n, k, p in sources],
        "targets": [dict(zip(("section", "name", "kind"), t, strict=True)) for t in targets],
        "rules": [dict(zip(("rule", "on", "filters", "do"), r, strict=True)) for r in rules],
        "cleanup": {"enabled": config.cleanup.enabled, "apply": config.cleanup.apply},
        "warnings": warnings,
        "notices": notices,
    }
    if args.explain:
        data["examples"] = [{"example": title, **(e if isinstance(e, dict) else {"none": e})} for title, e in examples]
    if args.output == "json":
        emit_json(data)
        return 0
    if args.output == "tsv":
        emit_sections(
            "tsv",
            data,
            [
                Section("source", sources, []),
                Section("target", targets, []),
                Section("rule", rules, []),
                Section("warning", [(w,) for w in warnings], []),
                Section("notice", [(n,) for n in notices], []),
            ],
        )
        return 0
    print(f"config OK: {path}")
    listed_sources = ", ".join(f"{n} ({k}{', polled' if p else ''})" for n, k, p in sources)
    print(f"  sources:     {listed_sources or '-'}")
    for section in ("registries", "deployments", "batch"):
        listed = ", ".join(f"{name} ({kind})" for sec, name, kind in targets if sec == section) or "-"
        print(f"  {section + ':':12} {listed}")
    for i, rule in enumerate(config.rules):
        steps = ", ".join(f"{s.kind}->{s.target}" for s in rule.do)
        print(f"  rule {rule.name or i}: on {', '.join(rule.on)}{rule_filters(rule)} do [{steps}]")
    print(f"  cleanup:     {cleanup}")
    for warning in warnings:
        print(f"warning: {warning}")
    for notice in notices:
        print(f"notice: {notice}")
    if args.explain:
        from shared.cli.commands.plan_cmd import print_explanation

        print()
        for title, explained in examples:
            print(f"example for {title}:")
            if isinstance(explained, str):
                print(f"none: {explained}\n")
            else:
                print_explanation(explained)
    return 0


def _explanations(config: ReactorConfig) -> list[tuple[str, dict[str, Any] | str]]:
    from shared.service.whatif import example_events, what_if

    return [(title, e if isinstance(e, str) else what_if(config, e)) for title, e in example_events(config)]


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
