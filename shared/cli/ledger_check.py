"""Read commands refuse a state dir that holds no ledger (and create nothing there)."""

from __future__ import annotations

from pathlib import Path

from shared.errors import ModelOpsError
from shared.settings import Settings


class MissingLedger(ModelOpsError):
    """A read command pointed at a state dir that holds no ledger."""


def require_ledger(settings: Settings) -> None:
    """Refuse (and create nothing) when the local state dir has no ledger to read."""
    if settings.state_backend != "sqlite":
        return
    ledger = Path(settings.state_dir) / "ledger.db"
    if ledger.exists():
        return
    raise MissingLedger(
        f"no ledger at {ledger.resolve()}: nothing has run with this state dir. Point at the state dir "
        "`modelops serve` (or `demo`, `deploy`...) used with --state-dir DIR or MODELOPS_STATE_DIR=DIR "
        f"(now: {settings.state_dir})"
    )
