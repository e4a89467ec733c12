"""The ledger port: what the rest of the app asks of the state (SQLite or Azure Table Storage).

It is implemented once, by shared/ledger/core.py, over each backend's storage port
(shared/ledger/store.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.domain.actions import Action, PlannedAction
from shared.domain.events import ModelEvent
from shared.domain.outputs import Outputs

if TYPE_CHECKING:
    from shared.ledger.pruning import OldRecords

ACCEPTED = "accepted"
IGNORED = "ignored"
# the answers a delivery can get (besides accepted and ignored)
DUPLICATE = "duplicate"
REFUSED = "refused"  # verified sender, unusable body (400): recorded with the reason, no event


@dataclass
class IntakeResult:
    """What recording an event did. ``dispatch`` lists new actions that can run now; of those,
    ``redelivery`` are the ones a duplicate dispatches again because they never started (the
    first writer may have died before dispatching them)."""

    event_id: str
    status: str  # accepted | ignored
    duplicate: bool = False
    reason: str | None = None
    action_ids: list[str] = field(default_factory=list)
    dispatch: list[str] = field(default_factory=list)
    redelivery: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"event_id": self.event_id, "status": self.status, "action_ids": self.action_ids}
        if self.duplicate:
            out["duplicate"] = True
        if self.status == IGNORED:
            out["ignored"] = True
        if self.reason:
            out["reason"] = self.reason
        return out


class Ledger(Protocol):
    """Durable record of events, actions and their attempts. All methods are thread-safe."""

    def record_event(
        self, event: ModelEvent, plan: list[PlannedAction], *, reason: str | None, max_attempts: int
    ) -> IntakeResult:
        """Persist the event and its planned actions in one idempotent step.

        Keyed by ``event.dedupe_key`` (a redelivery returns the first recording with
        duplicate=True) and by each action's key (an action planned before is linked, not
        duplicated). An empty plan records the event as ignored with ``reason``.
        """
        ...

    async def record_event_async(
        self, event: ModelEvent, plan: list[PlannedAction], *, reason: str | None, max_attempts: int
    ) -> IntakeResult:
        """``record_event`` awaited on an event loop: on a ``group_commit`` store the intake is
        committed by its writer thread together with the intakes waiting beside it."""
        ...

    @property
    def group_commit(self) -> bool:
        """True when intakes are group-committed by a writer thread of the store (SQLite)."""
        ...

    def add_actions(self, event_id: str, plan: list[PlannedAction], *, max_attempts: int) -> list[str]:
        """Plan more actions for a recorded event (replay); returns ids newly runnable."""
        ...

    def requeue(self, action_ids: list[str], *, include_succeeded: bool) -> list[str]:
        """Make failed/skipped (and, if asked, succeeded) actions runnable again."""
        ...

    def set_event_status(self, event_id: str, status: str, reason: str | None) -> None:
        """Record what became of an event after the fact (a resolved run that matched no rule)."""
        ...

    def record_refusal(self, source: str, delivery_id: str | None, reason: str) -> None:
        """Record a delivery refused after its sender was verified (no event; nothing else changes)."""
        ...

    def deliveries(self, *, delivery_id: str | None = None, event_id: str | None = None) -> list[dict[str, Any]]:
        """The deliveries with this sender id, or of this event, oldest first."""
        ...

    def get_event(self, event_id: str) -> dict[str, Any] | None:
        """The event with its actions and ``delivery_log`` (every delivery of it and its answer)."""
        ...

    def list_events(
        self,
        *,
        source: str | None = None,
        status: str | None = None,
        delivery_id: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        """Newest first; ``delivery_id``: only the events a delivery with that sender id made."""
        ...

    def event_payload(self, event_id: str) -> dict[str, Any] | None:
        """The event as normalized (for replay)."""
        ...

    def get_action(self, action_id: str) -> Action | None: ...

    def find_action(self, key: str) -> Action | None: ...

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
    ) -> list[Action]: ...

    def action_log(self, action_id: str) -> list[dict[str, Any]]: ...

    def claim(self, worker_id: str, lease_seconds: float, *, action_id: str | None = None) -> Action | None:
        """Lease one runnable action (or the given one, if runnable); None if there is none."""
        ...

    def renew(self, action_id: str, worker_id: str, lease_seconds: float) -> bool: ...

    def note(self, action_id: str, worker_id: str, message: str) -> None:
        """Append a progress line to the action's audit log."""
        ...

    def complete(self, action_id: str, worker_id: str, outputs: Outputs) -> list[str]:
        """Mark succeeded; returns the ids of actions that were waiting on it and can run now."""
        ...

    def wait(self, action_id: str, worker_id: str, outputs: Outputs, recheck_at: datetime) -> bool:
        """Remote work started: keep outputs, release the lease, re-check at ``recheck_at``."""
        ...

    def fail(self, action_id: str, worker_id: str, error: str, *, retry_at: datetime | None) -> bool:
        """Record a failed attempt: retry at ``retry_at``, or fail for good (and skip dependents)."""
        ...

    def decide(self, action_id: str, decision: Outputs, line: str) -> Action | None:
        """Record a person's decision on a waiting action (who, when, comment: ``decision``, the
        action's own outputs), logged as ``line``, and make it due now. None when the action does
        not wait or was decided already (the first decision stands)."""
        ...

    def wake(self, action_id: str, line: str) -> bool:
        """Make a waiting action due now (a hint that what it waits for may have happened)."""
        ...

    def supersede(self, action_id: str, worker_id: str, reason: str) -> bool:
        """A deploy no longer desired ends `superseded` (switching nothing); its dependents are skipped."""
        ...

    def next_due(self) -> datetime | None:
        """When the earliest queued/waiting action becomes runnable (for idle workers)."""
        ...

    def get_watermark(self, name: str) -> str | None: ...

    def set_watermark(self, name: str, value: str) -> None: ...

    def swap_watermark(self, name: str, expected: str | None, value: str) -> bool:
        """Compare-and-set of a named register: write ``value`` if it still holds ``expected`` (None: absent)."""
        ...

    def record_report(self, kind: str, report: dict[str, Any]) -> str:
        """Keep a report (cleanup, poller) in the audit trail; returns its id."""
        ...

    def list_reports(self, kind: str, limit: int = 20) -> list[dict[str, Any]]: ...

    def stats(self) -> dict[str, Any]: ...

    def old_records(self, cutoff: datetime) -> OldRecords:
        """What retention chooses from: events received before ``cutoff`` with their actions."""
        ...

    def prune(self, event_ids: list[str], action_ids: list[str], *, refused_before: datetime) -> None:
        """Remove these events and actions (and refused deliveries before ``refused_before``)."""
        ...

    def close(self) -> None: ...
