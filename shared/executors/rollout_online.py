"""An online endpoint rolled out in steps (shared/executors/rollout.py says how a rollout goes): each
phase is one traffic update of the endpoint (live `traffic` and, managed endpoints only, `mirror_traffic`
to the new deployment), retried while Azure answers 409 "an operation is ongoing"; each hold is judged
on the new deployment's own Azure Monitor metrics (shared/adapters/monitor_metrics.py) since the phase
began. A failed judgement gives the old deployments their traffic back and clears the mirror; the new
deployment stays, at 0%, for a look.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from shared.adapters.azure_errors import is_ongoing_operation, retry_after_of
from shared.adapters.monitor_metrics import OnlineMetricsClient
from shared.config.rollout import OnlineRollout
from shared.domain.outputs import DeployOutputs
from shared.errors import PermanentError, RetryableError
from shared.executors.base import Outcome
from shared.executors.rollout import (
    FAILED,
    HOLD,
    Figures,
    began,
    counted,
    hold_left,
    judge,
    judged,
    phases,
    started,
)

if TYPE_CHECKING:
    from shared.executors.deploy_online import _Run


class OnlineRolloutSteps:
    def __init__(self, run: _Run, rollout: OnlineRollout, metrics_credential: object | None = None) -> None:
        self.run, self.rollout, self.phases = run, rollout, phases(rollout)
        self.endpoint = run.cfg.endpoint
        self._credential = metrics_credential

    def begin(self, out: DeployOutputs) -> Outcome | None:
        """Start at the first phase; None when there is nothing to roll out from (the switch is at once)."""
        endpoint = self.run._endpoint()
        old = {name: share for name, share in endpoint.traffic.items() if name != self.run.name}
        if not old:
            return None
        return self._apply(0, began(out, sorted(old)), old)

    def resume(self, out: DeployOutputs) -> Outcome:
        run = self.run
        step = out.rollout_step or 0
        if out.rollout_failed:
            raise PermanentError(out.rollout_failed)
        run.ctx.ensure_desired()  # overtaken during the hold: end superseded, touching nothing
        endpoint = run._endpoint()
        expected = (out.rollout or [{}])[-1]
        if endpoint.traffic != expected.get("traffic") or endpoint.mirror != (expected.get("mirror") or {}):
            raise PermanentError(
                f"rollout of {run.name} on {self.endpoint} stopped at {self.phases[step].label()}: the endpoint's "
                f"traffic was changed meanwhile (now {endpoint.traffic}, mirror {endpoint.mirror}): a rollback "
                "or a change by hand"
            )
        left = hold_left(out, self.rollout.hold_seconds)
        if left > 0:
            return Outcome.waiting(left, out)
        figures = self._figures(endpoint.location, out.rollout_window or "")
        verdict = judge(figures, self.rollout.judge, extra_holds=out.rollout_extra_holds or 0)
        out = judged(out, figures, verdict)
        label = self.phases[step].label()
        run.ctx.progress(f"{label} judged {verdict.decision}: {figures.describe()} {'; '.join(verdict.reasons)}")
        old = self._old(out)
        if verdict.decision == HOLD:
            return Outcome.waiting(self.rollout.hold_seconds, out)
        if verdict.decision == FAILED:
            return self._restore(
                out, old, f"{label} judged failed: {'; '.join(verdict.reasons)} ({figures.describe()})"
            )
        if step + 1 < len(self.phases):
            return self._apply(step + 1, out, old)
        run.serving_before = list(out.rollout_from or [])
        deleted = run.retire_old()
        done = replace(out, phase="done", deleted=deleted, kept=run.out.get("kept"), rollout_step=len(self.phases))
        return Outcome.done(done)

    def _old(self, out: DeployOutputs) -> dict[str, int]:
        """The old deployments' shares before the rollout began (the first phase's record)."""
        first = (out.rollout or [{}])[0]
        before = first.get("before") or {}
        return {str(k): int(v) for k, v in before.items()} or {name: 100 for name in (out.rollout_from or [])[:1]}

    def _apply(self, step: int, out: DeployOutputs, old: dict[str, int]) -> Outcome:
        phase = self.phases[step]
        if phase.kind == "mirror":
            traffic, mirror = dict(old), {self.run.name: phase.percent}
        else:
            traffic, mirror = _split(old, self.run.name, phase.percent), {}
        self.run.ctx.ensure_desired()  # a version no longer desired moves no traffic (it ends superseded)
        self._route(traffic, mirror)
        hold = self.rollout.hold_seconds
        window = datetime.now(UTC).isoformat()
        out = started(out, step, phase, window=window, traffic=traffic, mirror=mirror or None, hold_s=hold)
        if step == 0:  # what a failed judgement gives the traffic back to
            out = replace(out, rollout=[{**entry, "before": old} for entry in out.rollout or []])
        self.run.ctx.progress(f"{self.endpoint}: {phase.label()} to {self.run.name}; holding {hold:g}s")
        return Outcome.waiting(hold, replace(out, traffic=traffic, phase=f"rollout: {phase.label()}"))

    def _restore(self, out: DeployOutputs, old: dict[str, int], why: str) -> Outcome:
        self._route(old, {})
        message = (
            f"rollout of {self.run.name} on {self.endpoint} rolled back: {why}. Traffic is back on {old}, mirror "
            f"cleared; {self.run.name} stays at 0% for a look (az ml online-deployment get-logs -e {self.endpoint} "
            f"-n {self.run.name})"
        )
        self.run.ctx.progress(message)
        failed = replace(out, rollout_failed=message, rollout_attempt=self.run.ctx.action.attempts, traffic=old)
        return Outcome.waiting(0.0, failed)

    def _route(self, traffic: dict[str, int], mirror: dict[str, int]) -> None:
        """One traffic update, tried again while another operation on the endpoint is running (409)."""
        from azure.core.exceptions import HttpResponseError

        run = self.run
        while True:
            try:
                run._await_poller(run.aml.begin_route_traffic(self.endpoint, traffic, mirror), "traffic")
                return
            except HttpResponseError as exc:
                message = str(getattr(getattr(exc, "error", None), "message", None) or exc)
                if not is_ongoing_operation(exc.status_code or 0, message):
                    raise
                pause = min(retry_after_of(exc) or run.cfg.poll_interval_s, run.cfg.poll_interval_s)
                if time.monotonic() + pause > run.until:
                    raise RetryableError(f"{self.endpoint}: another operation is still running; trying again") from exc
                run.ctx.progress(
                    f"{self.endpoint}: busy with another operation (409); traffic update again in {pause:g}s"
                )
                time.sleep(pause)

    def _figures(self, region: str, since: str) -> Figures:
        start = datetime.fromisoformat(since) if since else datetime.now(UTC)
        client = OnlineMetricsClient(self.run.cfg, region, self._credential, self.run.ctx.settings.azure_http)
        try:
            raw = client.figures(self.endpoint, self.run.name, start, datetime.now(UTC))
        finally:
            client.close()
        return counted(raw.requests, raw.errors_5xx, raw.errors_4xx, raw.latency_p99_ms, self.rollout.judge)


def _split(old: dict[str, int], new: str, percent: int) -> dict[str, int]:
    """``percent`` to the new deployment, the rest shared by the old ones as they shared it before."""
    rest = 100 - percent
    total = sum(old.values()) or 1
    shares = {name: share * rest // total for name, share in old.items()}
    if shares:
        biggest = max(shares, key=lambda name: old[name])
        shares[biggest] += rest - sum(shares.values())
    return {**{k: v for k, v in shares.items() if v}, **({new: percent} if percent else {})}
