"""`modelops approvals` (pending approvals with their evidence) and `modelops approve ACTION_ID`."""

from __future__ import annotations

import argparse
import getpass
import socket
from typing import Any

from shared.bootstrap import Container
from shared.cli.output import emit, narrator
from shared.service import approvals

HEADERS = ["ACTION", "APPROVAL", "MODEL", "VERSION", "SOURCE", "WAITING", "EXPIRES", "VALIDATION"]


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("approvals", help="approvals waiting for a decision, with their evidence")
    p.set_defaults(func=list_pending, reads_ledger=True)
    p = sub.add_parser("approve", help="approve (or --reject) a waiting approval")
    p.add_argument("action_id", help="the approve action's id (see `modelops approvals`)")
    p.add_argument("--reject", action="store_true", help="reject instead: the steps after it are skipped")
    p.add_argument("--comment", help="why (kept in the audit trail)")
    p.set_defaults(func=approve, reads_ledger=True)


def list_pending(args: argparse.Namespace) -> int:
    pending = approvals.pending(Container(args.settings).reactor())
    emit(args.output, pending, [_row(p) for p in pending], HEADERS)
    return 0


def _row(item: dict[str, Any]) -> list[Any]:
    validation = item.get("validation") or {}
    passed = (validation.get("outputs") or {}).get("passed")
    verdict = "" if not validation else ("passed" if passed else "failed" if passed is False else validation["status"])
    return [
        item["action_id"],
        item["approval"],
        item["model_name"],
        item["model_version"],
        item["source"],
        f"{item['waiting_seconds']:.0f}s" if item.get("waiting_seconds") is not None else "",
        item["outputs"].get("expires_at", ""),
        verdict,
    ]


def approve(args: argparse.Namespace) -> int:
    """Decide as the person at this terminal: the CLI reads and writes the ledger itself."""
    reactor = Container(args.settings).reactor()
    who = f"{getpass.getuser()}@{socket.gethostname()} (CLI)"
    decision = approvals.Decision("reject" if args.reject else "approve", who, args.comment, via="cli")
    action = approvals.decide(reactor, args.action_id, decision)
    verb = "rejected" if args.reject else "approved"
    if args.output == "table":
        narrator(args.output)(f"{action.id}: {verb} by {who}; a running `modelops serve` acts on it now")
        return 0
    data = {"action_id": action.id, "status": action.status, "outputs": action.outputs.to_dict()}
    emit(args.output, data, [(action.id, verb, who, action.status)], ["ACTION", "DECISION", "BY", "STATUS"])
    return 0
