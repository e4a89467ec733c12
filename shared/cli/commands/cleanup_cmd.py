"""`modelops cleanup`: run the cleanup policy (dry run unless --apply) and print the report."""

from __future__ import annotations

import argparse

from shared.bootstrap import Container
from shared.cli.output import emit_json, tsv
from shared.service.cleanup import run_cleanup_and_record


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("cleanup", help="find stale resources and (with --apply) mark/delete them")
    p.add_argument("--apply", action="store_true", help="really mark and delete (default: dry run)")
    p.set_defaults(func=cleanup)


def cleanup(args: argparse.Namespace) -> int:
    from shared.cleanup.report import format_report_table
    from shared.cli.ledger_check import require_ledger

    container = Container(args.settings)
    if container.config.cleanup.provider == "local":  # it cleans what this state dir deployed: none is no answer
        require_ledger(args.settings)
    report, body = run_cleanup_and_record(container.reactor(), apply=args.apply)
    if args.output == "json":
        emit_json(body)
    elif args.output == "tsv":  # one line per resource group, the table's columns
        cells = [
            (r.scope, r.name, r.decision, r.reason, r.status or "", r.detail + (f" [{r.error}]" if r.error else ""))
            for r in report.rows
        ]
        if cells:
            print(tsv(cells))
    else:
        print(format_report_table(report))
        print(f"report {body['report_id']} kept in the ledger")
    return 0
