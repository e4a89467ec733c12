"""`modelops rollback`: a deployment target back to the version it kept, run here until done."""

from __future__ import annotations

import argparse

from shared.bootstrap import Container
from shared.cli.commands.operate_cmd import run_queued


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "rollback",
        help="roll a deployment target back to the version it kept (smoke-tested before the switch)",
    )
    p.add_argument("target", help="name of a `deployments:` entry")
    p.add_argument("--model", help="only this model's versions (default: the model serving)")
    p.add_argument("--to", metavar="VERSION", help="the version to go back to (default: the one served before)")
    p.add_argument("--no-wait", action="store_true", help="only queue it (a running `modelops serve` runs it)")
    p.set_defaults(func=rollback, reads_ledger=True)


def rollback(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    result = reactor.request_rollback(args.target, model=args.model, to=args.to)
    return run_queued(args, reactor, result, f"queued rollback of {args.target}")
