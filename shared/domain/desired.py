"""Desired and actual serving state, and how they compare (``sync``), as frozen data.

A rule that listens to an alias (or a stage) and deploys declares, for every model its globs match
in its source, that the target serves the version holding that alias now. Argo CD keeps two answers
apart, sync and health; here they fold into one word per (target, source, model) line, with a reason:

- ``in-sync``: the target serves the desired version;
- ``progressing``: a deploy of the desired version is queued, running or waiting;
- ``out-of-sync``: it serves something else (or nothing) and nothing is under way to change that;
- ``degraded``: the target does not serve what the ledger last deployed (a dead server, traffic moved
  by hand);
- ``pinned``: an operator's rollback holds it; the next move of the alias releases the pin.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

IN_SYNC = "in-sync"
PROGRESSING = "progressing"
OUT_OF_SYNC = "out-of-sync"
DEGRADED = "degraded"
PINNED = "pinned"
SYNCS = (IN_SYNC, PROGRESSING, OUT_OF_SYNC, DEGRADED, PINNED)

# what a target reader reports of a line
SERVING = "serving"  # up, and answering
DOWN = "down"  # recorded as serving, but the server is dead or unhealthy
NOTHING = "none"  # the target serves no version of this model
UNKNOWN = "unknown"  # the target could not be read


@dataclass(frozen=True)
class Heads:
    """A model's alias holders and the newest version in each stage (as the registry spells it)."""

    aliases: dict[str, str] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)

    def stage(self, stage: str) -> str | None:
        """The stage's holder, the name compared as rules compare it: regardless of case."""
        return next((v for name, v in self.stages.items() if name.lower() == stage.lower()), None)


@dataclass(frozen=True)
class Desired:
    version: str | None  # None: the alias names no version now
    rule: str
    alias: str | None = None
    stage: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None or k == "version"}


@dataclass(frozen=True)
class Actual:
    """What the target itself says it serves, in source terms where the ledger can map it back."""

    version: str | None
    state: str  # SERVING | DOWN | NOTHING | UNKNOWN
    detail: str = ""  # what was read: a URL and pid, a deployment and its traffic
    deployed_by: str | None = None  # the action that made it serve, when the ledger knows it

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, "") or k in ("version", "state")}


@dataclass(frozen=True)
class Pin:
    """An operator's rollback holds a line at ``version`` while the alias still names ``holder``."""

    version: str
    holder: str | None
    action_id: str
    change: str  # the alias move current when it was pinned: a later move releases the pin


@dataclass(frozen=True)
class LineStatus:
    target: str
    source: str
    model: str
    desired: Desired
    actual: Actual
    sync: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "source": self.source,
            "model": self.model,
            "desired": self.desired.to_dict(),
            "actual": self.actual.to_dict(),
            "sync": self.sync,
            "reason": self.reason,
        }


def judge(
    desired: Desired,
    actual: Actual,
    *,
    last_deployed: str | None,
    in_flight: str | None,
    pin: Pin | None,
    undeployed_at: str | None = None,
) -> tuple[str, str]:
    """(sync, reason) of one line: ``last_deployed`` is the version the ledger last switched it to,
    ``in_flight`` the version of a deploy under way, ``pin`` a rollback holding the line,
    ``undeployed_at`` when `modelops undeploy` stopped the target after that switch."""
    want = desired.version
    holder = f"alias {desired.alias}" if desired.alias else f"stage {desired.stage}"
    if pin is not None and pin.holder == want:
        return PINNED, (
            f"rollback {pin.action_id} holds v{pin.version} while {holder} names v{want}; the next move releases it"
        )
    if want is not None and in_flight == want:
        return PROGRESSING, f"a deploy of v{want} is under way"
    if actual.state == UNKNOWN:
        return DEGRADED, f"the target could not be read: {actual.detail}"
    if undeployed_at is not None and actual.version is None:
        # an operator's stop is not drift to heal: reported, and the next move deploys again
        named = f"v{want}" if want else "no version"
        return OUT_OF_SYNC, (
            f"stopped by `modelops undeploy` at {undeployed_at}; {holder} names {named}, the next move deploys again"
        )
    if last_deployed is not None and actual.state == DOWN:
        return DEGRADED, f"v{actual.version or last_deployed} is recorded as serving but {actual.detail or 'is down'}"
    if last_deployed is not None and actual.version != last_deployed:
        now = f"v{actual.version}" if actual.version else "nothing"
        return DEGRADED, f"the reactor last deployed v{last_deployed} but the target serves {now} (changed by hand?)"
    if want is None:
        return OUT_OF_SYNC if actual.version else IN_SYNC, f"{holder} names no version"
    if actual.version == want and actual.state == SERVING:
        return IN_SYNC, f"serves v{want}, the holder of {holder}"
    now = f"v{actual.version}" if actual.version else "nothing"
    return OUT_OF_SYNC, f"{holder} names v{want} but the target serves {now}"
