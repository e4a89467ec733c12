"""Named registers in the ledger's table: watermarks (``watermark`` / ``<sha256(name)>``), written
whole or compare-and-set on their ETag (the serving-line holders, pins and alias views of
shared/service/desired.py live here)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.domain.clock import iso
from shared.ledger import table_access as q
from shared.ledger import table_codec as codec
from shared.ledger.table_access import TableAccess


class TableRegisters(TableAccess):
    def get_watermark(self, name: str) -> str | None:
        entity = self._get(q.PK_WATERMARK, codec.key_hash(name))
        return str(entity["value"]) if entity else None

    def set_watermark(self, name: str, value: str, now: datetime) -> None:
        from azure.data.tables import UpdateMode

        self._forget([self._register(name, value, now)])
        self._table.upsert_entity(self._register(name, value, now), mode=UpdateMode.REPLACE)

    def swap_watermark(self, name: str, expected: str | None, value: str, now: datetime) -> bool:
        """Created if absent (a batch of one: refused with 409 when another writer created it first), else
        replaced on the ETag of the read that found ``expected``."""
        entity = self._register(name, value, now)
        if expected is None:
            return self._create_together([entity])
        found = self._get(q.PK_WATERMARK, codec.key_hash(name))
        if found is None or str(found["value"]) != codec.truncate(expected):
            return False
        return self._replace(entity, found.metadata["etag"])

    @staticmethod
    def _register(name: str, value: str, now: datetime) -> dict[str, Any]:
        row = {"PartitionKey": q.PK_WATERMARK, "RowKey": codec.key_hash(name), "name": name}
        return {**row, "value": codec.truncate(value), "updated_at": iso(now)}
