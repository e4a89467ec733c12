"""The Table ledger's reports (``report_<sha256(kind)>`` / ``<newest-first id>``) and the status
counts ``stats()`` gives."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from shared.domain.clock import iso
from shared.ledger import table_access as q
from shared.ledger import table_codec as codec
from shared.ledger.table_access import TableAccess
from shared.ledger.table_codec import PK_EVENT


class TableBookkeeping(TableAccess):
    def record_report(self, kind: str, report: dict[str, Any], now: datetime) -> str:
        prefix = "".join(c for c in kind[:8] if c.isalnum()) or "report"
        report_id = codec.newest_first_id(prefix, now)
        row = {"PartitionKey": q.report_partition(kind), "RowKey": report_id, "kind": kind, "created_at": iso(now)}
        self._table.create_entity({**row, **codec.pack_json("body", report, max_chunks=14)})
        return report_id

    def list_reports(self, kind: str, limit: int) -> list[dict[str, Any]]:
        rows = q.page(self._query(q.report_partition(kind)), limit, 0)
        return [{"id": e["RowKey"], "created_at": e["created_at"], **codec.unpack_json(e, "body", {})} for e in rows]

    def stats(self) -> dict[str, Any]:
        def count(rows: Iterable[Any]) -> dict[str, int]:
            out: dict[str, int] = {}
            for e in rows:
                out[e["status"]] = out.get(e["status"], 0) + 1
            return out

        return {
            "backend": "azure-tables",
            "table": getattr(self._table, "table_name", None),
            "events": count(self._query(PK_EVENT, q.EVENT_ROWS, select=["status"])),
            "actions": count(self._action_rows(q.ACTION_ROWS, select=["RowKey", "status"])),
        }
