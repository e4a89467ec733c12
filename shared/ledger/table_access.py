"""The Table ledger's access to its one table: point reads, OData queries (row ranges of one
partition, equality filters, paging), ETag-conditioned replaces and one-partition batches."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from shared.domain.actions import QUEUED, RUNNING, WAITING
from shared.ledger import table_codec as codec
from shared.ledger.store import Stored

PK_WATERMARK = "watermark"
EVENT_ROWS = "RowKey ge 'evt_' and RowKey lt 'evt`'"  # '`' follows '_': the evt_ rows only
ACTION_ROWS = "RowKey ge 'act_' and RowKey lt 'act`'"
ACTIVE = f"({ACTION_ROWS}) and (status eq '{QUEUED}' or status eq '{WAITING}' or status eq '{RUNNING}')"


def stored(entity: Any) -> Stored:
    return Stored(codec.action_from_entity(entity), entity.metadata["etag"])


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


def report_partition(kind: str) -> str:
    return "report_" + codec.key_hash(kind)[:40]


class TableAccess:
    """Reads and conditional writes on one table client (the SDK is imported where it is used)."""

    def __init__(self, table_client: Any) -> None:
        from azure.core.exceptions import ResourceExistsError

        self._table = table_client
        with contextlib.suppress(ResourceExistsError):
            table_client.create_table()

    # -- plumbing -------------------------------------------------------------------------
    def _get(self, pk: str, rk: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._table.get_entity(pk, rk)
        except ResourceNotFoundError:
            return None

    def _query(
        self, pk: str, where: str | None = None, params: dict[str, Any] | None = None, select: list[str] | None = None
    ) -> Iterator[Any]:
        # the spaces around ( ) matter: the SDK splits the filter on them to find @params
        text = "PartitionKey eq @pk" + (f" and ( {where} )" if where else "")
        return iter(self._table.query_entities(text, parameters={"pk": pk, **(params or {})}, select=select))

    def _replace(self, entity: dict[str, Any], etag: object) -> bool:
        """Write the whole entity if it is unchanged since it was read with ``etag``."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

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
        from azure.core import MatchConditions
        from azure.data.tables import TableTransactionError, UpdateMode

        operations: list[Any] = [("create", e) for e in entities]
        if update is not None:
            entity, etag = update
            options = {"mode": UpdateMode.REPLACE, "etag": etag, "match_condition": MatchConditions.IfNotModified}
            operations.insert(0, ("update", entity, options))
        try:
            self._table.submit_transaction(operations)
            return True
        except TableTransactionError as exc:
            code = str(getattr(exc, "error_code", ""))
            if exc.status_code in (409, 412) or code in ("EntityAlreadyExists", "UpdateConditionNotSatisfied"):
                return False
            raise
