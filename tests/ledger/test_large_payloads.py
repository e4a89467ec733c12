"""A large delivery is stored once (#25): a tag value of the sender's body is also the parsed
event's tag, in its summary and its dedupe key; the store grows by about its size, not several."""

from __future__ import annotations

import sqlite3
from typing import Any

from shared.adapters.azure_storage import StorageAccount
from shared.domain.events import MODEL_VERSION_TAG_SET, ModelEvent
from shared.ledger.base import Ledger
from tests.ledger.support import Backend, plan

# a Table entity holds 1 MiB: the payload's share of it is 12 properties of 16,000 characters
SIZE = {"sqlite": 1_000_000, "tables": 150_000}


def stored_bytes(backend: Backend) -> int:
    """SQLite: the pages in use; Table Storage: every property value of every entity, in characters."""
    if backend.kind == "sqlite":
        db = sqlite3.connect(backend.location)
        try:
            pages = db.execute("PRAGMA page_count").fetchone()[0] - db.execute("PRAGMA freelist_count").fetchone()[0]
            return int(pages * db.execute("PRAGMA page_size").fetchone()[0])
        finally:
            db.close()
    table = StorageAccount(connection_string=backend.connection).table_client(backend.location)
    return sum(len(str(v)) for entity in table.list_entities() for v in entity.values())


def tag_set(version: str, value: str) -> ModelEvent:
    body: dict[str, Any] = {"entity": "model_version_tag", "action": "set"}
    body["data"] = {"name": "m", "version": version, "key": "notes", "value": value}
    return ModelEvent(
        source="mlflow",
        kind=MODEL_VERSION_TAG_SET,
        source_type="model_version_tag.set",
        model_name="m",
        model_version=version,
        tags={"notes": value},
        raw=body,
        delivery_id=f"d-{version}",
    )


def test_a_large_delivery_is_stored_once(backend: Backend, ledger: Ledger) -> None:
    size = SIZE[backend.kind]
    ledger.record_event(tag_set("1", "small"), plan("1"), reason=None, max_attempts=3)
    before = stored_bytes(backend)
    value = "é" + "x" * (size - 1)
    first = ledger.record_event(tag_set("2", value), plan("2"), reason=None, max_attempts=3)
    grown = stored_bytes(backend) - before
    assert grown < 1.3 * size, grown  # not 5 times: payload body and tags, summary, dedupe key (and its index)
    payload = ledger.event_payload(first.event_id)
    assert payload is not None and payload["tags"] == {"notes": value} and payload["raw"]["data"]["value"] == value
    again = ledger.record_event(tag_set("2", value), plan("2"), reason=None, max_attempts=3)
    assert again.duplicate and again.event_id == first.event_id
    listed = ledger.get_event(first.event_id)
    assert listed is not None and len(listed["summary"]["tags"]["notes"]) < 300
