"""The Table ledger's access to its one table: point reads, OData queries (row ranges of one
partition, equality filters, paging), ETag-conditioned replaces and one-partition batches."""

from __future__ import annotations

import contextlib
import heapq
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

from shared.domain.actions import QUEUED, RUNNING, WAITING
from shared.ledger import table_codec as codec
from shared.ledger.store import Stored

T = TypeVar("T")

PK_WATERMARK = "watermark"
EVENT_ROWS = "RowKey ge 'evt_' and RowKey lt 'evt`'"  # '`' follows '_': the evt_ rows only
ACTION_ROWS = "RowKey ge 'act_' and RowKey lt 'act`'"
ACTIVE = f"({ACTION_ROWS}) and (status eq '{QUEUED}' or status eq '{WAITING}' or status eq '{RUNNING}')"


def stored(entity: Any) -> Stored:
    """The action with what ``swap`` needs: its partition (this layout's or the one before) and ETag."""
    return Stored(codec.action_from_entity(entity), (entity["PartitionKey"], entity.metadata["etag"]))


def filters(values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """OData equality filters with parameters (the SDK quotes and escapes them)."""
    used = {k: v for k, v in values.items() if v is not None}
    return "".join(f" and {k} eq @{k}" for k in used), used


def prefix_rows(prefix: str) -> str:
    """The rows whose RowKey starts with ``prefix`` (of [a-z0-9_] only: no quoting needed)."""
    return f"RowKey ge '{prefix}' and RowKey lt '{prefix[:-1]}{chr(ord(prefix[-1]) + 1)}'"


def page(rows: Iterator[Any], limit: int, offset: int) -> list[Any]:
    out: list[Any] = []
    for index, row in enumerate(rows):
        if index >= offset + limit:
            break
        if index >= offset:
            out.append(row)
    return out


BATCH_OPERATIONS = 100  # an entity-group transaction: at most 100 operations, 4 MiB of body
BATCH_BYTES = 3 * 1024 * 1024  # of property values, leaving room for the request's framing


def fits_one_batch(entities: list[dict[str, Any]]) -> bool:
    size = sum(len(v.encode()) if isinstance(v, str) else 16 for e in entities for v in e.values())
    return len(entities) <= BATCH_OPERATIONS and size <= BATCH_BYTES


def report_partition(kind: str) -> str:
    return "report_" + codec.key_hash(kind)[:40]


class TableAccess:
    """Reads and conditional writes on one table client (the SDK is imported where it is used).

    Inside ``in_unit`` (one intake, on the calling thread) a point read of an entity that exists is
    made once: the event a duplicate reads to find its actions is the one it counts the delivery
    on, the action read to see that the actions were created is the one it asks whether it
    started. A miss is not kept (another intake may create the entity a moment later), every write
    drops what it touches, and each update is conditioned on the ETag read, so a copy that went
    stale costs a lost race (re-read), never a lost write.
    """

    def __init__(self, table_client: Any) -> None:
        from azure.core.exceptions import ResourceExistsError

        self._table = table_client
        self._unit = threading.local()
        with contextlib.suppress(ResourceExistsError):
            table_client.create_table()

    def in_unit(self, unit: Callable[[], T]) -> T:
        self._unit.reads = {}
        try:
            return unit()
        finally:
            self._unit.reads = None

    # -- plumbing -------------------------------------------------------------------------
    def _get(self, pk: str, rk: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        reads: dict[tuple[str, str], Any] | None = getattr(self._unit, "reads", None)
        if reads is not None and (pk, rk) in reads:
            return reads[pk, rk]
        try:
            found = self._table.get_entity(pk, rk)
        except ResourceNotFoundError:
            found = None
        if reads is not None and found is not None:
            reads[pk, rk] = found  # a miss is asked again: the entity may be created meanwhile
        return found

    def _get_many(self, pk: str, row_keys: list[str]) -> None:
        """Read these rows of one partition in one query, kept for the unit like ``_get``'s reads."""
        reads: dict[tuple[str, str], Any] | None = getattr(self._unit, "reads", None)
        wanted = [rk for rk in dict.fromkeys(row_keys) if reads is None or (pk, rk) not in reads]
        if reads is None or not wanted:
            return
        params = {f"r{i}": rk for i, rk in enumerate(wanted)}
        for entity in self._query(pk, " or ".join(f"RowKey eq @{name}" for name in params), params):
            reads[pk, str(entity["RowKey"])] = entity

    def _forget(self, entities: Iterable[Mapping[str, Any]]) -> None:
        reads: dict[tuple[str, str], Any] | None = getattr(self._unit, "reads", None)
        if reads:
            for entity in entities:
                reads.pop((entity["PartitionKey"], entity["RowKey"]), None)

    def _query(
        self, pk: str, where: str | None = None, params: dict[str, Any] | None = None, select: list[str] | None = None
    ) -> Iterator[Any]:
        # the spaces around ( ) matter: the SDK splits the filter on them to find @params
        text = "PartitionKey eq @pk" + (f" and ( {where} )" if where else "")
        return iter(self._table.query_entities(text, parameters={"pk": pk, **(params or {})}, select=select))

    def _action_rows(
        self, where: str, params: dict[str, Any] | None = None, select: list[str] | None = None
    ) -> Iterator[Any]:
        """Rows of both partitions that hold actions (``codec.ACTION_PARTITIONS``), merged in RowKey order."""
        rows = [self._query(pk, where, params, select) for pk in codec.ACTION_PARTITIONS]
        return heapq.merge(*rows, key=lambda e: str(e["RowKey"]))

    def _action_entity(self, action_id: str) -> Any | None:
        """An action by id, in this layout's partition or the one before."""
        if not action_id.startswith("act_"):
            return None
        return self._get(codec.PK_EVENT, action_id) or self._get(codec.PK_ACTION, action_id)

    def _replace(self, entity: dict[str, Any], etag: object) -> bool:
        """Write the whole entity if it is unchanged since it was read with ``etag``."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        self._forget([entity])
        try:
            self._table.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
            return True
        except (ResourceModifiedError, ResourceNotFoundError):
            return False

    def _create_together(self, entities: list[dict[str, Any]], update: tuple[Any, object] | None = None) -> bool:
        """Create entities of one partition atomically (with ``update``, an (entity, etag) replaced if
        unchanged, in the same batch); False if one of them already exists or the update lost a race."""
        return self._transact(entities, update) is None

    def _transact(self, entities: list[dict[str, Any]], update: tuple[Any, object] | None = None) -> int | None:
        """``_create_together``, answering None when done, else the index of the operation refused
        (0 also when the service did not say which). The batch is encoded by
        shared/adapters/table_batch.py (a third of azure-core's client time for it)."""
        from azure.core.exceptions import HttpResponseError

        from shared.adapters import table_batch

        self._forget(entities)
        if update is not None:
            self._forget([update[0]])
        refused = table_batch.submit(self._table, entities, None if update is None else (update[0], str(update[1])))
        if refused is None:
            return None
        if refused.status in (409, 412) or refused.code in ("EntityAlreadyExists", "UpdateConditionNotSatisfied"):
            return refused.index
        raise HttpResponseError(message=f"entity group transaction refused: {refused}")
