"""`modelops status`: per (target, source, model), what should serve, what serves, and their sync."""

from __future__ import annotations

import argparse

from shared.bootstrap import Container
from shared.cli.output import emit
from shared.errors import BadRequest


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "status",
        help="desired (the registry's alias holder) vs actual (the target) per deployment line",
        description="Per (target, source, model) line: the version the registry declares, the version the target "
        "serves, and their sync. Exit 0: every line is in sync or progressing; 1: a line is out of sync, degraded "
        "or pinned, or a source registry cannot be read now; 2: no ledger here, or no such source.",
    )
    p.add_argument("--source", help="only this source's lines")
    p.set_defaults(func=status, reads_ledger=True)


def status(args: argparse.Namespace) -> int:
    """Exit 0 when every line is in sync or progressing, 1 when one is out of sync, degraded or pinned (or a
    source registry cannot be read now)."""
    from shared.service.status import readable_line_statuses

    reactor = Container(args.settings).reactor()
    if args.source and args.source not in reactor.config.sources:
        known = ", ".join(reactor.config.sources) or "none"
        raise BadRequest(f"no source named {args.source!r}; configured: {known}")
    lines = readable_line_statuses(reactor, sources=[args.source] if args.source else None)
    body = {"targets": [line.to_dict() for line in lines]}
    rows = [
        (
            line.target,
            line.source,
            line.model,
            line.desired.version or "-",
            line.actual.version or "-",
            line.actual.state,
            line.sync,
            line.reason,
        )
        for line in lines
    ]
    if not rows and args.output == "table":
        print("no deployment line is declared: no rule with an alias (or stage) and a deploy step matches a model")
        return 0
    emit(args.output, body, rows, ["TARGET", "SOURCE", "MODEL", "DESIRED", "ACTUAL", "STATE", "SYNC", "REASON"])
    return 0 if all(line.sync in ("in-sync", "progressing") for line in lines) else 1
