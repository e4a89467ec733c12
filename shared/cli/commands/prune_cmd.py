"""`modelops prune`: retention of the ledger (dry run unless --apply), with its report."""

from __future__ import annotations

import argparse

from shared.bootstrap import Container
from shared.cli.output import emit_json, tsv
from shared.errors import BadRequest
from shared.timeparse import parse_duration


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("prune", help="remove events, deliveries and finished actions older than retention.keep")
    p.add_argument("--older-than", metavar="DURATION", help="ISO 8601 duration (default: retention.keep, P90D)")
    p.add_argument("--apply", action="store_true", help="really remove them (default: dry run, a report)")
    p.set_defaults(func=prune, reads_ledger=True)


def prune(args: argparse.Namespace) -> int:
    from shared.service.retention import prune as prune_ledger

    try:
        older_than = parse_duration(args.older_than) if args.older_than else None
    except ValueError as exc:
        raise BadRequest(f"--older-than: {exc}", field="--older-than") from None
    report = prune_ledger(Container(args.settings).reactor(), older_than=older_than, apply=args.apply)
    if args.output == "json":
        emit_json(report.to_dict())
        return 0
    if args.output == "tsv":  # `name<TAB>value` lines, then one `event<TAB>id` line per event it (would) remove
        figures = {k: v for k, v in report.to_dict().items() if k != "event_ids"}
        rows = [(key, str(value).lower() if isinstance(value, bool) else value) for key, value in figures.items()]
        print(tsv([*rows, *(("event", event_id) for event_id in report.event_ids)]))
        return 0
    verb = "removed" if report.applied else "would remove (dry run; --apply to remove)"
    print(
        f"older than {report.cutoff}: {verb} {report.events} event(s), {report.actions} action(s), "
        f"{report.deliveries} deliveries"
    )
    print(
        f"kept: {report.kept_in_flight} old event(s) with an action in flight, waiting or finished lately; "
        f"{report.kept_for_rollback} for deployment history"
    )
    return 0
