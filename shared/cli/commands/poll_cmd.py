"""`modelops poll`: run the registry poller once (what the timer function does)."""

from __future__ import annotations

import argparse

from shared.bootstrap import Container
from shared.cli.output import emit_json
from shared.service.poller import poll_sources


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("poll", help="poll registries without webhooks for new versions and aliases")
    p.add_argument("--source", help="poll this source even if it has no `poll: true`")
    p.set_defaults(func=poll)


def poll(args: argparse.Namespace) -> int:
    summary = poll_sources(Container(args.settings).reactor(), only=args.source)
    if not summary:
        print("no source has `poll: true`; name one with --source")
        return 0
    emit_json(summary)
    return 1 if any("error" in counts for counts in summary.values()) else 0
