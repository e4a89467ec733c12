"""`modelops poll`: run the registry poller once (what the timer function does)."""

from __future__ import annotations

import argparse

from shared.bootstrap import Container
from shared.cli.output import emit
from shared.errors import BadRequest
from shared.service.poller import poll_sources

COUNTS = ("models", "versions", "aliases", "accepted", "duplicates")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("poll", help="poll registries without webhooks for new versions and aliases")
    p.add_argument("--source", help="poll this source even if it has no `poll: true`")
    p.set_defaults(func=poll)


def poll(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    if args.source and args.source not in reactor.config.sources:
        known = ", ".join(reactor.config.sources) or "none"
        raise BadRequest(f"no source named {args.source!r}; configured: {known}")
    summary = poll_sources(reactor, only=args.source)
    if not summary and args.output == "table":
        print("no source has `poll: true`; name one with --source")
        return 0
    rows = [
        (name, *(counts.get(key, "") for key in COUNTS), counts.get("error", "")) for name, counts in summary.items()
    ]
    emit(args.output, summary, rows, ["SOURCE", *(key.upper() for key in COUNTS), "ERROR"])
    return 1 if any("error" in counts for counts in summary.values()) else 0
