"""Large values in an event's record kept once (#25): a sender's body that carries a 1 MB tag value
also puts it in the parsed event's tags, its summary and its dedupe key; stored as they come, one
delivery wrote it five times (SQLite: payload body and tags, summary, dedupe key and its index).

- the payload (replay's copy of the event) keeps each large string once, under ``_strings`` with
  the places it occurs (``unpack_payload`` puts it back in each);
- the summary (for listing) shortens a large string to its start and its length;
- the dedupe key, when long, becomes its start and its SHA-256, the same for every redelivery.
"""

from __future__ import annotations

import hashlib
from typing import Any

from shared.domain.events import ModelEvent, event_to_payload

LARGE_TEXT = 4096  # characters: a string this long is kept once
KEY_TEXT = 512  # characters of a dedupe key kept as they are


def stored_payload(event: ModelEvent) -> dict[str, Any]:
    """The event as the ledger keeps it for replay (``unpack_payload`` reads it back)."""
    return pack_payload(event_to_payload(event))


def pack_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """Each large string once, under ``_strings`` with the places it occurs (paths of keys and
    indexes); ``None`` in those places. A top-level key of the event's own fields, so no sender's
    body (under ``raw``) can make one up."""
    places: dict[str, list[list[str | int]]] = {}

    def walk(value: Any, path: list[str | int]) -> Any:
        if isinstance(value, str) and len(value) >= LARGE_TEXT:
            places.setdefault(value, []).append(path)
            return None
        if isinstance(value, dict):
            return {k: walk(v, [*path, k]) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(v, [*path, i]) for i, v in enumerate(value)]
        return value

    packed = walk(payload, [])
    if places:
        packed["_strings"] = [{"text": text, "at": at} for text, at in places.items()]
    return packed


def unpack_payload(stored: dict[str, Any] | None) -> dict[str, Any] | None:
    if not stored or "_strings" not in stored:
        return stored
    out = {k: v for k, v in stored.items() if k != "_strings"}
    for entry in stored["_strings"]:
        for path in entry["at"]:
            parent: Any = out
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = entry["text"]
    return out


def shorten(value: Any) -> Any:
    """A summary's large strings cut to their start (the payload keeps them whole)."""
    if isinstance(value, str) and len(value) >= LARGE_TEXT:
        return f"{value[:200]}... ({len(value)} characters; the event's payload keeps it whole)"
    if isinstance(value, dict):
        return {k: shorten(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shorten(v) for v in value]
    return value


def compact_key(key: str) -> str:
    if len(key) <= KEY_TEXT:
        return key
    return f"{key[:200]}...sha256:{hashlib.sha256(key.encode()).hexdigest()}"
