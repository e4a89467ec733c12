"""An action's attempts, read back from its audit log (the lines shared/ledger/transitions.py writes)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.domain.clock import parse_dt

_CLAIMED = re.compile(r"^claimed \(attempt (\d+)\)$")
_RETRY = re.compile(r"^attempt \d+ failed: (.*); retry at (\S+)$", re.S)
_FAILED = re.compile(r"^failed after \d+ attempt\(s\): (.*)$", re.S)
_FAILED_OWNER = re.compile(r"^failed: (.*) \(last owner [^)]*\)$", re.S)
_WAITING = re.compile(r"^waiting on remote work; re-check at (\S+)$")


@dataclass
class Attempt:
    number: int
    worker: str
    started_at: datetime | None
    ended_at: datetime | None = None
    outcome: str = "running"  # running | succeeded | failed | retry | waiting | lease expired
    error: str | None = None
    retry_at: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def duration_ms(self) -> int | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return int((self.ended_at - self.started_at).total_seconds() * 1000)


def _instant(value: Any) -> datetime | None:
    return value if isinstance(value, datetime) or value is None else parse_dt(str(value))


def attempts_from_log(log: list[dict[str, Any]]) -> tuple[list[Attempt], list[str]]:
    """The attempts (one per claim) and the lines outside any attempt (planned, requeued, skipped)."""
    attempts: list[Attempt] = []
    other: list[str] = []
    current: Attempt | None = None
    for line in log:
        message, at = str(line.get("message", "")), _instant(line.get("at"))
        if claimed := _CLAIMED.match(message):
            if current is not None and current.outcome == "running":
                current.outcome, current.ended_at = "lease expired", at
            current = Attempt(int(claimed.group(1)), str(line.get("worker") or ""), at)
            attempts.append(current)
        elif current is None or message.startswith(("lease of ", "requeued by replay", "forced re-run", "skipped")):
            if message.startswith("lease of ") and current is not None:
                current.outcome, current.ended_at = "lease expired", at
                current = None
            other.append(message)
        elif message == "succeeded":
            current.outcome, current.ended_at = "succeeded", at
        elif retry := _RETRY.match(message):
            current.outcome, current.ended_at, current.error, current.retry_at = "retry", at, retry[1], retry[2]
        elif failed := _FAILED.match(message) or _FAILED_OWNER.match(message):
            current.outcome, current.ended_at, current.error = "failed", at, failed[1]
        elif waiting := _WAITING.match(message):
            current.outcome, current.ended_at, current.retry_at = "waiting", at, waiting[1]
        else:
            current.notes.append(message)
    return attempts, other
