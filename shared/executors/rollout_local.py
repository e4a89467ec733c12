"""A `local` target rolled out in steps through its router (shared/executors/rollout.py says how a
rollout goes): the router splits the stable endpoint's traffic by the phase's weights, mirrors where
asked, and counts the new version's requests per phase (its window), which the judge reads.

During the rollout the new server's row stays `starting` and the old one `serving`; after the last
step passes, the new one is promoted and the old one retired, as a switch at once would. A failed
judgement sends all traffic back to the old version and keeps the new server running at 0% for a look,
its row `rolled-back` (no action owns it: cleanup may stop it). A rollout that ends without promoting
its version otherwise (superseded by a newer desired version or a rollback's pin, or its traffic changed
by someone else) stops the new server, once no traffic reaches it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

from shared.adapters.local_deployments import (
    ROLLED_BACK,
    LocalDeploymentRecord,
    LocalDeploymentStore,
    is_alive,
    stop_deployment,
)
from shared.adapters.local_routers import RouterRecord, route_id, route_to, router_figures
from shared.config.deployments import LocalDeployment
from shared.domain.outputs import DeployOutputs
from shared.errors import PermanentError, Superseded
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.deploy_local import scope_of, switch
from shared.executors.rollout import (
    FAILED,
    HOLD,
    Figures,
    Phase,
    began,
    counted,
    hold_left,
    judge,
    judged,
    phases,
    started,
)

T = TypeVar("T")


class LocalRollout:
    def __init__(
        self, ctx: ActionContext, cfg: LocalDeployment, store: LocalDeploymentStore, router: RouterRecord
    ) -> None:
        assert cfg.rollout is not None
        self.ctx, self.cfg, self.store, self.router, self.rollout = ctx, cfg, store, router, cfg.rollout
        self.phases = phases(cfg.rollout)

    def begin(self, candidate: LocalDeploymentRecord, current: LocalDeploymentRecord, out: DeployOutputs) -> Outcome:
        out = began(out, [route_id(current)])
        return self._unless_ended(candidate, current, out, lambda: self._apply(0, candidate, current, out))

    def resume(self, model: ModelRef) -> Outcome:
        ctx = self.ctx
        out = ctx.earlier(DeployOutputs)
        candidate = self.store.find(ctx.action.target, model.name, model.version, scope_of(ctx))
        current = self._old(out)
        if out.rollout_failed:
            raise PermanentError(out.rollout_failed)
        if candidate is None or current is None:
            ctx.ensure_desired()  # overtaken during the hold: end superseded, touching nothing
            gone = "the new version's server" if candidate is None else f"the old version ({out.rollout_from})"
            raise PermanentError(f"rollout of {model.uri} on {ctx.action.target} stopped: {gone} is no longer recorded")
        return self._unless_ended(candidate, current, out, lambda: self._judge(candidate, current, out))

    def _judge(self, candidate: LocalDeploymentRecord, current: LocalDeploymentRecord, out: DeployOutputs) -> Outcome:
        ctx, step = self.ctx, out.rollout_step or 0
        ctx.ensure_desired()  # overtaken during the hold: end superseded
        state = self.router.state()
        if state is None or state.window != out.rollout_window:
            raise _TrafficChanged(
                f"rollout of {route_id(candidate)} on {ctx.action.target} stopped at {self.phases[step].label()}: its "
                f"traffic was changed meanwhile (now {state.weights() if state else {}}): a rollback or another deploy"
            )
        left = hold_left(out, self.rollout.hold_seconds)
        if left > 0:
            return Outcome.waiting(left, out)  # an early re-check (a redelivery): the hold goes on
        if not is_alive(candidate):
            return self._restore(candidate, current, out, f"the new version's server (pid {candidate.pid}) died")
        figures = self._figures(candidate, out.rollout_window or "")
        verdict = judge(figures, self.rollout.judge, extra_holds=out.rollout_extra_holds or 0)
        out = judged(out, figures, verdict)
        label = self.phases[step].label()
        ctx.progress(
            f"{label} judged {verdict.decision}: {figures.describe()}; {'; '.join(verdict.reasons)}".rstrip("; ")
        )
        if verdict.decision == HOLD:
            return Outcome.waiting(self.rollout.hold_seconds, out)
        if verdict.decision == FAILED:
            return self._restore(
                candidate, current, out, f"{label} judged failed: {'; '.join(verdict.reasons)} ({figures.describe()})"
            )
        if step + 1 < len(self.phases):
            return self._apply(step + 1, candidate, current, out)
        ctx.ensure_desired()  # newest wins: a version no longer desired is never promoted
        done = switch(ctx, self.cfg, self.store, self.router, candidate, out)
        return Outcome.done(replace(done, rollout_step=len(self.phases)))  # past the last phase: finished

    def _unless_ended(
        self,
        candidate: LocalDeploymentRecord,
        current: LocalDeploymentRecord,
        out: DeployOutputs,
        go_on: Callable[[], T],
    ) -> T:
        """Run a step of the rollout; if it ends the rollout without its version (superseded, or its traffic
        changed by someone else), the new server is stopped first, so it is never left `starting`."""
        try:
            return go_on()
        except Superseded:
            self._stop_candidate(candidate, current, out)
            raise
        except _TrafficChanged as stopped:
            self._stop_candidate(candidate, current, out)
            raise PermanentError(str(stopped)) from None

    def _stop_candidate(
        self, candidate: LocalDeploymentRecord, current: LocalDeploymentRecord, out: DeployOutputs
    ) -> None:
        """Stop the new server once no request reaches it: traffic still as this rollout left it goes
        back to the version serving; traffic someone else routes is left alone (and the server with it,
        if they route to it)."""
        state = self.router.state()
        if state is not None and state.window == out.rollout_window:
            state = route_to(self.router, [(current, 100)])
        mirrored = state is not None and state.mirror is not None and state.mirror.id == route_id(candidate)
        if state is not None and (state.weights().get(route_id(candidate)) or mirrored):
            return
        stop_deployment(self.store, candidate)
        self.ctx.progress(f"stopped {route_id(candidate)} on {self.ctx.action.target}: its rollout ended without it")

    def _apply(
        self, step: int, candidate: LocalDeploymentRecord, current: LocalDeploymentRecord, out: DeployOutputs
    ) -> Outcome:
        phase: Phase = self.phases[step]
        self.ctx.ensure_desired()  # a version no longer desired moves no traffic (it ends superseded)
        if phase.kind == "mirror":
            state = route_to(self.router, [(current, 100), (candidate, 0)], mirror=(candidate, phase.percent))
        else:
            state = route_to(self.router, [(current, 100 - phase.percent), (candidate, phase.percent)])
        mirror = {state.mirror.id: state.mirror.percent} if state.mirror else None
        hold = self.rollout.hold_seconds
        out = started(out, step, phase, window=state.window, traffic=state.weights(), mirror=mirror, hold_s=hold)
        self.ctx.progress(f"{self.ctx.action.target}: {phase.label()} to {route_id(candidate)}; holding {hold:g}s")
        return Outcome.waiting(hold, replace(out, traffic=state.weights()))

    def _restore(
        self, candidate: LocalDeploymentRecord, current: LocalDeploymentRecord, out: DeployOutputs, why: str
    ) -> Outcome:
        """All traffic back to the old version; the action fails on its next (immediate) re-check, so the
        figures are recorded first and a crash in between fails it all the same."""
        state = route_to(self.router, [(current, 100), (candidate, 0)])
        self.store.record(replace(candidate, status=ROLLED_BACK))  # no action owns it any more
        message = (
            f"rollout of {route_id(candidate)} on {self.ctx.action.target} rolled back: {why}. All traffic is back on "
            f"{route_id(current)}; the new version keeps running at 0% for a look ({candidate.url}/invocations)"
        )
        self.ctx.progress(message)
        failed = replace(out, rollout_failed=message, rollout_attempt=self.ctx.action.attempts, traffic=state.weights())
        return Outcome.waiting(0.0, failed)

    def _old(self, out: DeployOutputs) -> LocalDeploymentRecord | None:
        wanted = set(out.rollout_from or ())
        found = [r for r in self.store.list() if r.target == self.ctx.action.target and route_id(r) in wanted]
        return found[0] if found else None

    def _figures(self, candidate: LocalDeploymentRecord, window: str) -> Figures:
        raw = router_figures(self.router, window).get(route_id(candidate), {})
        return counted(
            int(raw.get("requests", 0)),
            int(raw.get("errors_5xx", 0)),
            int(raw.get("errors_4xx", 0)),
            raw.get("latency_p99_ms"),
            self.rollout.judge,
        )


class _TrafficChanged(Exception):
    """The router's traffic is no longer what this rollout set: a rollback or another deploy moved it."""
