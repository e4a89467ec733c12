"""`modelops rollback`: a deployment target back to the version it kept, run here until done."""

from __future__ import annotations

import argparse

from shared.bootstrap import Container
from shared.cli.commands.inspect_cmd import print_actions
from shared.cli.output import emit_json, narrator


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "rollback",
        help="roll a deployment target back to the version it kept (smoke-tested before the switch)",
    )
    p.add_argument("target", help="name of a `deployments:` entry")
    p.add_argument("--model", help="only this model's versions (default: the model serving)")
    p.add_argument("--to", metavar="VERSION", help="the version to go back to (default: the one served before)")
    p.add_argument("--no-wait", action="store_true", help="only queue it (a running `modelops serve` runs it)")
    p.set_defaults(func=rollback)


def rollback(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    result = reactor.request_rollback(args.target, model=args.model, to=args.to)
    action_id = result.action_ids[0]
    say = narrator(args.output)
    if result.duplicate:
        say(f"{action_id}: {result.reason}")
    else:
        say(f"{action_id}: queued rollback of {args.target}")
    if args.no_wait:
        if args.output == "json":
            emit_json({"action_id": action_id, "duplicate": result.duplicate, "reason": result.reason})
        return 0
    done = reactor.worker().run_until_done([action_id])
    if args.output == "json":
        emit_json([a.to_dict() for a in done])
    else:
        print_actions([a.to_dict() for a in done], args.output)
        for action in done:
            for key, value in action.outputs.to_dict().items():
                print(f"  {key}: {value}")
            if action.error:
                print(f"  error: {action.error}")
    return 0 if all(a.status == "succeeded" for a in done) else 1
