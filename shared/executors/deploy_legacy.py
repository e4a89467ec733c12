"""Deploy to ACI / AKS web services through azureml-core (SDK v1): legacy, kept because users ask.

Azure ML SDK v1 support ended 2026-06-30; managed-online replaces ACI and kubernetes-online
replaces AKS. Each version gets its own web service, named from (target, model, version), so a
retry finds it instead of deploying twice and a failed version never touches the one serving.
Old services of the target beyond `keep_previous` are deleted once the new one passed its smoke test.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from pathlib import Path
from typing import Any

from shared.adapters.azureml_core_webservices import (
    AzureMLCoreWebservices,
    LegacyTarget,
    deployment_configuration,
    deployment_failure,
    explain,
    inference_config,
)
from shared.adapters.mlflow_models import serving_example
from shared.adapters.smoke import smoke_test, to_azureml_payload
from shared.config.deployments import AciDeployment, AksDeployment
from shared.domain.outputs import DeployOutputs
from shared.errors import ActionError, PermanentError, RetryableError, Superseded
from shared.executors.aml_targets import deployment_name, require_same_workspace
from shared.executors.base import ActionContext, ModelRef, Outcome

log = logging.getLogger("modelops.deploy.legacy")
REPLACEMENT = {"aci": "managed-online", "aks": "kubernetes-online"}

_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_legacy_once(target: str, kind: str) -> bool:
    """Log, once per target and process, that this target kind is legacy and what replaces it."""
    with _warned_lock:
        if target in _warned:
            return False
        _warned.add(target)
    log.warning(
        "deploy target %r is of kind %r: an Azure ML SDK v1 web service, legacy (SDK v1 support ended "
        "2026-06-30). Move it to kind %r (azure-ai-ml online endpoints).",
        target,
        kind,
        REPLACEMENT[kind],
    )
    return True


class LegacyWebserviceExecutor:
    def __init__(self, sdk: AzureMLCoreWebservices | None = None) -> None:
        self._sdk = sdk or AzureMLCoreWebservices()

    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target_config()
        if not isinstance(cfg, AciDeployment | AksDeployment):
            raise PermanentError(f"target {ctx.action.target!r} is not an ACI/AKS target")
        target = ctx.action.target
        warn_legacy_once(target, cfg.kind)
        model = ctx.model()
        require_same_workspace(ctx, cfg, model, f"a {cfg.kind} web service deploys a model of that workspace")
        name = deployment_name(target, model.name, model.version, source=ctx.action.params.source)
        try:
            return self._deploy(ctx, cfg, model, name)
        except (ActionError, Superseded):
            raise
        except Exception as exc:  # noqa: BLE001 - azureml-core raises many types; classify by text
            raise explain(exc, f"deploying {model.name} v{model.version} to {cfg.kind} web service {name}") from exc

    def _deploy(self, ctx: ActionContext, cfg: LegacyTarget, model: ModelRef, name: str) -> Outcome:
        sdk = self._sdk
        ws = sdk.workspace(cfg)
        service = sdk.find_service(ws, name)
        state = str(getattr(service, "state", "") or "").lower() if service else ""
        if service is None or state in ("failed", "unhealthy", "unschedulable"):
            ctx.progress(f"deploying web service {name} ({cfg.kind})")
            with tempfile.TemporaryDirectory(prefix="modelops-v1-") as tmp:
                service = sdk.deploy(
                    ws,
                    name,
                    [sdk.model(ws, model.name, model.version)],
                    inference_config(Path(tmp), model, f"modelops-{deployment_name('env', model.name, model.version)}"),
                    deployment_configuration(cfg, ctx.action.target, model),
                    sdk.aks_target(ws, cfg.compute_target) if isinstance(cfg, AksDeployment) else None,
                    overwrite=service is not None,  # a failed leftover of this very version is replaced
                )
        failure = ""
        if str(service.state).lower() != "healthy":
            # also reached on a retry while the first attempt's service is still transitioning
            try:
                service.wait_for_deployment(show_output=False, timeout_sec=cfg.timeout_s)
            except Exception as exc:  # noqa: BLE001 - azureml-core raises WebserviceException for both
                if str(service.state).lower() in ("transitioning", ""):
                    raise RetryableError(
                        f"web service {name} is still deploying after {cfg.timeout_s:.0f}s; "
                        "the worker checks again (raise timeout_s for slow images)"
                    ) from exc
                failure = deployment_failure(exc, service)  # the operation's own code and message
        if str(service.state).lower() != "healthy":
            raise PermanentError(
                f"web service {name} ended in state {service.state}: "
                f"{failure or deployment_failure(Exception(''), service) or 'no error reported'}; "
                f"the previous service keeps serving. Logs: {_logs(service)}"
            )
        smoke = self._smoke(ctx, cfg, model, service)
        ctx.ensure_desired()  # newest wins: a service no longer desired retires nothing
        deleted, kept = self._retire(ws, cfg, ctx.action.target, name)
        return Outcome.done(
            DeployOutputs(
                target=ctx.action.target,
                kind=cfg.kind,
                service=name,
                scoring_uri=service.scoring_uri,
                model_name=model.name,
                model_version=model.version,
                smoke_test=smoke,
                deleted=deleted,
                kept=kept,
                legacy=f"SDK v1 {cfg.kind}; move to {REPLACEMENT[cfg.kind]}",
            )
        )

    def _smoke(self, ctx: ActionContext, cfg: LegacyTarget, model: ModelRef, service: Any) -> str:
        example = serving_example(model)
        if example is None:
            return "skipped: the model has no input example (log it with input_example=...)"
        headers = {}
        if isinstance(cfg, AksDeployment) and cfg.token_auth_enabled:
            headers["Authorization"] = f"Bearer {service.get_token()[0]}"
        elif cfg.auth_enabled:
            headers["Authorization"] = f"Bearer {service.get_keys()[0]}"
        smoke_test(service.scoring_uri, to_azureml_payload(example), headers=headers, timeout_s=cfg.smoke_timeout_s)
        return "passed"

    def _retire(self, ws: Any, cfg: LegacyTarget, target: str, name: str) -> tuple[list[str], list[str]]:
        others = [s for s in self._sdk.services(ws, target) if s.name != name]
        others.sort(key=lambda s: str(getattr(s, "created_time", "")), reverse=True)
        for old in others[cfg.keep_previous :]:
            log.info("deleting web service %s (beyond keep_previous)", old.name)
            old.delete()
        return [s.name for s in others[cfg.keep_previous :]], [s.name for s in others[: cfg.keep_previous]]


def _logs(service: Any) -> str:
    try:
        return "\n".join(str(service.get_logs()).splitlines()[-25:])
    except Exception as exc:  # noqa: BLE001 - logs are a courtesy; the state already says it failed
        return f"(unavailable: {exc})"
