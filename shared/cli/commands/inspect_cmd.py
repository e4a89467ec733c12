"""`modelops events`, `modelops actions`, `modelops replay`: the audit trail and re-runs."""

from __future__ import annotations

import argparse
from typing import Any

from shared.bootstrap import Container
from shared.cli.output import (
    ACTION_HEADERS,
    COUNT_CAP,
    EVENT_HEADERS,
    LIMIT_HELP,
    VALIDATION_HEADERS,
    Section,
    action_rows,
    cut_note,
    emit,
    emit_json,
    emit_sections,
    event_rows,
    narrator,
    tsv,
    validation_rows,
)
from shared.domain.actions import ROLLBACK, STATUSES, STEP_KINDS
from shared.domain.events import KINDS
from shared.errors import BadRequest
from shared.service.event_query import STATUS_CHOICES, EventFilters, list_events

EVENT_FIELDS = ("id", "source", "kind", "source_type", "model_name", "model_version", "status", "reason")
ACTION_FIELDS = ("id", "key", "status", "attempts", "event_id", "after", "error", "duration_ms")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    e = sub.add_parser("events", help="list received events, or show one with its actions")
    e.add_argument("event_id", nargs="?", help="show this event")
    e.add_argument("--source", help="only events from this source")
    e.add_argument(
        "--status",
        choices=[s.replace(" ", "-") for s in STATUS_CHOICES],
        help="the event's status (accepted, ignored) or its actions' outcome (succeeded, failed, in-progress), "
        "as the audit page filters",
    )
    e.add_argument("--kind", choices=sorted(KINDS), help="only events of this kind")
    e.add_argument("--model", help="only events about this model")
    e.add_argument("--version", help="only events about this model version")
    e.add_argument("--delivery", metavar="ID", help="the events a delivery with this sender id made (and its answer)")
    e.add_argument("--limit", type=_positive, default=50, help=LIMIT_HELP)
    e.set_defaults(func=events, reads_ledger=True)
    a = sub.add_parser("actions", help="list actions, or show one with its log")
    a.add_argument("action_id", nargs="?", help="show this action")
    a.add_argument("--model")
    a.add_argument("--version")
    a.add_argument("--kind", choices=(*STEP_KINDS, ROLLBACK))  # every kind an action can be, gates too
    a.add_argument("--status", choices=STATUSES)
    a.add_argument("--limit", type=_positive, default=50, help=LIMIT_HELP)
    a.set_defaults(func=actions, reads_ledger=True)
    r = sub.add_parser("replay", help="re-plan an event with the current rules and re-run what failed")
    r.add_argument("event_id")
    r.add_argument("--force", action="store_true", help="also re-run actions that succeeded")
    r.add_argument("--wait", action="store_true", help="run the actions here until they finish")
    r.set_defaults(func=replay, reads_ledger=True)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of rows (1 or more)")
    return int(text)


def events(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    ledger = reactor.ledger
    if args.event_id:
        event = ledger.get_event(args.event_id)
        if event is None:
            raise BadRequest(f"no event {args.event_id}; list them with `modelops events`")
        fields = [
            (key, event.get(key) if event.get(key) is not None else "")
            for key in (*EVENT_FIELDS, "received_at", "deliveries")
        ]
        emit_sections(
            args.output,
            event,
            [
                Section("event", fields, ["FIELD", "VALUE"]),
                Section("deliveries", delivery_rows(event["delivery_log"]), DELIVERY_HEADERS),
                Section("actions", action_rows(event["actions"]), ACTION_HEADERS),
            ],
        )
        return 0
    params = {"source": args.source, "status": args.status, "kind": args.kind, "model": args.model}
    params |= {"version": args.version, "delivery": args.delivery}
    filters = EventFilters.parse({k: v for k, v in params.items() if v})
    if filters.indexed:
        rows = ledger.list_events(
            source=filters.source, status=filters.status, delivery_id=filters.delivery, limit=args.limit
        )
        more = 0
        if len(rows) == args.limit:
            more = len(
                ledger.list_events(
                    source=filters.source,
                    status=filters.status,
                    delivery_id=filters.delivery,
                    limit=COUNT_CAP + 1,
                    offset=args.limit,
                )
            )
    else:
        listed = list_events(ledger, filters, page=args.limit, count_more=True)
        rows, more = [row.record for row in listed.rows], listed.more_count or 0
    if args.delivery is None:
        emit(args.output, rows, event_rows(rows), EVENT_HEADERS)
        cut_note(len(rows), more, args.limit, noun="events")
        return 0
    deliveries = ledger.deliveries(delivery_id=args.delivery)
    if not deliveries:
        raise BadRequest(f"no delivery {args.delivery!r} recorded; list events with `modelops events`")
    emit_sections(
        args.output,
        {"events": rows, "deliveries": deliveries},
        [
            Section("deliveries", delivery_rows(deliveries), DELIVERY_HEADERS),
            Section("events", event_rows(rows), EVENT_HEADERS),
        ],
    )
    cut_note(len(rows), more, args.limit, noun="events")
    return 0


DELIVERY_HEADERS = ["RECEIVED", "SOURCE", "DELIVERY", "ANSWER", "EVENT", "REASON"]


def delivery_rows(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
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


def actions(args: argparse.Namespace) -> int:
    reactor = Container(args.settings).reactor()
    if args.action_id:
        action = reactor.ledger.get_action(args.action_id)
        if action is None:
            raise BadRequest(f"no action {args.action_id}; list them with `modelops actions`")
        body = {**action.to_dict(), "log": reactor.ledger.action_log(action.id)}
        fields = [(key, body.get(key) if body.get(key) is not None else "") for key in ACTION_FIELDS]
        emit_sections(
            args.output,
            body,
            [
                Section("action", fields, ["FIELD", "VALUE"]),
                Section("outputs", list(action.outputs.to_dict().items()), ["OUTPUT", "VALUE"]),
                *validation_section(action.outputs.to_dict()),
                Section("log", [(line["at"][:23], line["message"]) for line in body["log"]], ["AT", "MESSAGE"]),
            ],
        )
        return 0
    filters = {"model": args.model, "version": args.version, "kind": args.kind, "status": args.status}
    rows = reactor.ledger.list_actions(**filters, limit=args.limit)
    more = (
        len(reactor.ledger.list_actions(**filters, limit=COUNT_CAP + 1, offset=args.limit))
        if len(rows) == args.limit
        else 0
    )
    dicts = [a.to_dict() for a in rows]
    emit(args.output, dicts, action_rows(dicts), ACTION_HEADERS)
    cut_note(len(dicts), more, args.limit, noun="actions")
    return 0


def validation_section(outputs: dict[str, Any]) -> list[Section]:
    """A validate step's verdicts as their own table, candidate vs baseline (none for other steps)."""
    if not outputs.get("verdicts"):
        return []
    return [Section("validation", validation_rows(outputs), VALIDATION_HEADERS)]


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
    say = narrator(args.output)
    say(f"event {args.event_id}: planned {len(result['planned'])} new, requeued {len(result['requeued'])}")
    if args.wait:
        print_actions(result["actions"], args.output)
        return 0 if ok else 1
    if args.output == "tsv":  # each action of the event and what the replay did to it
        replayed = {**dict.fromkeys(result["requeued"], "requeued"), **dict.fromkeys(result["planned"], "planned")}
        print(tsv([(action_id, replayed.get(action_id, "unchanged")) for action_id in result["action_ids"]]))
    if result["action_ids"]:
        say("a running `modelops serve` or `modelops worker` runs them; add --wait to run them here")
    return 0


def print_actions(rows: list[dict[str, Any]], output: str = "table") -> None:
    emit(output, rows, action_rows(rows), ACTION_HEADERS)
