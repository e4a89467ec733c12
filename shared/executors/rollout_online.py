"""An online endpoint rolled out in steps (shared/executors/rollout.py says how a rollout goes): each
phase is one traffic update of the endpoint (live `traffic` and, managed endpoints only, `mirror_traffic`
to the new deployment); each hold is judged on the new deployment's own Azure Monitor metrics
(shared/adapters/monitor_metrics.py) since the phase began. A failed judgement gives the old deployments
their traffic back and clears the mirror; the new deployment stays, at 0%, for a look.

A traffic update Azure has not taken yet (409 "an operation is ongoing" on the endpoint, or the update
itself still running after `wait_s`) is recorded as pending (`rollout_pending`) and waited for in the
ledger, no worker held: each re-check reads the endpoint, and the phase goes on once its traffic is
there, or the update is sent again once the endpoint is idle. It gives up after
`provisioning_timeout_s`.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.adapters.aml_online import IN_PROGRESS
from shared.adapters.azure_errors import is_ongoing_operation, retry_after_of
from shared.adapters.monitor_metrics import OnlineMetricsClient
from shared.config.rollout import OnlineRollout
from shared.domain.outputs import DeployOutputs
from shared.errors import PermanentError
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
        if out.rollout_pending:
            return self._settle(out, dict(out.rollout_pending))
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
        change = {"then": "apply", "step": step, "traffic": traffic, "mirror": mirror, "before": old}
        return self._change(out, {**change, "since": time.time()})

    def _restore(self, out: DeployOutputs, old: dict[str, int], why: str) -> Outcome:
        change = {"then": "restore", "traffic": old, "mirror": {}, "why": why, "since": time.time()}
        return self._change(out, change)

    def _change(self, out: DeployOutputs, change: dict[str, Any]) -> Outcome:
        """Send the traffic change; if Azure has not taken it yet, wait for it in the ledger."""
        pause = self._route(change["traffic"], change["mirror"])
        if pause is None:
            return self._changed(replace(out, rollout_pending=None), change)
        step = change["step"] if change["then"] == "apply" else out.rollout_step
        pending = replace(out, rollout_pending=change, rollout_step=step, phase="rollout: traffic update pending")
        return Outcome.waiting(pause, pending)

    def _settle(self, out: DeployOutputs, change: dict[str, Any]) -> Outcome:
        """A re-check of a pending traffic change: there now (the phase goes on), still running (wait
        again), or the endpoint idle without it (send it again)."""
        run = self.run
        if change["then"] == "apply":
            run.ctx.ensure_desired()  # overtaken while waiting on Azure: superseded, no more traffic moved
        endpoint = run._endpoint()
        busy = endpoint.state in IN_PROGRESS
        if not busy and endpoint.traffic == change["traffic"] and endpoint.mirror == change["mirror"]:
            return self._changed(replace(out, rollout_pending=None), change)
        waited = time.time() - float(change["since"])
        if waited > run.cfg.provisioning_timeout_s:
            raise PermanentError(
                f"rollout of {run.name} on {self.endpoint}: Azure has not taken the traffic update "
                f"{change['traffic']} (mirror {change['mirror']}) in {waited:.0f}s (provisioning_timeout_s="
                f"{run.cfg.provisioning_timeout_s:.0f}); the endpoint is {endpoint.state}, traffic {endpoint.traffic}"
            )
        if busy:
            run.ctx.progress(f"{self.endpoint}: still {endpoint.state}; traffic update pending")
            return Outcome.waiting(run.cfg.poll_interval_s, out)
        return self._change(out, change)

    def _changed(self, out: DeployOutputs, change: dict[str, Any]) -> Outcome:
        """The traffic change is in force: the phase's hold begins, or the restored rollout fails."""
        traffic, mirror = dict(change["traffic"]), dict(change["mirror"])
        if change["then"] == "restore":
            message = (
                f"rollout of {self.run.name} on {self.endpoint} rolled back: {change['why']}. Traffic is back on "
                f"{traffic}, mirror cleared; {self.run.name} stays at 0% for a look (az ml online-deployment "
                f"get-logs -e {self.endpoint} -n {self.run.name})"
            )
            self.run.ctx.progress(message)
            attempt = self.run.ctx.action.attempts
            return Outcome.waiting(0.0, replace(out, rollout_failed=message, rollout_attempt=attempt, traffic=traffic))
        step = int(change["step"])
        phase, hold = self.phases[step], self.rollout.hold_seconds
        window = datetime.now(UTC).isoformat()
        out = started(out, step, phase, window=window, traffic=traffic, mirror=mirror or None, hold_s=hold)
        if step == 0:  # what a failed judgement gives the traffic back to
            out = replace(out, rollout=[{**entry, "before": change["before"]} for entry in out.rollout or []])
        self.run.ctx.progress(f"{self.endpoint}: {phase.label()} to {self.run.name}; holding {hold:g}s")
        return Outcome.waiting(hold, replace(out, traffic=traffic, phase=f"rollout: {phase.label()}"))

    def _route(self, traffic: dict[str, int], mirror: dict[str, int]) -> float | None:
        """One traffic update; None once Azure has taken it, else the seconds to wait before looking again:
        another operation runs on the endpoint (409), or this update still runs after ``wait_s``."""
        from azure.core.exceptions import HttpResponseError

        from shared.executors.deploy_online import _NotYet

        run = self.run
        try:
            run._await_poller(run.aml.begin_route_traffic(self.endpoint, traffic, mirror), "traffic")
        except _NotYet:
            run.ctx.progress(f"{self.endpoint}: traffic update still running; checking again in the ledger")
            return run.cfg.poll_interval_s
        except HttpResponseError as exc:
            message = str(getattr(getattr(exc, "error", None), "message", None) or exc)
            if not is_ongoing_operation(exc.status_code or 0, message):
                raise
            pause = max(retry_after_of(exc) or 0.0, run.cfg.poll_interval_s)
            run.ctx.progress(f"{self.endpoint}: busy with another operation (409); traffic update again in {pause:g}s")
            return pause
        return None

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
