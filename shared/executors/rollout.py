"""A rollout in steps, as the deploy executors of `local` and online targets share it: the phases a
`rollout:` block makes (mirror first, then each traffic step), the judgement of a phase from the new
version's own figures, and the record of each phase kept in the action's outputs.

A phase is applied, then held as a ledger wait (`Outcome.waiting`: no worker held, and the phase index
is in the outputs, so a restart resumes it), then judged. A passed judgement applies the next phase;
after the last one the new version serves alone. A failed one restores the old version's traffic and
the action fails with the figures; too few requests is its own verdict (`judge.too_few_requests`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any

from shared.config.rollout import Judge, Rollout
from shared.domain.outputs import DeployOutputs

PASSED = "passed"
FAILED = "failed"
HOLD = "held longer"  # too few requests: held again
NOT_JUDGED = "not judged"  # no `judge:` thresholds: the hold alone


@dataclass(frozen=True)
class Phase:
    kind: str  # "mirror" | "step"
    percent: int

    def label(self) -> str:
        return f"mirror {self.percent}%" if self.kind == "mirror" else f"{self.percent}% of traffic"


def phases(rollout: Rollout) -> list[Phase]:
    mirror = [Phase("mirror", rollout.mirror)] if rollout.mirror else []
    return [*mirror, *(Phase("step", step) for step in rollout.steps)]


@dataclass(frozen=True)
class Figures:
    """The new version's own figures over one hold."""

    requests: int
    errors: int  # 5xx and, unless the judge's count_4xx is false, 4xx answers
    latency_p99_ms: float | None
    errors_4xx: int = 0

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    def to_dict(self) -> dict[str, Any]:
        rate = self.error_rate
        return {**asdict(self), "error_rate": None if rate is None else round(rate, 4)}

    def describe(self) -> str:
        rate = "n/a" if self.error_rate is None else f"{self.error_rate:.1%}"
        p99 = "n/a" if self.latency_p99_ms is None else f"{self.latency_p99_ms:.0f} ms"
        return f"{self.requests} requests, {self.errors} errors (error rate {rate}), p99 latency {p99}"


def counted(
    requests: int, errors_5xx: int, errors_4xx: int, latency_p99_ms: float | None, thresholds: Judge | None
) -> Figures:
    """A hold's figures with the errors the judge counts: 5xx answers, and 4xx unless `count_4xx: false`
    (a model that raises answers 400 from `mlflow models serve` and 424 from an online endpoint)."""
    count_4xx = thresholds is None or thresholds.count_4xx
    errors = errors_5xx + (errors_4xx if count_4xx else 0)
    return Figures(requests, errors, latency_p99_ms, errors_4xx=errors_4xx)


@dataclass(frozen=True)
class Verdict:
    decision: str  # PASSED | FAILED | HOLD | NOT_JUDGED
    reasons: tuple[str, ...] = ()


def judge(figures: Figures, thresholds: Judge | None, *, extra_holds: int) -> Verdict:
    """The verdict on one hold; ``extra_holds``: how many times this phase was already held again."""
    if thresholds is None:
        return Verdict(NOT_JUDGED)
    if figures.requests < thresholds.min_requests:
        why = f"{figures.requests} requests, fewer than min_requests={thresholds.min_requests}"
        if thresholds.too_few_requests == "pass":
            return Verdict(PASSED, (f"{why}: passed (too_few_requests: pass)",))
        if extra_holds < thresholds.max_extra_holds:
            return Verdict(
                HOLD, (f"{why}: held again ({extra_holds + 1} of max_extra_holds={thresholds.max_extra_holds})",)
            )
        return Verdict(FAILED, (f"{why} after {extra_holds} extra holds: too little traffic to judge",))
    reasons = []
    rate = figures.error_rate or 0.0
    if thresholds.max_error_rate is not None and rate > thresholds.max_error_rate:
        reasons.append(f"error rate {rate:.1%} > max_error_rate {thresholds.max_error_rate:.1%}")
    p99 = figures.latency_p99_ms
    if thresholds.max_latency_p99_ms is not None and p99 is not None and p99 > thresholds.max_latency_p99_ms:
        reasons.append(f"p99 latency {p99:.0f} ms > max_latency_p99_ms {thresholds.max_latency_p99_ms:.0f}")
    return Verdict(FAILED, tuple(reasons)) if reasons else Verdict(PASSED)


def in_progress(out: DeployOutputs, rollout: Rollout | None, attempts: int) -> bool:
    """Whether the recorded outputs are a rollout to resume: between its phases, or failed by this very
    attempt (it fails now); a finished rollout, or a replay after a failed one, deploys afresh."""
    if rollout is None or out.rollout_step is None or out.rollout_step >= len(phases(rollout)):
        return False
    return not out.rollout_failed or out.rollout_attempt == attempts


def began(out: DeployOutputs, rollout_from: list[str]) -> DeployOutputs:
    """Outputs for a rollout starting afresh (what an earlier one recorded is cleared)."""
    return replace(out, rollout_from=rollout_from, rollout=[], rollout_failed="", rollout_attempt=0)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def started(
    out: DeployOutputs,
    step: int,
    phase: Phase,
    *,
    window: str,
    traffic: dict[str, int],
    mirror: dict[str, int] | None,
    hold_s: float,
) -> DeployOutputs:
    """The outputs once phase ``step`` is applied: its hold begins now."""
    entry = {
        "step": step,
        "phase": phase.label(),
        "traffic": traffic,
        "mirror": mirror,
        "started_at": now_iso(),
        "hold_s": hold_s,
    }
    history = [e for e in (out.rollout or []) if e.get("step") != step]
    return replace(
        out,
        rollout_step=step,
        rollout_window=window,
        rollout_since=time.time(),
        rollout_extra_holds=0,
        rollout=[*history, entry],
    )


def judged(out: DeployOutputs, figures: Figures, verdict: Verdict) -> DeployOutputs:
    """The outputs with the judgement of the phase under way written into its entry."""
    history = [dict(e) for e in (out.rollout or [])]
    if history:
        history[-1].update(
            judged_at=now_iso(), figures=figures.to_dict(), verdict=verdict.decision, reasons=list(verdict.reasons)
        )
    extra = (out.rollout_extra_holds or 0) + (1 if verdict.decision == HOLD else 0)
    return replace(out, rollout=history, rollout_extra_holds=extra)


def hold_left(out: DeployOutputs, hold_s: float) -> float:
    """Seconds of the phase's hold still to run (a re-check that came early waits the rest)."""
    since = out.rollout_since or 0.0
    holds = 1 + (out.rollout_extra_holds or 0)
    return max(0.0, since + hold_s * holds - time.time())


def rollout_note(outputs: object) -> str:
    """Where a deploy's rollout stands, for a status line: `; rollout: 50% of traffic (step 2), holding`."""
    if not isinstance(outputs, DeployOutputs) or not outputs.rollout or outputs.rollout_step is None:
        return ""
    entry = outputs.rollout[-1]
    if outputs.rollout_failed:
        return f"; rollout judged failed at {entry.get('phase')}, traffic restored"
    return f"; rollout: {entry.get('phase')} (step {int(outputs.rollout_step) + 1}), holding"
