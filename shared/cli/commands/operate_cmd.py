"""`modelops register|deploy|score`: operator-requested actions, run here until they finish."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from shared.bootstrap import Container
from shared.cli.commands.inspect_cmd import print_actions
from shared.cli.output import emit_json, narrator

if TYPE_CHECKING:
    from shared.ledger.base import IntakeResult
    from shared.service.reactor import Reactor

VERBS = {"register": "register", "deploy": "deploy", "score": "batch_score"}


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for verb, kind in VERBS.items():
        p = sub.add_parser(verb, help=f"{kind} a model version to a configured target")
        p.add_argument("model", help="registered model name in the source registry")
        p.add_argument("version", help="model version")
        p.add_argument("--target", required=True, help=f"name of a configured {kind} target")
        p.add_argument("--source", help="source the model lives in (default: the first configured)")
        p.add_argument("--force", action="store_true", help="run again even if it already succeeded")
        p.add_argument("--no-wait", action="store_true", help="only queue it (a running `modelops serve` runs it)")
        p.set_defaults(func=operate, kind=kind)


def operate(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    result = reactor.request_action(
        kind=args.kind,
        target=args.target,
        model_name=args.model,
        model_version=args.version,
        source=args.source,
        force=args.force,
    )
    return run_queued(args, reactor, result, f"queued {args.kind} of {args.model}/{args.version} to {args.target}")


def run_queued(args: argparse.Namespace, reactor: Reactor, result: IntakeResult, queued: str) -> int:
    """Say what was queued (or that it was already), then run it here until done unless --no-wait;
    exit 0 only when every action it ran succeeded. Shared by register/deploy/score and rollback."""
    action_id = result.action_ids[0]
    say = narrator(args.output)
    say(f"{action_id}: {result.reason}" if result.duplicate else f"{action_id}: {queued}")
    if args.no_wait:
        if args.output == "json":
            emit_json({"action_id": action_id, "duplicate": result.duplicate, "reason": result.reason})
        return 0
    from shared.batch.progress import TerminalProgress

    with TerminalProgress() as bar:  # a bar for "scored N of M rows", other progress lines as they come
        worker = reactor.worker(progress=lambda action, message: bar(message))
        done = worker.run_until_done([action_id])
    if args.output == "json":
        emit_json([a.to_dict() for a in done])
    elif args.output == "tsv":
        print_actions([a.to_dict() for a in done], args.output)
    else:
        print_actions([a.to_dict() for a in done], args.output)
        for action in done:
            for key, value in action.outputs.to_dict().items():
                print(f"  {key}: {value}")
            if action.error:
                print(f"  error: {action.error}")
    return 0 if all(a.status == "succeeded" for a in done) else 1
