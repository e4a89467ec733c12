"""`modelops poll`: run the registry poller once (what the timer function does)."""

from __future__ import annotations

import argparse

from shared.bootstrap import Container
from shared.cli.output import emit
from shared.errors import BadRequest
from shared.service.reconcile import COUNTS, reconcile_sources, reconciled


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "poll",
        help="reconcile once: record registry changes no event reported, report drifted targets",
        description="Reconcile every source (but those with `reconcile: false`), or the one --source names, once, "
        "as the poller timer does. Exit 0: reconciled; 1: a source could not be read; 2: nothing to reconcile "
        "(every source has `reconcile: false`) or no such source.",
    )
    p.add_argument("--source", help="reconcile this source even if it has `reconcile: false`")
    p.set_defaults(func=poll)


def poll(args: argparse.Namespace) -> int:
    container = Container(args.settings)  # the config is checked before anything opens the ledger
    configured = container.config.sources
    if args.source and args.source not in configured:
        raise BadRequest(f"no source named {args.source!r}; configured: {', '.join(configured) or 'none'}")
    if not args.source and not any(reconciled(source) for source in configured.values()):
        known = ", ".join(configured) or "none configured"
        raise BadRequest(f"nothing to reconcile: every source has `reconcile: false`; name one with --source ({known})")
    reactor = container.reactor()
    summary = reconcile_sources(reactor, only=args.source)
    sources = {name: counts for name, counts in summary.items() if name != "lines"}
    rows = [
        (name, *(counts.get(key, "") for key in COUNTS), counts.get("error", "")) for name, counts in sources.items()
    ]
    emit(args.output, summary, rows, ["SOURCE", *(key.upper() for key in COUNTS), "ERROR"])
    if args.output == "table":
        for line in summary.get("lines", []):
            print(f"drift: {line['target']} {line['source']}/{line['model']}: {line['reason']}")
    return 1 if any("error" in counts for counts in sources.values()) else 0
