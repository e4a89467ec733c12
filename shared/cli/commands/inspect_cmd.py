"""`modelops events`, `modelops actions`, `modelops replay`: the audit trail and re-runs."""

from __future__ import annotations

import argparse

from shared.bootstrap import Container
from shared.cli.output import emit_json, table
from shared.domain.actions import ACTION_KINDS, STATUSES
from shared.errors import ModelOpsError


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    e = sub.add_parser("events", help="list received events, or show one with its actions")
    e.add_argument("event_id", nargs="?", help="show this event")
    e.add_argument("--source", help="only events from this source")
    e.add_argument("--status", choices=["accepted", "ignored"])
    e.add_argument("--limit", type=int, default=50)
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=events)
    a = sub.add_parser("actions", help="list actions, or show one with its log")
    a.add_argument("action_id", nargs="?", help="show this action")
    a.add_argument("--model")
    a.add_argument("--version")
    a.add_argument("--kind", choices=ACTION_KINDS)
    a.add_argument("--status", choices=STATUSES)
    a.add_argument("--limit", type=int, default=50)
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=actions)
    r = sub.add_parser("replay", help="re-plan an event with the current rules and re-run what failed")
    r.add_argument("event_id")
    r.add_argument("--force", action="store_true", help="also re-run actions that succeeded")
    r.add_argument("--wait", action="store_true", help="run the actions here until they finish")
    r.set_defaults(func=replay)


def events(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    if args.event_id:
        event = reactor.ledger.get_event(args.event_id)
        if event is None:
            raise ModelOpsError(f"no event {args.event_id}")
        if args.json:
            emit_json(event)
            return 0
        for key in (
            "id",
            "source",
            "kind",
            "source_type",
            "model_name",
            "model_version",
            "status",
            "reason",
            "received_at",
            "deliveries",
        ):
            print(f"{key:14} {event.get(key) or ''}")
        _print_actions(event["actions"])
        return 0
    rows = reactor.ledger.list_events(source=args.source, status=args.status, limit=args.limit)
    if args.json:
        emit_json(rows)
        return 0
    print(
        table(
            [
                (
                    e["id"],
                    e["received_at"][:19],
                    e["source"],
                    e["kind"] or e["source_type"],
                    _model(e),
                    e["status"],
                    e["reason"] or "",
                )
                for e in rows
            ],
            ["EVENT", "RECEIVED", "SOURCE", "KIND", "MODEL", "STATUS", "REASON"],
        )
    )
    return 0


def actions(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    if args.action_id:
        action = reactor.ledger.get_action(args.action_id)
        if action is None:
            raise ModelOpsError(f"no action {args.action_id}")
        body = {**action.to_dict(), "log": reactor.ledger.action_log(action.id)}
        if args.json:
            emit_json(body)
            return 0
        for key in ("id", "key", "status", "attempts", "event_id", "after", "error", "duration_ms"):
            print(f"{key:12} {body.get(key) if body.get(key) is not None else ''}")
        for key, value in action.outputs.to_dict().items():
            print(f"  {key}: {value}")
        for line in body["log"]:
            print(f"  {line['at'][:23]}  {line['message']}")
        return 0
    rows = reactor.ledger.list_actions(
        model=args.model, version=args.version, kind=args.kind, status=args.status, limit=args.limit
    )
    if args.json:
        emit_json([a.to_dict() for a in rows])
        return 0
    _print_actions([a.to_dict() for a in rows])
    return 0


def replay(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    result = reactor.replay(args.event_id, force=args.force)
    if result is None:
        raise ModelOpsError(f"no event {args.event_id}")
    print(f"event {args.event_id}: planned {len(result['planned'])} new, requeued {len(result['requeued'])}")
    if args.wait:
        worker = reactor.worker()
        done = worker.run_until_done(result["action_ids"])
        _print_actions([a.to_dict() for a in done])
        return 0 if all(a.status == "succeeded" for a in done) else 1
    return 0


def _model(row: dict[str, object]) -> str:
    name, version = row.get("model_name"), row.get("model_version")
    return f"{name}/{version}" if name and version else str(name or "")


def _print_actions(rows: list[dict[str, object]]) -> None:
    print(
        table(
            [
                (
                    a["id"],
                    a["kind"],
                    a["target"],
                    _model(a),
                    a["status"],
                    a["attempts"],
                    a["duration_ms"] if a["duration_ms"] is not None else "",
                    _short(a["error"] or ""),
                )
                for a in rows
            ],
            ["ACTION", "KIND", "TARGET", "MODEL", "STATUS", "TRIES", "MS", "ERROR"],
        )
    )


def _short(text: object, width: int = 80) -> str:
    value = str(text).replace("\n", " ")
    return value if len(value) <= width else value[: width - 1] + "…"
