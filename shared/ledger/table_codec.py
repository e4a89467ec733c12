"""Entity encoding for the Table Storage ledger: time-ordered ids, safe keys, size limits.

Table Storage limits (learn.microsoft.com "Understanding the Table service data model"):
a string property holds at most 64 KiB (32K UTF-16 code units), an entity at most 1 MiB and
255 properties, a RowKey at most 1 KiB without ``/ \\ # ?`` or control characters.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import secrets
from datetime import UTC, datetime
from typing import Any

# 16,000 code points are at most 32,000 UTF-16 code units (64,000 bytes), whatever the text.
CHUNK_CHARS = 16_000
_MAX_MICROS = (1 << 52) - 1  # 13 hex digits: good until the year 2112
_counter = itertools.count()


def iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat(timespec="microseconds") if value else None


def parse_dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


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


def pack_json(name: str, value: Any, *, max_chunks: int) -> dict[str, Any]:
    """Serialize ``value`` into ``name`` (or ``name_0..name_n`` with ``name_parts`` when it is large).

    Beyond ``max_chunks`` the value is replaced by a note with its start, so an entity never
    exceeds its limits; the caller picks ``max_chunks`` so that all packed fields fit in 1 MiB.
    """
    text = json.dumps(value, default=str, ensure_ascii=False)  # escapes would multiply non-ASCII by 6
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


def unpack_json(entity: dict[str, Any], name: str, default: Any = None) -> Any:
    parts = entity.get(f"{name}_parts")
    if parts:
        return json.loads("".join(entity[f"{name}_{i}"] for i in range(int(parts))))
    text = entity.get(name)
    return json.loads(text) if text else default


def drop_none(entity: dict[str, Any]) -> dict[str, Any]:
    """Table Storage has no nulls: an absent property reads back as None."""
    return {k: v for k, v in entity.items() if v is not None}
