"""Roll an Azure ML target back to the deployment it kept for that: online endpoints move 100% of
the traffic back to the kept deployment; ACI/AKS switch to the kept web service. Either way the
kept one is smoke-tested first (an online deployment directly, by the `azureml-model-deployment`
header, while it still has 0% of the users' traffic), and nothing is deleted."""

from __future__ import annotations

from typing import Any

from shared.adapters.aml_online import OnlineEndpointsClient, explain
from shared.adapters.azureml_core_webservices import AzureMLCoreWebservices
from shared.adapters.azureml_core_webservices import explain as explain_v1
from shared.adapters.mlflow_models import serving_example
from shared.adapters.smoke import smoke_test, to_azureml_payload
from shared.config.deployments import AciDeployment, AksDeployment, KubernetesOnlineDeployment, ManagedOnlineDeployment
from shared.domain.outputs import RollbackOutputs
from shared.errors import ActionError, PermanentError, RetryableError
from shared.executors.aml_targets import deployment_name
from shared.executors.base import ActionContext, Outcome

NO_EXAMPLE = "skipped: the model has no input example (log it with input_example=...)"


class OnlineRollbackExecutor:
    def __init__(self, credential: Any | None = None) -> None:
        self._credential = credential

    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target_config()
        if not isinstance(cfg, ManagedOnlineDeployment | KubernetesOnlineDeployment):
            raise PermanentError(f"target {ctx.action.target!r} is not an online endpoint target")
        action = ctx.action
        name = deployment_name(action.target, action.model_name, action.model_version, source=action.params.source)
        doing = f"rolling {cfg.endpoint} back to {name} ({action.model_name} v{action.model_version})"
        try:
            return self._switch(ctx, cfg, name)
        except ActionError:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure leaves traffic where it was
            raise explain(exc, doing) from exc

    def _switch(
        self, ctx: ActionContext, cfg: ManagedOnlineDeployment | KubernetesOnlineDeployment, name: str
    ) -> Outcome:
        aml = OnlineEndpointsClient(cfg, self._credential)
        endpoint = aml.endpoint(cfg.endpoint)
        if endpoint is None:
            raise PermanentError(f"online endpoint {cfg.endpoint} does not exist: nothing to roll back")
        out = RollbackOutputs(
            target=ctx.action.target,
            kind=cfg.kind,
            model_name=ctx.action.model_name,
            model_version=ctx.action.model_version,
            from_version=ctx.action.params.from_version,
            endpoint=cfg.endpoint,
            deployment=name,
            scoring_uri=endpoint.scoring_uri,
        )
        if endpoint.traffic == {name: 100}:  # a retry after the switch
            return Outcome.done(RollbackOutputs(**{**out.to_dict(), "traffic": {name: 100}, "reused": True}))
        kept = aml.deployment(cfg.endpoint, name)
        if kept is None or kept.state != "succeeded":
            state = "deleted" if kept is None else f"in provisioning state {kept.state}"
            raise PermanentError(
                f"deployment {name} of {ctx.action.model_name} v{ctx.action.model_version} on {cfg.endpoint} is "
                f"{state}: nothing kept to roll back to (keep_previous={cfg.keep_previous}); traffic was not moved"
            )
        example = serving_example(ctx.model())
        smoke = NO_EXAMPLE
        if example is not None:
            headers = {"Authorization": f"Bearer {aml.key(cfg.endpoint)}", "azureml-model-deployment": name}
            smoke_test(
                endpoint.scoring_uri or "", to_azureml_payload(example), headers=headers, timeout_s=cfg.smoke_timeout_s
            )
            smoke = "passed"
        ctx.progress(f"{cfg.endpoint}: 100% traffic back to {name}")
        poller = aml.begin_route_traffic(cfg.endpoint, {name: 100})
        poller.wait(timeout=cfg.wait_s)
        if not poller.done():
            raise RetryableError(f"{cfg.endpoint}: the traffic update to {name} is still running; checking again")
        poller.result()
        return Outcome.done(RollbackOutputs(**{**out.to_dict(), "traffic": {name: 100}, "smoke_test": smoke}))


class LegacyRollbackExecutor:
    """ACI/AKS: each version is its own web service with its own scoring URI; the switch makes the
    kept service the target's current one (after its smoke test) in the audit trail."""

    def __init__(self, sdk: AzureMLCoreWebservices | None = None) -> None:
        self._sdk = sdk or AzureMLCoreWebservices()

    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target_config()
        if not isinstance(cfg, AciDeployment | AksDeployment):
            raise PermanentError(f"target {ctx.action.target!r} is not an ACI/AKS target")
        action = ctx.action
        name = deployment_name(action.target, action.model_name, action.model_version, source=action.params.source)
        try:
            ws = self._sdk.workspace(cfg)
            service = self._sdk.find_service(ws, name)
            state = str(getattr(service, "state", "") or "").lower() if service is not None else "deleted"
            if service is None or state != "healthy":
                raise PermanentError(
                    f"web service {name} of {action.model_name} v{action.model_version} is {state}: nothing kept "
                    f"to roll back to (keep_previous={cfg.keep_previous})"
                )
            smoke = NO_EXAMPLE
            example = serving_example(ctx.model())
            if example is not None:
                headers = {}
                if isinstance(cfg, AksDeployment) and cfg.token_auth_enabled:
                    headers["Authorization"] = f"Bearer {service.get_token()[0]}"
                elif cfg.auth_enabled:
                    headers["Authorization"] = f"Bearer {service.get_keys()[0]}"
                smoke_test(
                    service.scoring_uri, to_azureml_payload(example), headers=headers, timeout_s=cfg.smoke_timeout_s
                )
                smoke = "passed"
        except ActionError:
            raise
        except Exception as exc:  # noqa: BLE001 - azureml-core raises many types; classify by text
            raise explain_v1(exc, f"rolling {action.target} back to web service {name}") from exc
        ctx.progress(f"{action.target}: web service {name} is current again ({service.scoring_uri})")
        return Outcome.done(
            RollbackOutputs(
                target=action.target,
                kind=cfg.kind,
                model_name=action.model_name,
                model_version=action.model_version,
                from_version=action.params.from_version,
                service=name,
                scoring_uri=service.scoring_uri,
                smoke_test=smoke,
            )
        )
