"""Deploy to Azure ML managed / Kubernetes online endpoints (azure-ai-ml), blue/green by traffic.

Steps, each safe to repeat: endpoint exists (created if missing) -> deployment named from
(target, model, version) exists and provisioned -> smoke test against that deployment alone
(`azureml-model-deployment` header, so it gets no user traffic yet) -> traffic 100% to it (or, with a
`rollout:` block and another deployment serving, in steps: shared/executors/rollout_online.py) ->
older deployments of this target beyond `keep_previous` deleted. Provisioning takes minutes,
so an attempt waits at most `wait_s` and hands back `Outcome.waiting`; the worker calls again
and the executor resumes from what Azure reports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.adapters.aml_online import (
    IN_PROGRESS,
    Deployment,
    DeploymentSpec,
    Endpoint,
    OnlineEndpointsClient,
    OnlineTarget,
    Poller,
    explain,
)
from shared.adapters.mlflow_models import serving_example
from shared.adapters.smoke import smoke_test, to_azureml_payload
from shared.config.deployments import KubernetesOnlineDeployment, ManagedOnlineDeployment
from shared.domain.outputs import DeployOutputs
from shared.errors import PermanentError, RetryableError, Superseded
from shared.executors.aml_targets import deployment_name, require_same_workspace
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.rollout import in_progress

if TYPE_CHECKING:
    from shared.config.rollout import OnlineRollout
    from shared.executors.rollout_online import OnlineRolloutSteps

TAG_TARGET = "modelops.target"
TAG_MODEL = "modelops.model"
TAG_DEPLOYED_AT = "modelops.deployed_at"


class _NotYet(Exception):
    """Azure is still working; hand back to the worker and re-check later."""

    def __init__(self, phase: str) -> None:
        super().__init__(phase)
        self.phase = phase


class OnlineDeployExecutor:
    def __init__(
        self, credential: Any | None = None, clock: Callable[[], float] = time.time, metrics_credential: Any = None
    ) -> None:
        self._credential = credential  # None: the app's identity (shared.adapters.credentials)
        self._clock = clock
        self._metrics_credential = metrics_credential or credential  # Azure Monitor (the rollout judge)

    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target_config()
        if not isinstance(cfg, ManagedOnlineDeployment | KubernetesOnlineDeployment):
            raise PermanentError(f"target {ctx.action.target!r} is not an online endpoint target")
        model = ctx.model()
        name = deployment_name(ctx.action.target, model.name, model.version, source=ctx.action.params.source)
        out: dict[str, Any] = {  # this attempt's working record; DeployOutputs at the end
            "target": ctx.action.target,
            "kind": cfg.kind,
            "endpoint": cfg.endpoint,
            "deployment": name,
            "model_name": model.name,
            "model_version": model.version,
            "submitted_at": ctx.earlier(DeployOutputs).submitted_at,
        }
        run = _Run(self, ctx, cfg, model, name, out)
        earlier = ctx.earlier(DeployOutputs)
        try:
            if cfg.rollout is not None and in_progress(earlier, cfg.rollout, ctx.action.attempts):
                return self._steps(run, cfg.rollout).resume(earlier)
            run.ensure_endpoint()
            run.ensure_deployment()
            out["smoke_test"] = run.smoke()
            if cfg.rollout is not None:
                began = self._steps(run, cfg.rollout).begin(DeployOutputs(**out))
                if began is not None:
                    return began
            ctx.ensure_desired()  # newest wins: traffic never moves to a version no longer desired
            run.shift_traffic()
            out["deleted"] = run.retire_old()
        except Superseded:
            raise  # the new deployment stays at 0%; the worker records the action superseded
        except _NotYet as pending:
            ctx.progress(f"{cfg.endpoint}/{name}: waiting on Azure ({pending.phase})")
            return Outcome.waiting(cfg.poll_interval_s, DeployOutputs(**out, phase=pending.phase))
        except Exception as exc:  # noqa: BLE001 - every failure leaves traffic where it was
            raise explain(exc, f"deploying {model.name} v{model.version} to {cfg.endpoint}/{name}") from exc
        return Outcome.done(DeployOutputs(**out, phase="done"))

    def _steps(self, run: _Run, rollout: OnlineRollout) -> OnlineRolloutSteps:
        from shared.executors.rollout_online import OnlineRolloutSteps

        return OnlineRolloutSteps(run, rollout, self._metrics_credential)


class _Run:
    """One attempt's state; methods are the steps of the module docstring."""

    def __init__(
        self,
        owner: OnlineDeployExecutor,
        ctx: ActionContext,
        cfg: OnlineTarget,
        model: ModelRef,
        name: str,
        out: dict[str, Any],
    ) -> None:
        self.ctx, self.cfg, self.model, self.name, self.out = ctx, cfg, model, name, out
        self.clock = owner._clock
        self.until = time.monotonic() + cfg.wait_s
        self.aml = OnlineEndpointsClient(cfg, owner._credential, ctx.settings.azure_http)
        self.serving_before: list[str] = []

    # -- waiting -------------------------------------------------------------------------------
    def _await_poller(self, poller: Poller, phase: str) -> Any:
        poller.wait(timeout=max(0.0, self.until - time.monotonic()))  # raises the LRO's failure
        if not poller.done():
            raise _NotYet(phase)
        return poller.result()

    def _await_state(self, read: Callable[[], Any], phase: str) -> Any:
        while True:
            resource = read()
            if resource.state not in IN_PROGRESS:
                return resource
            if time.monotonic() + self.cfg.poll_interval_s > self.until:
                raise _NotYet(phase)
            time.sleep(self.cfg.poll_interval_s)

    # -- steps ---------------------------------------------------------------------------------
    def ensure_endpoint(self) -> None:
        if self.aml.endpoint(self.cfg.endpoint) is None:
            self.ctx.progress(f"creating online endpoint {self.cfg.endpoint}")
            poller = self.aml.begin_create_endpoint(
                self.cfg.endpoint,
                auth_mode=self.cfg.auth_mode,
                tags={TAG_TARGET: self.ctx.action.target},
                compute=self.cfg.compute if self.cfg.kind == "kubernetes-online" else None,
            )
            self._await_poller(poller, "endpoint")
        endpoint = self._await_state(self._endpoint, "endpoint")
        if endpoint.state == "failed":
            raise PermanentError(
                f"online endpoint {self.cfg.endpoint} is in provisioning state Failed; "
                "delete it (az ml online-endpoint delete) or configure another endpoint name"
            )
        self.out["scoring_uri"] = endpoint.scoring_uri

    def ensure_deployment(self) -> None:
        existing = self.aml.deployment(self.cfg.endpoint, self.name)
        failed_before_us = existing is not None and not self.out["submitted_at"] and existing.state == "failed"
        if existing is None or failed_before_us:
            self.out["submitted_at"] = self.clock()
            self.ctx.progress(f"creating deployment {self.name} on {self.cfg.endpoint}")
            try:
                self._await_poller(self.aml.begin_create_deployment(self._deployment_spec()), "provisioning")
            except _NotYet:
                self._check_deadline()
                raise
        try:
            deployment = self._await_state(self._deployment, "provisioning")
        except _NotYet:
            self._check_deadline()
            raise
        if deployment.state != "succeeded":
            raise PermanentError(
                f"deployment {self.name} on {self.cfg.endpoint} ended in provisioning state "
                f"{deployment.state.capitalize()}; traffic was not moved. See its logs: "
                f"az ml online-deployment get-logs -e {self.cfg.endpoint} -n {self.name}"
            )

    def _check_deadline(self) -> None:
        submitted = float(self.out["submitted_at"] or self.clock())
        self.out["submitted_at"] = submitted
        waited = self.clock() - submitted
        if waited > self.cfg.provisioning_timeout_s:
            raise PermanentError(
                f"deployment {self.name} on {self.cfg.endpoint} is still provisioning after {waited:.0f}s "
                f"(provisioning_timeout_s={self.cfg.provisioning_timeout_s:.0f}); traffic was not moved. "
                "Check it in Azure ML studio, or raise provisioning_timeout_s and replay the event"
            )

    def smoke(self) -> str:
        example = serving_example(self.model)
        if example is None:
            self.ctx.log.warning("%s has no input example: smoke test skipped", self.model.uri)
            return "skipped: the model has no input example (log it with input_example=...)"
        headers = {
            "Authorization": f"Bearer {self.aml.key(self.cfg.endpoint)}",
            # route to the new deployment directly: it has 0% of the users' traffic until it passes
            "azureml-model-deployment": self.name,
        }
        smoke_test(
            self.out["scoring_uri"], to_azureml_payload(example), headers=headers, timeout_s=self.cfg.smoke_timeout_s
        )
        return "passed"

    def shift_traffic(self) -> None:
        traffic = self._endpoint().traffic
        self.serving_before = [name for name in traffic if name != self.name]
        if traffic != {self.name: 100}:
            self.ctx.progress(f"{self.cfg.endpoint}: 100% traffic to {self.name}")
            self._await_poller(self.aml.begin_route_traffic(self.cfg.endpoint, {self.name: 100}), "traffic")
        self.out["traffic"] = {self.name: 100}

    def retire_old(self) -> list[str]:
        """Delete this target's deployments beyond keep_previous, the one that served until now kept
        first, then the newest (deletes are started, not awaited)."""
        ours = [
            d
            for d in self.aml.deployments(self.cfg.endpoint)
            if d.name != self.name and d.tags.get(TAG_TARGET) == self.ctx.action.target
        ]
        ours.sort(key=lambda d: d.tags.get(TAG_DEPLOYED_AT, ""), reverse=True)
        # the one that served until now is kept first: it is what a rollback goes back to
        ours.sort(key=lambda d: d.name not in self.serving_before)
        doomed = ours[self.cfg.keep_previous :]
        for old in doomed:
            self.ctx.log.info("deleting deployment %s (beyond keep_previous)", old.name)
            self.aml.begin_delete_deployment(self.cfg.endpoint, old.name)
        self.out["kept"] = [d.name for d in ours[: self.cfg.keep_previous]]
        return [d.name for d in doomed]

    # -- reads and entities ------------------------------------------------------------------
    def _endpoint(self) -> Endpoint:
        endpoint = self.aml.endpoint(self.cfg.endpoint)
        if endpoint is None:
            raise RetryableError(f"online endpoint {self.cfg.endpoint} vanished while deploying; trying again")
        return endpoint

    def _deployment(self) -> Deployment:
        deployment = self.aml.deployment(self.cfg.endpoint, self.name)
        if deployment is None:
            raise RetryableError(f"deployment {self.name} on {self.cfg.endpoint} vanished while provisioning")
        return deployment

    def _deployment_spec(self) -> DeploymentSpec:
        require_same_workspace(
            self.ctx, self.cfg, self.model, "an online deployment needs the model in that workspace's registry"
        )
        return DeploymentSpec(
            name=self.name,
            endpoint_name=self.cfg.endpoint,
            model=f"azureml:{self.model.name}:{self.model.version}",
            instance_type=self.cfg.instance_type,
            instance_count=self.cfg.instance_count,
            tags={
                TAG_TARGET: self.ctx.action.target,
                TAG_MODEL: f"{self.model.name}:{self.model.version}",
                TAG_DEPLOYED_AT: datetime.now(UTC).isoformat(timespec="seconds"),
                "modelops.action_key": self.ctx.action.key,
            },
            kubernetes=self.cfg.kind == "kubernetes-online",
        )
