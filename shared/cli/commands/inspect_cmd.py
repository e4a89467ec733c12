"""`modelops events`, `modelops actions`, `modelops replay`: the audit trail and re-runs."""

from __future__ import annotations

import argparse
from typing import Any

from shared.bootstrap import Container
from shared.cli.output import ACTION_HEADERS, EVENT_HEADERS, action_rows, emit, emit_json, event_rows, table
from shared.domain.actions import ACTION_KINDS, ROLLBACK, STATUSES
from shared.errors import BadRequest

EVENT_FIELDS = ("id", "source", "kind", "source_type", "model_name", "model_version", "status", "reason")
ACTION_FIELDS = ("id", "key", "status", "attempts", "event_id", "after", "error", "duration_ms")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    e = sub.add_parser("events", help="list received events, or show one with its actions")
    e.add_argument("event_id", nargs="?", help="show this event")
    e.add_argument("--source", help="only events from this source")
    e.add_argument("--status", choices=["accepted", "ignored"])
    e.add_argument("--delivery", metavar="ID", help="the events a delivery with this sender id made (and its answer)")
    e.add_argument("--limit", type=int, default=50)
    e.set_defaults(func=events)
    a = sub.add_parser("actions", help="list actions, or show one with its log")
    a.add_argument("action_id", nargs="?", help="show this action")
    a.add_argument("--model")
    a.add_argument("--version")
    a.add_argument("--kind", choices=(*ACTION_KINDS, ROLLBACK))
    a.add_argument("--status", choices=STATUSES)
    a.add_argument("--limit", type=int, default=50)
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
            raise BadRequest(f"no event {args.event_id}; list them with `modelops events`")
        if args.output == "json":
            emit_json(event)
            return 0
        _fields(event, (*EVENT_FIELDS, "received_at", "deliveries"))
        print_deliveries(event["delivery_log"], args.output)
        print_actions(event["actions"], args.output)
        return 0
    ledger = reactor.ledger
    rows = ledger.list_events(source=args.source, status=args.status, delivery_id=args.delivery, limit=args.limit)
    if args.delivery is None:
        emit(args.output, rows, event_rows(rows), EVENT_HEADERS)
        return 0
    deliveries = ledger.deliveries(delivery_id=args.delivery)
    if not deliveries:
        raise BadRequest(f"no delivery {args.delivery!r} recorded; list events with `modelops events`")
    if args.output == "json":
        emit_json({"events": rows, "deliveries": deliveries})
        return 0
    print_deliveries(deliveries, args.output)
    emit(args.output, rows, event_rows(rows), EVENT_HEADERS)
    return 0


def print_deliveries(rows: list[dict[str, Any]], output: str = "table") -> None:
    cells = [
        (
            d["received_at"][:23],
            d["source"],
            d["delivery_id"] or "",
            d["answer"],
            d["event_id"] or "",
            d["reason"] or "",
        )
        for d in rows
    ]
    emit(output, rows, cells, ["RECEIVED", "SOURCE", "DELIVERY", "ANSWER", "EVENT", "REASON"])


def actions(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    if args.action_id:
        action = reactor.ledger.get_action(args.action_id)
        if action is None:
            raise BadRequest(f"no action {args.action_id}; list them with `modelops actions`")
        body = {**action.to_dict(), "log": reactor.ledger.action_log(action.id)}
        if args.output == "json":
            emit_json(body)
            return 0
        _fields(body, ACTION_FIELDS)
        for key, value in action.outputs.to_dict().items():
            print(f"  {key}: {value}")
        for line in body["log"]:
            print(f"  {line['at'][:23]}  {line['message']}")
        return 0
    rows = reactor.ledger.list_actions(
        model=args.model, version=args.version, kind=args.kind, status=args.status, limit=args.limit
    )
    dicts = [a.to_dict() for a in rows]
    emit(args.output, dicts, action_rows(dicts), ACTION_HEADERS)
    return 0


def replay(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    result = reactor.replay(args.event_id, force=args.force)
    if result is None:
        raise BadRequest(f"no event {args.event_id}; list them with `modelops events`")
    ok = True
    if args.wait:
        done = reactor.worker().run_until_done(result["action_ids"])
        result = {**result, "actions": [a.to_dict() for a in done]}
        ok = all(a.status == "succeeded" for a in done)
    if args.output == "json":
        emit_json(result)
        return 0 if ok else 1
    print(f"event {args.event_id}: planned {len(result['planned'])} new, requeued {len(result['requeued'])}")
    if args.wait:
        print_actions(result["actions"], args.output)
    elif result["action_ids"]:
        print("a running `modelops serve` or `modelops worker` runs them; add --wait to run them here")
    return 0 if ok else 1


def print_actions(rows: list[dict[str, Any]], output: str = "table") -> None:
    emit(output, rows, action_rows(rows), ACTION_HEADERS)


def _fields(body: dict[str, Any], keys: tuple[str, ...]) -> None:
    print(table([(key, body.get(key) if body.get(key) is not None else "") for key in keys], ["FIELD", "VALUE"]))
