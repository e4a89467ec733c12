"""Where the Table ledger keeps an event's records, and the move of key claims from the layout before.

An event, its dedupe claim and deliveries, its actions, their key claims and their audit lines all
live in the ``event`` partition, so that a new event is one entity-group transaction: the Table
service runs a batch only over entities of one partition, at most 100 entities and 4 MiB of
payload, all or nothing ("Performing entity group transactions", Table service REST reference,
https://learn.microsoft.com/en-us/rest/api/storageservices/performing-entity-group-transactions).

Tables written before kept actions, their key claims and audit lines in an ``action`` partition.
Those actions stay there and are read beside the new ones; their key claims are copied into the
``event`` partition once per table (``migrate_key_claims``), before this process's first write, so
that a batch creating the claim of a key an old action holds is refused as it was before. The row
``layout`` / ``key-claims-v2`` marks the copy done: each process reads it once.
"""

from __future__ import annotations

import threading
from typing import Any

from shared.ledger import table_access as q
from shared.ledger.table_access import TableAccess
from shared.ledger.table_codec import PK_ACTION, PK_EVENT

PK_LAYOUT = "layout"
MARKER = "key-claims-v2"


class TableLayout(TableAccess):
    """The layout check of the Table ``LedgerStore``: run before the first write that creates a key claim."""

    _migrated = False
    _migrating = threading.Lock()

    def _ensure_layout(self) -> None:
        if self._migrated:
            return
        with self._migrating:
            if not self._migrated:
                if self._get(PK_LAYOUT, MARKER) is None:
                    migrate_key_claims(self)
                self._migrated = True

    def _old_claim(self, key_rk: str) -> Any | None:
        """A key claim the layout before wrote (an older process may still write them during an upgrade)."""
        return self._get(PK_ACTION, key_rk)


def migrate_key_claims(store: TableAccess) -> int:
    """Copy every ``action`` / ``key_`` claim into the ``event`` partition (one already there is kept:
    the copy is idempotent, so processes starting together may both run it), then write the marker;
    the number of claims copied."""
    from azure.core.exceptions import ResourceExistsError

    old = [dict(e) for e in store._query(PK_ACTION, q.prefix_rows("key_"))]
    copies = [{**claim, "PartitionKey": PK_EVENT} for claim in old]
    for start in range(0, len(copies), q.BATCH_OPERATIONS):
        chunk = copies[start : start + q.BATCH_OPERATIONS]
        if not store._create_together(chunk):  # one is there already: one by one
            for claim in chunk:
                try:
                    store._table.create_entity(claim)
                except ResourceExistsError:
                    pass
    marker = {"PartitionKey": PK_LAYOUT, "RowKey": MARKER, "copied": len(copies)}
    try:
        store._table.create_entity(marker)
    except ResourceExistsError:
        pass
    return len(copies)
