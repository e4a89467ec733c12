"""Entity encoding for the Table Storage ledger: time-ordered ids, safe keys, size limits, and
actions and events as entities.

Table Storage limits (learn.microsoft.com "Understanding the Table service data model"):
a string property holds at most 64 KiB (32K UTF-16 code units), an entity at most 1 MiB and
255 properties, a RowKey at most 1 KiB without ``/ \\ # ?`` or control characters.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from shared.domain.actions import Action
from shared.domain.clock import iso
from shared.ledger.payloads import pack_payload, unpack_payload
from shared.ledger.records import (
    DeliveryRecord,
    EventRecord,
    action_from_fields,
    action_to_fields,
    delivery_from_fields,
    event_from_fields,
    event_to_fields,
)

PK_EVENT = "event"
PK_ACTION = "action"  # actions, key claims and audit lines of tables written before (table_layout.py)
ACTION_PARTITIONS = (PK_EVENT, PK_ACTION)  # where actions are: this layout's partition, then the one before

# 16,000 code points are at most 32,000 UTF-16 code units (64,000 bytes), whatever the text.
CHUNK_CHARS = 16_000
_MAX_MICROS = (1 << 52) - 1  # 13 hex digits: good until the year 2112
_counter = itertools.count()


def newest_first_id(prefix: str, now: datetime) -> str:
    """``<prefix>_`` + 20 hex digits that sort newest first, so a partition scan in RowKey order
    lists events and actions the way the API shows them, without a secondary index."""
    micros = int(now.timestamp() * 1_000_000)
    return f"{prefix}_{_MAX_MICROS - micros:013x}{secrets.token_hex(4)[:7]}"


def log_row_key(now: datetime) -> str:
    """Oldest first; the per-process counter keeps lines written in the same microsecond in order."""
    return f"{now.astimezone(UTC).strftime('%Y%m%dT%H%M%S%f')}-{next(_counter) % 10**9:09d}-{secrets.token_hex(3)}"


def key_hash(text: str) -> str:
    """Keys (dedupe keys, action keys, watermark names) are free text: hash them into a RowKey."""
    return hashlib.sha256(text.encode()).hexdigest()


def truncate(text: str | None, limit: int = CHUNK_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    kept = limit - 200  # room for the note
    return text[:kept] + f" ... [{len(text) - kept} characters truncated: Table Storage limits a property to 64 KiB]"


def pack_text(name: str, text: str, *, max_chunks: int) -> dict[str, Any]:
    """Store JSON ``text`` in ``name`` (or ``name_0..name_n`` with ``name_parts`` when it is large).

    Beyond ``max_chunks`` the text is replaced by a JSON note with its start, so an entity never
    exceeds its limits; the caller picks ``max_chunks`` so that all packed fields fit in 1 MiB.
    """
    if len(text) <= CHUNK_CHARS:
        return {name: text}
    if len(text) > CHUNK_CHARS * max_chunks:
        note = {
            "_truncated": f"{len(text)} characters of JSON exceed the Table Storage entity limit",
            "_start": text[: CHUNK_CHARS // 2],
        }
        return {name: json.dumps(note)}
    parts = [text[i : i + CHUNK_CHARS] for i in range(0, len(text), CHUNK_CHARS)]
    out: dict[str, Any] = {f"{name}_{i}": part for i, part in enumerate(parts)}
    out[f"{name}_parts"] = len(parts)
    return out


def unpack_text(entity: Mapping[str, Any], name: str) -> str | None:
    parts = entity.get(f"{name}_parts")
    if parts:
        return "".join(entity[f"{name}_{i}"] for i in range(int(parts)))
    text = entity.get(name)
    return str(text) if text else None


def pack_json(name: str, value: Any, *, max_chunks: int) -> dict[str, Any]:
    # ensure_ascii=False: escapes would multiply non-ASCII by 6
    return pack_text(name, json.dumps(value, default=str, ensure_ascii=False), max_chunks=max_chunks)


def unpack_json(entity: Mapping[str, Any], name: str, default: Any = None) -> Any:
    text = unpack_text(entity, name)
    return json.loads(text) if text else default


def drop_none(entity: dict[str, Any]) -> dict[str, Any]:
    """Table Storage has no nulls: an absent property reads back as None."""
    return {k: v for k, v in entity.items() if v is not None}


def _int(value: Any) -> int | None:
    """Int64 properties read back as EntityProperty."""
    if value is None:
        return None
    return int(getattr(value, "value", value))


def action_entity(action: Action, partition: str = PK_EVENT) -> dict[str, Any]:
    """In the event partition (shared/ledger/table_layout.py); ``partition``: where an action of the
    layout before is kept."""
    from azure.data.tables import EdmType, EntityProperty

    fields = action_to_fields(action)
    plain = {name: value for name, value in fields.items() if name not in ("id", "params", "outputs")}
    duration = EntityProperty(action.duration_ms, EdmType.INT64) if action.duration_ms is not None else None
    return drop_none(
        {
            "PartitionKey": partition,
            "RowKey": action.id,
            **plain,
            "error": truncate(action.error),
            "duration_ms": duration,
            **pack_text("params", fields["params"], max_chunks=4),
            **pack_text("outputs", fields["outputs"], max_chunks=8),
        }
    )


def action_from_entity(entity: Mapping[str, Any]) -> Action:
    numbers = {name: _int(entity.get(name)) for name in ("attempts", "max_attempts", "duration_ms", "generation")}
    texts = {name: unpack_text(entity, name) for name in ("params", "outputs")}
    return action_from_fields({**entity, "id": entity["RowKey"], **numbers, **texts})


def event_entity(record: EventRecord, payload: dict[str, Any], actions: list[str] | None = None) -> dict[str, Any]:
    """The event as first written. ``actions``: the ids of its actions, created in the same batch
    (so it is complete as written); without, its actions are linked later (``complete`` then).
    Tables written before may hold events marked ``planned``: actions named before a second batch
    created them (shared/ledger/table_intake.py reads those)."""
    fields = event_to_fields(record)
    plain = {name: value for name, value in fields.items() if name not in ("id", "summary")}
    links: dict[str, Any] = {"complete": actions is not None}
    if actions:
        links["action_ids"] = json.dumps(actions)
    return drop_none(
        {
            "PartitionKey": PK_EVENT,
            "RowKey": record.id,
            **plain,
            "dedupe_key": truncate(record.dedupe_key),
            "reason": truncate(record.reason),
            **links,
            **pack_text("summary", fields["summary"], max_chunks=2),
            **_payload(payload),
        }
    )


def event_from_entity(entity: Mapping[str, Any]) -> EventRecord:
    deliveries = _int(entity.get("deliveries"))
    return event_from_fields(
        {**entity, "id": entity["RowKey"], "summary": unpack_text(entity, "summary"), "deliveries": deliveries}
    )


def _payload(payload: dict[str, Any]) -> dict[str, Any]:
    """The replayable event; a huge sender body (raw) is dropped rather than the event lost."""
    packed = pack_json("payload", payload, max_chunks=12)
    if "_truncated" not in packed.get("payload", ""):
        return packed
    whole = unpack_payload(payload) or {}  # its large strings kept once (payloads.py): the body's go with it
    size = len(json.dumps(whole.get("raw"), default=str))
    raw = {"_truncated": f"the sender's body ({size} characters) exceeds the Table Storage entity limit"}
    return pack_json("payload", pack_payload({**whole, "raw": raw}), max_chunks=12)


def log_entity(action_id: str, at: datetime, worker: str | None, message: str) -> dict[str, Any]:
    """An audit line in the event partition (so it joins the batch that creates its action), oldest
    first under ``log_<action id>_``. Tables written before kept them under the same prefix in the
    ``action`` partition, and before that in a partition ``log_<action id>`` of their own
    (``log_partition``): both are still read."""
    line = {"PartitionKey": PK_EVENT, "RowKey": f"{log_prefix(action_id)}{log_row_key(at)}", "at": iso(at)}
    return drop_none({**line, "worker": worker, "message": truncate(message)})


def log_prefix(action_id: str) -> str:
    return f"log_{action_id}_"


def log_partition(action_id: str) -> str:
    """Where a table written before this layout keeps the action's audit lines (RowKey: the time)."""
    return f"log_{action_id}"


def log_order(entity: Mapping[str, Any]) -> str:
    """The time part of a line's RowKey, in either layout."""
    return str(entity["RowKey"]).rpartition("_")[2]


def delivery_entities(delivery: DeliveryRecord, now: datetime) -> list[dict[str, Any]]:
    """A delivery as entities of the event partition (so they join the event's batch): one under the
    event (``dlv_<event id>_<time>``, oldest first) and one under the sender's id
    (``did_<sha256(id)>_<time>``), each a RowKey range scan away."""
    at = log_row_key(now)
    body = drop_none({**delivery.to_dict(), "reason": truncate(delivery.reason)})
    body["delivery_id"] = truncate(delivery.delivery_id)
    out = []
    if delivery.event_id:
        out.append({"PartitionKey": PK_EVENT, "RowKey": f"dlv_{delivery.event_id}_{at}", **body})
    if delivery.delivery_id:
        out.append({"PartitionKey": PK_EVENT, "RowKey": f"{delivery_prefix(delivery.delivery_id)}{at}", **body})
    return [drop_none(e) for e in out]


def delivery_prefix(delivery_id: str) -> str:
    return f"did_{key_hash(delivery_id)}_"


def delivery_from_entity(entity: Mapping[str, Any]) -> DeliveryRecord:
    return delivery_from_fields(entity)
