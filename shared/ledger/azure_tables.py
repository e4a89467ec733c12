"""The ledger on Azure Table Storage: one table, a partition per record type, ETags for every race.

Layout (PartitionKey / RowKey):
- ``event`` / ``evt_<newest-first id>``: the event, its action ids and delivery count;
  ``event`` / ``dedupe_<sha256(dedupe key)>``: the dedupe claim, created with the event in one
  entity-group transaction, so a redelivery finds the first recording by a point read.
- ``action`` / ``act_<newest-first id>``: the action; ``action`` / ``key_<sha256(action key)>``:
  its key claim, again created together in one transaction (one action per key, ever).
- ``log_<action id>`` / ``<time>-<seq>``: the action's audit log, read in RowKey order.
- ``watermark`` / ``<sha256(name)>``; ``report_<sha256(kind)>`` / ``<newest-first id>``.

Ids sort newest first, so listing is a scan of one partition in RowKey order, the same order the
SQLite ledger gives. Every state change of an action is a read-modify-write conditioned on the
entity's ETag (If-Match); a lost race (412) re-reads and re-decides. There is no cross-partition
transaction: an event and its actions are written in steps that any redelivery can finish (the
event entity says ``complete`` once its actions are linked), so a crash between steps loses
nothing.

Cost: point reads for ids and keys; ``claim()`` without an id, ``next_due()`` and listing scan the
``action`` partition server-side with an OData filter on ``status`` (O(actions ever recorded)
read by the service, only the non-terminal ones returned); ``stats()`` reads every status. In
Azure the queue trigger always claims by id, so only local loops and the ops API pay the scans.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from shared.domain.actions import FAILED, QUEUED, RUNNING, SKIPPED, SUCCEEDED, WAITING, Action, PlannedAction
from shared.domain.events import ModelEvent, event_to_payload
from shared.domain.params import ActionParams
from shared.ledger import table_codec as codec
from shared.ledger.base import ACCEPTED, IGNORED, IntakeResult

PK_EVENT = "event"
PK_ACTION = "action"
PK_WATERMARK = "watermark"
EVENT_ROWS = "RowKey ge 'evt_' and RowKey lt 'evt`'"  # '`' follows '_': the evt_ rows only
ACTION_ROWS = "RowKey ge 'act_' and RowKey lt 'act`'"
ACTIVE = f"({ACTION_ROWS}) and (status eq '{QUEUED}' or status eq '{WAITING}' or status eq '{RUNNING}')"
RACE_RETRIES = 20


def now_utc() -> datetime:
    return datetime.now(UTC)


class LedgerContention(RuntimeError):
    """An entity kept changing under us; the caller (a queue delivery) will be retried."""


class TableLedger:
    """Ledger over one Azure Table (or Azurite). Safe across threads and processes."""

    def __init__(self, table_client: Any, *, clock: Callable[[], datetime] = now_utc) -> None:
        from azure.core.exceptions import ResourceExistsError

        self._table = table_client
        self._clock = clock
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
        text = "PartitionKey eq @pk" + (
            f" and ( {where} )" if where else ""
        )  # spaces: the SDK splits on them to find @params
        return iter(self._table.query_entities(text, parameters={"pk": pk, **(params or {})}, select=select))

    def _mutate(self, pk: str, rk: str, change: Callable[[Any], dict[str, Any] | None]) -> dict[str, Any] | None:
        """Read-modify-write under the entity's ETag; ``change`` returns the whole new entity, or
        None to leave it as is. Lost races are re-read and re-decided."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        for _ in range(RACE_RETRIES):
            entity = self._get(pk, rk)
            if entity is None:
                return None
            new = change(entity)
            if new is None:
                return None
            try:
                self._table.update_entity(
                    new,
                    mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"],
                    match_condition=MatchConditions.IfNotModified,
                )
                return new
            except (ResourceModifiedError, ResourceNotFoundError):
                continue
        raise LedgerContention(f"{pk}/{rk} changed {RACE_RETRIES} times while being updated; try again")

    def _mutate_action(self, action_id: str, change: Callable[[Action], Action | None]) -> Action | None:
        def on_entity(entity: Any) -> dict[str, Any] | None:
            new = change(_action(entity))
            return _action_entity(new) if new is not None else None

        written = self._mutate(PK_ACTION, action_id, on_entity)
        return _action(written) if written is not None else None

    def _transaction(self, entities: list[dict[str, Any]]) -> bool:
        """Create entities of one partition atomically; False if one of them already exists."""
        from azure.data.tables import TableTransactionError

        try:
            self._table.submit_transaction([("create", e) for e in entities])
            return True
        except TableTransactionError as exc:
            if exc.status_code == 409 or str(getattr(exc, "error_code", "")) == "EntityAlreadyExists":
                return False
            raise

    def _log(self, action_id: str, worker: str | None, message: str) -> None:
        now = self._clock()
        self._table.create_entity(
            codec.drop_none(
                {
                    "PartitionKey": f"log_{action_id}",
                    "RowKey": codec.log_row_key(now),
                    "at": codec.iso(now),
                    "worker": worker,
                    "message": codec.truncate(message),
                }
            )
        )

    def _status(self, action_id: str) -> str | None:
        entity = self._get(PK_ACTION, action_id)
        return str(entity["status"]) if entity else None

    # -- intake ---------------------------------------------------------------------------
    def record_event(
        self, event: ModelEvent, plan: list[PlannedAction], *, reason: str | None, max_attempts: int
    ) -> IntakeResult:
        now = self._clock()
        event_id = codec.newest_first_id("evt", now)
        dedupe_rk = "dedupe_" + codec.key_hash(event.dedupe_key)
        status = ACCEPTED if plan else IGNORED
        entity = {
            "PartitionKey": PK_EVENT,
            "RowKey": event_id,
            "dedupe_key": codec.truncate(event.dedupe_key),
            "source": event.source,
            "kind": event.kind,
            "source_type": event.source_type,
            "model_name": event.model_name,
            "model_version": event.model_version,
            "status": status,
            "reason": None if plan else codec.truncate(reason),
            "received_at": codec.iso(now),
            "deliveries": 1,
            "complete": False,
            **codec.pack_json("summary", event.summary(), max_chunks=2),
            **_payload(event),
        }
        claim = {"PartitionKey": PK_EVENT, "RowKey": dedupe_rk, "event_id": event_id}
        first = self._transaction([claim, codec.drop_none(entity)])
        if not first:
            found = self._get(PK_EVENT, dedupe_rk)
            if found is None:  # cannot happen: claims are never deleted
                raise LedgerContention(f"dedupe claim {dedupe_rk} vanished")
            event_id = str(found["event_id"])
        stored = None if first else self._get(PK_EVENT, event_id)
        runnable: list[str] = []
        if stored is not None and stored.get("complete"):
            ids = json.loads(stored["action_ids"])
        else:
            # the first recording, or one that crashed (or is still running) before linking its
            # actions: finishing it is idempotent, action keys resolve to the same ids
            ids, runnable = self._insert_plan(event_id, plan, max_attempts)
        if not first:
            # the first writer may have died before dispatching, or its queue send failed (the
            # sender then redelivers): dispatch again what has never started. A second message
            # for an action is harmless, the lease decides who runs it.
            runnable = [i for i in ids if i in runnable or self._never_started(i)]
        if stored is None or not stored.get("complete"):
            self._table.update_entity(
                {"PartitionKey": PK_EVENT, "RowKey": event_id, "action_ids": json.dumps(ids), "complete": True}
            )  # MERGE: leaves deliveries (counted by duplicates concurrently) alone
        if first:
            return IntakeResult(event_id, status, reason=None if plan else reason, action_ids=ids, dispatch=runnable)
        bumped = self._mutate(PK_EVENT, event_id, lambda e: {**e, "deliveries": int(e.get("deliveries", 1)) + 1})
        current = bumped or {}
        return IntakeResult(
            event_id,
            str(current.get("status", status)),
            duplicate=True,
            reason=current.get("reason"),
            action_ids=ids,
            dispatch=runnable,
        )

    def _insert_plan(self, event_id: str, plan: list[PlannedAction], max_attempts: int) -> tuple[list[str], list[str]]:
        ids: list[str] = []
        runnable: list[str] = []
        for step in plan:
            now = self._clock()
            after = ids[step.after_index] if step.after_index is not None else None
            action = Action(
                id=codec.newest_first_id("act", now),
                key=step.key,
                kind=step.kind,
                target=step.target,
                model_name=step.model_name,
                model_version=step.model_version,
                event_id=event_id,
                status=QUEUED,
                params=step.params,
                outputs={},
                max_attempts=max_attempts,
                after=after,
                rule=step.rule,
                created_at=now,
            )
            key_rk = "key_" + codec.key_hash(step.key)
            key_claim = {"PartitionKey": PK_ACTION, "RowKey": key_rk, "action_id": action.id, "key": step.key}
            if not self._transaction([key_claim, _action_entity(action)]):
                found = self._get(PK_ACTION, key_rk)
                if found is None:
                    raise LedgerContention(f"action key claim {key_rk} vanished")
                ids.append(str(found["action_id"]))
                continue
            self._log(action.id, None, f"planned by {step.rule or 'operator'} for event {event_id}")
            if after is None or self._status(after) == SUCCEEDED:
                runnable.append(action.id)
            ids.append(action.id)
        return ids, runnable

    def _never_started(self, action_id: str) -> bool:
        action = self.get_action(action_id)
        if action is None or action.status != QUEUED or action.attempts:
            return False
        return action.after is None or self._status(action.after) == SUCCEEDED

    def add_actions(self, event_id: str, plan: list[PlannedAction], *, max_attempts: int) -> list[str]:
        ids, runnable = self._insert_plan(event_id, plan, max_attempts)

        def link(entity: Any) -> dict[str, Any]:
            linked = json.loads(entity.get("action_ids") or "[]")
            new = {**entity, "action_ids": json.dumps(linked + [i for i in ids if i not in linked])}
            if plan:
                new["status"] = ACCEPTED
                new.pop("reason", None)
            return new

        self._mutate(PK_EVENT, event_id, link)
        return runnable

    def requeue(self, action_ids: list[str], *, include_succeeded: bool) -> list[str]:
        allowed = (FAILED, SKIPPED, SUCCEEDED) if include_succeeded else (FAILED, SKIPPED)
        done: list[str] = []
        for action_id in action_ids:
            before: list[str] = []
            reset = partial(_requeued, allowed=allowed, before=before)
            if self._mutate_action(action_id, reset) is not None:
                self._log(action_id, None, f"requeued by replay (was {before[0]})")
                done.append(action_id)
        return done

    def set_event_status(self, event_id: str, status: str, reason: str | None) -> None:
        def change(entity: Any) -> dict[str, Any]:
            return codec.drop_none({**entity, "status": status, "reason": codec.truncate(reason)})

        self._mutate(PK_EVENT, event_id, change)

    # -- reads ----------------------------------------------------------------------------
    def get_event(self, event_id: str) -> dict[str, Any] | None:
        entity = self._get(PK_EVENT, event_id) if event_id.startswith("evt_") else None
        if entity is None:
            return None
        event = _event_row(entity)
        event["actions"] = [a.to_dict() for a in self.list_actions(event_id=event_id, limit=1000)]
        return event

    def list_events(
        self, *, source: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        where, params = _filters({"source": source, "status": status})
        rows = self._query(PK_EVENT, EVENT_ROWS + where, params)
        return [_event_row(e) for e in _page(rows, limit, offset)]

    def event_payload(self, event_id: str) -> dict[str, Any] | None:
        entity = self._get(PK_EVENT, event_id) if event_id.startswith("evt_") else None
        return codec.unpack_json(entity, "payload") if entity else None

    def get_action(self, action_id: str) -> Action | None:
        entity = self._get(PK_ACTION, action_id) if action_id.startswith("act_") else None
        return _action(entity) if entity else None

    def find_action(self, key: str) -> Action | None:
        claim = self._get(PK_ACTION, "key_" + codec.key_hash(key))
        return self.get_action(str(claim["action_id"])) if claim else None

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
        wanted = {"model_name": model, "model_version": version, "kind": kind, "status": status}
        if event_id:
            entity = self._get(PK_EVENT, event_id) if event_id.startswith("evt_") else None
            linked = json.loads(entity.get("action_ids") or "[]") if entity else []
            actions = [a for a in (self.get_action(i) for i in linked) if a is not None]
            actions = [a for a in actions if all(v is None or getattr(a, k) == v for k, v in wanted.items())]
            actions.sort(key=lambda a: a.id)  # newest-first ids: the same order as a partition scan
            return actions[offset : offset + limit]
        where, params = _filters(wanted)
        return [_action(e) for e in _page(self._query(PK_ACTION, ACTION_ROWS + where, params), limit, offset)]

    def action_log(self, action_id: str) -> list[dict[str, Any]]:
        return [
            {"at": e["at"], "worker": e.get("worker"), "message": e["message"]} for e in self._query(f"log_{action_id}")
        ]

    # -- worker ---------------------------------------------------------------------------
    def claim(self, worker_id: str, lease_seconds: float, *, action_id: str | None = None) -> Action | None:
        now = self._clock()
        candidates = [action_id] if action_id else self._due(now)
        for candidate in candidates:
            claimed = self._claim_one(candidate, worker_id, lease_seconds, now)
            if claimed is not None:
                return claimed
        return None

    def _due(self, now: datetime) -> list[str]:
        active = [_action(e) for e in self._query(PK_ACTION, ACTIVE)]
        due = [a for a in active if _is_due(a, now)]
        due.sort(key=lambda a: (a.not_before is not None, a.not_before or now, a.created_at or now))
        return [a.id for a in due]

    def _claim_one(self, action_id: str, worker_id: str, lease_seconds: float, now: datetime) -> Action | None:
        previous: list[Action] = []

        def take(a: Action) -> Action | None:
            if not _is_due(a, now) or (a.after is not None and self._status(a.after) != SUCCEEDED):
                return None
            previous[:] = [a]
            if a.status == RUNNING and a.attempts >= a.max_attempts:
                # its lease expired on the last allowed attempt: every worker running it died or hung
                return replace(
                    a,
                    status=FAILED,
                    error=_crash_loop_error(a),
                    lease_owner=None,
                    lease_expires_at=None,
                    finished_at=now,
                )
            # a re-check of remote work (WAITING) is not a new attempt
            attempts = a.attempts + (0 if a.status == WAITING else 1)
            return replace(
                a,
                status=RUNNING,
                lease_owner=worker_id,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                attempts=attempts,
                started_at=a.started_at or now,
            )

        claimed = self._mutate_action(action_id, take) if action_id.startswith("act_") else None
        if claimed is None:
            return None
        if claimed.status == FAILED:
            self._log(action_id, None, f"failed: {claimed.error} (last owner {previous[0].lease_owner})")
            self._skip_dependents(action_id)
            return None
        if previous[0].status == RUNNING:
            self._log(action_id, worker_id, f"lease of {previous[0].lease_owner} expired; reclaimed")
        self._log(action_id, worker_id, f"claimed (attempt {claimed.attempts})")
        return claimed

    def renew(self, action_id: str, worker_id: str, lease_seconds: float) -> bool:
        expires = self._clock() + timedelta(seconds=lease_seconds)
        renewed = self._mutate_action(
            action_id, lambda a: replace(a, lease_expires_at=expires) if _owned(a, worker_id) else None
        )
        return renewed is not None

    def note(self, action_id: str, worker_id: str, message: str) -> None:
        self._log(action_id, worker_id, message)

    def complete(self, action_id: str, worker_id: str, outputs: dict[str, Any]) -> list[str]:
        now = self._clock()

        def succeed(a: Action) -> Action | None:
            if not _owned(a, worker_id):
                return None
            return replace(
                a,
                status=SUCCEEDED,
                outputs={**a.outputs, **outputs},
                error=None,
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                duration_ms=_duration(a, now),
            )

        if self._mutate_action(action_id, succeed) is None:
            return []
        self._log(action_id, worker_id, "succeeded")
        return [_action(e).id for e in self._dependents(action_id)]

    def wait(self, action_id: str, worker_id: str, outputs: dict[str, Any], recheck_at: datetime) -> bool:
        def park(a: Action) -> Action | None:
            if not _owned(a, worker_id):
                return None
            return replace(
                a,
                status=WAITING,
                outputs={**a.outputs, **outputs},
                lease_owner=None,
                lease_expires_at=None,
                not_before=recheck_at,
            )

        if self._mutate_action(action_id, park) is None:
            return False
        self._log(action_id, worker_id, f"waiting on remote work; re-check at {codec.iso(recheck_at)}")
        return True

    def fail(self, action_id: str, worker_id: str, error: str, *, retry_at: datetime | None) -> bool:
        now = self._clock()

        def record(a: Action) -> Action | None:
            if not _owned(a, worker_id):
                return None
            if retry_at is not None:
                return replace(
                    a, status=QUEUED, error=error, lease_owner=None, lease_expires_at=None, not_before=retry_at
                )
            return replace(
                a,
                status=FAILED,
                error=error,
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                duration_ms=_duration(a, now),
            )

        failed = self._mutate_action(action_id, record)
        if failed is None:
            return False
        if retry_at is not None:
            self._log(
                action_id, worker_id, f"attempt {failed.attempts} failed: {error}; retry at {codec.iso(retry_at)}"
            )
            return True
        self._log(action_id, worker_id, f"failed after {failed.attempts} attempt(s): {error}")
        self._skip_dependents(action_id)
        return True

    def _dependents(self, action_id: str) -> Iterator[Any]:
        return self._query(
            PK_ACTION,
            f"{ACTION_ROWS} and after eq @after and status eq @queued",
            {"after": action_id, "queued": QUEUED},
        )

    def _skip_dependents(self, action_id: str) -> None:
        for entity in list(self._dependents(action_id)):
            child = str(entity["RowKey"])
            skipped = self._mutate_action(child, partial(_skipped, upstream=action_id, now=self._clock()))
            if skipped is not None:
                self._log(child, None, f"skipped: {action_id} failed")
                self._skip_dependents(child)

    def next_due(self) -> datetime | None:
        now = self._clock()
        times = [
            (a.lease_expires_at if a.status == RUNNING else a.not_before) or now
            for a in (_action(e) for e in self._query(PK_ACTION, ACTIVE))
        ]
        return min(times) if times else None

    # -- misc -----------------------------------------------------------------------------
    def get_watermark(self, name: str) -> str | None:
        entity = self._get(PK_WATERMARK, codec.key_hash(name))
        return str(entity["value"]) if entity else None

    def set_watermark(self, name: str, value: str) -> None:
        from azure.data.tables import UpdateMode

        entity = {
            "PartitionKey": PK_WATERMARK,
            "RowKey": codec.key_hash(name),
            "name": name,
            "value": codec.truncate(value),
            "updated_at": codec.iso(self._clock()),
        }
        self._table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    def record_report(self, kind: str, report: dict[str, Any]) -> str:
        now = self._clock()
        prefix = "".join(c for c in kind[:8] if c.isalnum()) or "report"
        report_id = codec.newest_first_id(prefix, now)
        self._table.create_entity(
            {
                "PartitionKey": _report_partition(kind),
                "RowKey": report_id,
                "kind": kind,
                "created_at": codec.iso(now),
                **codec.pack_json("body", report, max_chunks=14),
            }
        )
        return report_id

    def list_reports(self, kind: str, limit: int = 20) -> list[dict[str, Any]]:
        rows = _page(self._query(_report_partition(kind)), limit, 0)
        return [{"id": e["RowKey"], "created_at": e["created_at"], **codec.unpack_json(e, "body", {})} for e in rows]

    def stats(self) -> dict[str, Any]:
        def count(pk: str, rows: str) -> dict[str, int]:
            out: dict[str, int] = {}
            for e in self._query(pk, rows, select=["status"]):
                out[e["status"]] = out.get(e["status"], 0) + 1
            return out

        return {
            "backend": "azure-tables",
            "table": getattr(self._table, "table_name", None),
            "events": count(PK_EVENT, EVENT_ROWS),
            "actions": count(PK_ACTION, ACTION_ROWS),
        }

    def close(self) -> None:
        self._table.close()


def _requeued(a: Action, *, allowed: tuple[str, ...], before: list[str]) -> Action | None:
    if a.status not in allowed:
        return None
    before[:] = [a.status]
    return replace(
        a,
        status=QUEUED,
        attempts=0,
        error=None,
        not_before=None,
        lease_owner=None,
        lease_expires_at=None,
        finished_at=None,
    )


def _skipped(a: Action, *, upstream: str, now: datetime) -> Action | None:
    if a.status != QUEUED:
        return None
    return replace(a, status=SKIPPED, error=f"not run: {upstream} (which it runs after) failed", finished_at=now)


def _filters(values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """OData equality filters with parameters (the SDK quotes and escapes them)."""
    used = {k: v for k, v in values.items() if v is not None}
    return "".join(f" and {k} eq @{k}" for k in used), used


def _page(rows: Iterator[Any], limit: int, offset: int) -> list[Any]:
    out: list[Any] = []
    for index, row in enumerate(rows):
        if index >= offset + limit:
            break
        if index >= offset:
            out.append(row)
    return out


def _report_partition(kind: str) -> str:
    return "report_" + codec.key_hash(kind)[:40]


def _payload(event: ModelEvent) -> dict[str, Any]:
    """The replayable event; a huge sender body (raw) is dropped rather than the event lost."""
    payload = event_to_payload(event)
    packed = codec.pack_json("payload", payload, max_chunks=12)
    if "_truncated" not in packed.get("payload", ""):
        return packed
    size = len(json.dumps(payload["raw"], default=str))
    payload["raw"] = {"_truncated": f"the sender's body ({size} characters) exceeds the Table Storage entity limit"}
    return codec.pack_json("payload", payload, max_chunks=12)


def _is_due(a: Action, now: datetime) -> bool:
    if a.status in (QUEUED, WAITING):
        return a.not_before is None or a.not_before <= now
    return a.status == RUNNING and a.lease_expires_at is not None and a.lease_expires_at <= now


def _owned(a: Action, worker_id: str) -> bool:
    return a.status == RUNNING and a.lease_owner == worker_id


def _duration(a: Action, now: datetime) -> int | None:
    return int((now - a.started_at).total_seconds() * 1000) if a.started_at else None


def _int(value: Any) -> int | None:
    """Int64 properties read back as EntityProperty."""
    if value is None:
        return None
    return int(getattr(value, "value", value))


def _event_row(e: Any) -> dict[str, Any]:
    return {
        "id": e["RowKey"],
        "dedupe_key": e.get("dedupe_key"),
        "source": e.get("source"),
        "kind": e.get("kind"),
        "source_type": e.get("source_type"),
        "model_name": e.get("model_name"),
        "model_version": e.get("model_version"),
        "status": e.get("status"),
        "reason": e.get("reason"),
        "received_at": e.get("received_at"),
        "deliveries": _int(e.get("deliveries")) or 1,
        "summary": codec.unpack_json(e, "summary", {}),
    }


def _action_entity(a: Action) -> dict[str, Any]:
    from azure.data.tables import EdmType, EntityProperty

    duration = EntityProperty(a.duration_ms, EdmType.INT64) if a.duration_ms is not None else None
    return codec.drop_none(
        {
            "PartitionKey": PK_ACTION,
            "RowKey": a.id,
            "key": a.key,
            "event_id": a.event_id,
            "kind": a.kind,
            "target": a.target,
            "model_name": a.model_name,
            "model_version": a.model_version,
            "rule": a.rule,
            "after": a.after,
            "status": a.status,
            "attempts": a.attempts,
            "max_attempts": a.max_attempts,
            "error": codec.truncate(a.error),
            "lease_owner": a.lease_owner,
            "lease_expires_at": codec.iso(a.lease_expires_at),
            "not_before": codec.iso(a.not_before),
            "created_at": codec.iso(a.created_at),
            "started_at": codec.iso(a.started_at),
            "finished_at": codec.iso(a.finished_at),
            "duration_ms": duration,
            **codec.pack_json("params", a.params.to_dict(), max_chunks=4),
            **codec.pack_json("outputs", a.outputs, max_chunks=8),
        }
    )


def _action(e: Any) -> Action:
    return Action(
        id=e["RowKey"],
        key=e["key"],
        kind=e["kind"],
        target=e["target"],
        model_name=e["model_name"],
        model_version=e["model_version"],
        event_id=e["event_id"],
        status=e["status"],
        params=ActionParams.from_dict(codec.unpack_json(e, "params", {})),
        outputs=codec.unpack_json(e, "outputs", {}),
        attempts=_int(e.get("attempts")) or 0,
        max_attempts=_int(e.get("max_attempts")) or 5,
        after=e.get("after"),
        rule=e.get("rule"),
        error=e.get("error"),
        lease_owner=e.get("lease_owner"),
        lease_expires_at=codec.parse_dt(e.get("lease_expires_at")),
        not_before=codec.parse_dt(e.get("not_before")),
        created_at=codec.parse_dt(e.get("created_at")),
        started_at=codec.parse_dt(e.get("started_at")),
        finished_at=codec.parse_dt(e.get("finished_at")),
        duration_ms=_int(e.get("duration_ms")),
    )


def _crash_loop_error(action: Action) -> str:
    return (
        f"the lease expired on attempt {action.attempts}, the last allowed: every worker running it"
        " died or hung (see the worker logs)"
    )
