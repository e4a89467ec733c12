"""Serving lines: deploys and rollbacks of one (target, source, model) line run one at a time.

The line's holder is a compare-and-set register in the ledger (``line:<target>|<source>|<model>``,
the id of the action that took it last). A claim takes the line when its holder is not running
under a live lease; otherwise the action is deferred (not claimable) for ``LINE_RECHECK`` (at most
until that lease would expire), so the running change finishes first and the later one then
re-reads what is desired (shared/service/desired.py) before it switches anything. The re-check is
short because a holder renews its lease (300 s by default) while it runs: waiting for the lease
would start the next deploy up to that long after the holder finished. On SQLite the claim's
transaction makes this atomic; on Table Storage the register's ETag does.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial

from shared.domain.actions import RUNNING, Action, line_of
from shared.ledger import transitions
from shared.ledger.store import LedgerStore, Stored
from shared.ledger.transitions import Transition

Apply = Callable[[Stored | None, Callable[[Action], Transition | None]], Transition | None]
LINE_RECHECK = timedelta(seconds=10)  # a deferred deploy tries the line again this often


def hold_line(store: LedgerStore, stored: Stored, now: datetime, apply: Apply) -> bool:
    """Whether the action may be claimed now as far as its line goes (taking the line if so)."""
    line = line_of(stored.action)
    if line is None or transitions.crash_looped(stored.action, now):
        return True
    register = f"line:{line}"
    holder = store.get_watermark(register)
    if holder == stored.action.id:
        return True
    if holder:
        held = store.load(holder)
        until = held.action.lease_expires_at if held is not None else None
        if held is not None and held.action.status == RUNNING and until is not None and until > now:
            apply(stored, partial(transitions.defer, until=min(until, now + LINE_RECHECK), holder=holder))
            return False
    return store.swap_watermark(register, holder, stored.action.id, now)
