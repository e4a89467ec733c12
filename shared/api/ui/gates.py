"""How the event timeline labels a gate: an approval's lane says how long it waited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def gate_label(action: dict[str, Any]) -> str:
    """A timeline lane's label; an approval's says how long it waited (so far)."""
    label = f"{action['kind']} \u2192 {action['target']}"
    outputs = action.get("outputs") or {}
    if action["kind"] != "approve" or not outputs.get("requested_at"):
        return label
    start = datetime.fromisoformat(outputs["requested_at"])
    end = datetime.fromisoformat(outputs["decided_at"]) if outputs.get("decided_at") else datetime.now(UTC)
    waited = max(0.0, (end - start).total_seconds())
    shown = (
        f"{waited:.0f} s" if waited < 120 else f"{waited / 60:.0f} min" if waited < 7200 else f"{waited / 3600:.1f} h"
    )
    return f"{label} (waited {shown})"
