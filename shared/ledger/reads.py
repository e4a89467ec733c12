"""The ledger's reads: events with their actions and deliveries, actions, logs, watermarks, reports.

They read the store as it is (no unit of work, no transition); ``LedgerCore`` adds the writes.
"""

from __future__ import annotations

from typing import Any

from shared.domain.actions import Action
from shared.ledger.payloads import unpack_payload
from shared.ledger.records import ActionQuery
from shared.ledger.store import LedgerStore


class LedgerReads:
    """The read side of the ``Ledger`` port over a ``LedgerStore``."""

    _store: LedgerStore

    def deliveries(self, *, delivery_id: str | None = None, event_id: str | None = None) -> list[dict[str, Any]]:
        if delivery_id is None and event_id is None:
            raise ValueError("deliveries() needs a delivery_id or an event_id")
        return [d.to_dict() for d in self._store.deliveries(delivery_id=delivery_id, event_id=event_id)]

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        record = self._store.event(event_id)
        if record is None:
            return None
        actions = self._store.actions(ActionQuery(event_id=event_id, limit=1000))
        deliveries = [d.to_dict() for d in self._store.deliveries(event_id=event_id)]
        return {**record.to_dict(), "actions": [a.to_dict() for a in actions], "delivery_log": deliveries}

    def list_events(
        self,
        *,
        source: str | None = None,
        status: str | None = None,
        delivery_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        if delivery_id is None:
            return [r.to_dict() for r in self._store.events(source=source, status=status, limit=limit, offset=offset)]
        ids = dict.fromkeys(d.event_id for d in self._store.deliveries(delivery_id=delivery_id) if d.event_id)
        found = [r for r in (self._store.event(i) for i in ids) if r is not None]
        wanted = [r for r in found if (source is None or r.source == source) and (status is None or r.status == status)]
        wanted.sort(key=lambda r: r.received_at, reverse=True)
        return [r.to_dict() for r in wanted[offset : offset + limit]]

    def event_payload(self, event_id: str) -> dict[str, Any] | None:
        return unpack_payload(self._store.event_payload(event_id))

    def get_action(self, action_id: str) -> Action | None:
        stored = self._store.load(action_id)
        return stored.action if stored else None

    def find_action(self, key: str) -> Action | None:
        return self._store.find(key)

    def list_actions(
        self,
        *,
        model: str | None = None,
        version: str | None = None,
        kind: str | None = None,
        status: str | None = None,
        event_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Action]:
        query = ActionQuery(model, version, kind, status, event_id, limit, offset)
        return self._store.actions(query)

    def action_log(self, action_id: str) -> list[dict[str, Any]]:
        return self._store.read_log(action_id)

    def get_watermark(self, name: str) -> str | None:
        return self._store.get_watermark(name)

    def list_reports(self, kind: str, limit: int = 20) -> list[dict[str, Any]]:
        return self._store.list_reports(kind, limit)

    def stats(self) -> dict[str, Any]:
        return self._store.stats()
