"""`modelops plan`: what the current rules would do with an event; nothing recorded or dispatched."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from shared.cli.output import Section, emit_json, emit_sections, table
from shared.config.loader import load_config
from shared.config.schema import ReactorConfig
from shared.domain.events import KINDS
from shared.errors import BadRequest
from shared.ingest.jsonbody import parse_json
from shared.service.whatif import from_fields, from_payload, what_if


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "plan",
        help="what the rules would plan for an event (a sender's payload file, or --kind/--model/...)",
        description="Explain what the current rules would plan: each action with the rule behind it, and for "
        "each rule that does not match, the first filter that failed. Nothing is recorded or dispatched.",
    )
    p.add_argument(
        "payload",
        nargs="?",
        help="a sender's body as a JSON file (- for stdin): MLflow webhook, "
        "Databricks registry webhook or job notification, Event Grid (either schema)",
    )
    p.add_argument("--kind", choices=sorted(KINDS), help="the event kind (instead of a payload)")
    p.add_argument("--model", help="model name")
    p.add_argument("--version", help="model version")
    p.add_argument("--alias", help="alias (model_version.alias_set)")
    p.add_argument("--stage", help="stage (model_version.stage_changed)")
    p.add_argument(
        "--source",
        help="the source it comes from (default: the first configured; with a payload: the one its route would use)",
    )
    p.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a tag of the event (repeatable)")
    p.add_argument("--metric", action="append", default=[], metavar="NAME=VALUE", help="a run metric (repeatable)")
    p.add_argument("--run-id", help="run id (run.completed)")
    p.add_argument("--model-uri", help="a run's logged model; without it a run is resolved first")
    p.set_defaults(func=plan)


def plan(args: argparse.Namespace) -> int:
    settings = args.settings
    config = load_config(settings.config_path, env=settings.config_env())
    results = [what_if(config, event) for event in _events(config, args)]
    if args.output == "json":
        emit_json(results)
        return 0
    if args.output == "tsv":
        emit_sections("tsv", results, explanation_sections(results))
        return 0
    for result in results:
        print_explanation(result)
    return 0


def explanation_sections(results: list[dict[str, Any]]) -> list[Section]:
    """For scripts: a row per planned action and one per rule's verdict, each led by its event's kind."""
    actions = [(r["event"].get("kind"), *_action_cells(a)) for r in results for a in r["actions"]]
    verdicts = [(r["event"].get("kind"), *_verdict_cells(v)) for r in results for v in r["rules"]]
    return [
        Section("action", actions, ["EVENT", "RULE", "KIND", "TARGET", "MODEL", "AFTER"]),
        Section("rule", verdicts, ["EVENT", "RULE", "MATCH", "FAILED FILTER", "WHY / ACTIONS"]),
    ]


def _action_cells(a: dict[str, Any]) -> tuple[Any, ...]:
    return (a["rule"], a["kind"], a["target"], f"{a['model_name']}/{a['model_version']}", a["after"] or "")


def _verdict_cells(v: dict[str, Any]) -> tuple[str, ...]:
    match = "matched" if v["matched"] else "pending" if v["pending"] else "no"
    return (v["rule"], match, v["failed"] or "", v["reason"] or ", ".join(v["actions"]))


def _events(config: ReactorConfig, args: argparse.Namespace) -> list[Any]:
    fields_given = any(getattr(args, n) for n in ("model", "version", "alias", "stage", "run_id", "model_uri"))
    if args.payload is not None:
        if args.kind or fields_given or args.tag or args.metric:
            raise BadRequest("give a payload file or --kind with its fields, not both")
        raw = sys.stdin.buffer.read() if args.payload == "-" else _read(args.payload)
        return from_payload(config, parse_json(raw), source=args.source)[1]
    if not args.kind:
        raise BadRequest("give a payload file (a sender's JSON body) or --kind (with --model, --version, ...)")
    return [
        from_fields(
            config,
            kind=args.kind,
            model_name=args.model,
            model_version=args.version,
            alias=args.alias,
            stage=args.stage,
            source=args.source,
            tags=_pairs(args.tag, "--tag"),
            run_id=args.run_id,
            metrics={k: _number(v, k) for k, v in _pairs(args.metric, "--metric").items()},
            model_uri=args.model_uri,
        )
    ]


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise BadRequest(f"cannot read payload file {path}: {exc.strerror or exc}") from None


def _pairs(items: list[str], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BadRequest(f"{option} takes KEY=VALUE, not {item!r}")
        out[key] = value
    return out


def _number(text: str, name: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise BadRequest(f"--metric {name}={text!r}: the value must be a number") from None


def print_explanation(result: dict[str, Any]) -> None:
    event = result["event"]
    about = " ".join(f"{k}={v}" for k, v in event.items() if v and k not in ("source_type",))
    print(f"event: {about}")
    if result["actions"]:
        rows = [_action_cells(a) for a in result["actions"]]
        print(table(rows, ["RULE", "KIND", "TARGET", "MODEL", "AFTER"]))
        for a in result["actions"]:
            if a.get("gate"):
                print(f"gate {a['kind']} {a['target']}: {a['gate']}")
    else:
        print(f"plans nothing: {result['reason']}")
    verdicts = [_verdict_cells(v) for v in result["rules"]]
    if verdicts:
        print(table(verdicts, ["RULE", "MATCH", "FAILED FILTER", "WHY / ACTIONS"]))
    print()
