"""`modelops demo`: the whole local loop end to end, with a summary."""

from __future__ import annotations

import argparse
import time

from shared.cli.output import ACTION_HEADERS, EVENT_HEADERS, Section, action_rows, emit_sections, event_rows, narrator


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("demo", help="run the whole loop locally: MLflow -> register -> deploy -> score -> cleanup")
    p.add_argument("--rows", type=int, default=200_000, help="rows in the batch-scoring input (default 200000)")
    p.set_defaults(func=demo)


def demo(args: argparse.Namespace) -> int:
    import logging

    from shared.local.demo import run_demo

    if not args.verbose:  # the demo narrates its steps; the reactor's own log is in `modelops actions`
        logging.getLogger("modelops").setLevel(logging.WARNING)
        logging.getLogger("mlflow").setLevel(logging.ERROR)

    settings = args.settings
    state_dir = settings.state_dir / f"demo-{time.strftime('%Y%m%d-%H%M%S')}"
    # with -o json or tsv stdout carries only the summary; the narration goes to stderr
    say = narrator(args.output)
    result = run_demo(state_dir, settings.environ, rows=args.rows, say=say)
    sections = [
        Section("events", event_rows(result.events), EVENT_HEADERS),
        Section("actions", action_rows(result.actions), ACTION_HEADERS),
    ]
    if args.output == "table":
        print()
    emit_sections(args.output, {"ok": result.ok, "events": result.events, "actions": result.actions}, sections)
    if args.output == "table":
        print()
    say(result.finished)
    return 0 if result.ok else 1
