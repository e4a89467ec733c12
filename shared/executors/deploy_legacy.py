"""Deploy to ACI / AKS web services through azureml-core (SDK v1): legacy, kept because users ask.

Azure ML SDK v1 support ended 2026-06-30; managed-online replaces ACI and kubernetes-online
replaces AKS. Each version gets its own web service, named from (target, model, version), so a
retry finds it instead of deploying twice and a failed version never touches the one serving.
Old services of the target beyond `keep_previous` are deleted once the new one passed its smoke test.
"""

from __future__ import annotations

import logging
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

from shared.adapters.credentials import workspace_credential
from shared.adapters.smoke import load_serving_example, smoke_test, to_azureml_payload
from shared.config.deployments import AciDeployment, AksDeployment
from shared.errors import ActionError, PermanentError, RetryableError
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.executors.deploy_aml_client import deployment_name

log = logging.getLogger("modelops.deploy.legacy")
LegacyTarget = AciDeployment | AksDeployment
TAG_TARGET = "modelops.target"
REPLACEMENT = {"aci": "managed-online", "aks": "kubernetes-online"}

_warned: set[str] = set()
_warned_lock = threading.Lock()

# The scoring script azureml-core runs in the container: loads the MLflow model shipped with the
# registered model and answers Azure ML's `input_data` JSON (pandas split, list, or named tensors).
ENTRY_SCRIPT = """\
import json
import os

import numpy as np
import pandas as pd
from mlflow.pyfunc import load_model
from mlflow.pyfunc.scoring_server import _get_jsonable_obj

model = None


def init():
    global model
    root = os.environ["AZUREML_MODEL_DIR"]
    for folder, _, files in os.walk(root):
        if "MLmodel" in files:
            model = load_model(folder)
            return
    raise RuntimeError(f"no MLmodel under {root}")


def run(raw):
    body = json.loads(raw)
    data = body["input_data"]
    if isinstance(data, dict) and {"columns", "data"} <= set(data):
        frame = pd.DataFrame(data["data"], columns=data["columns"], index=data.get("index"))
    elif isinstance(data, dict):
        frame = {name: np.asarray(value) for name, value in data.items()}
    else:
        frame = np.asarray(data)
    return _get_jsonable_obj(model.predict(frame, params=body.get("params")), pandas_orient="records")
"""


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


class AzureMLCoreSDK:
    """The azureml-core calls this executor makes, in one place (tests replace this port)."""

    def __init__(self, credential: Any | None = None) -> None:
        self._credential = credential

    def workspace(self, cfg: LegacyTarget) -> Any:
        from azureml.core import Workspace
        from azureml.core.authentication import TokenAuthentication

        credential = self._credential or workspace_credential(cfg)

        def token_for_audience(resource: str) -> str:
            return str(credential.get_token(resource.rstrip("/") + "/.default").token)

        auth = TokenAuthentication(token_for_audience, cloud=cfg.cloud)
        if cfg.arm_endpoint:
            import copy

            cloud = copy.deepcopy(auth._cloud_type)  # this auth object's copy; the cloud table stays as is
            cloud.endpoints.resource_manager = cfg.arm_endpoint + "/"
            auth._cloud_type = cloud
        return Workspace.get(
            cfg.workspace,
            auth=auth,
            subscription_id=cfg.subscription_id,
            resource_group=cfg.resource_group,
            cloud=cfg.cloud,
        )

    def model(self, ws: Any, name: str, version: str) -> Any:
        from azureml.core.model import Model

        return Model(ws, name=name, version=int(version))

    def find_service(self, ws: Any, name: str) -> Any | None:
        from azureml.core.webservice import Webservice
        from azureml.exceptions import WebserviceException

        try:
            return Webservice(ws, name=name)
        except WebserviceException as exc:
            if "not found" in str(exc).lower() or "no service" in str(exc).lower():
                return None
            raise

    def services(self, ws: Any, target: str) -> list[Any]:
        from azureml.core.webservice import Webservice

        return list(Webservice.list(ws, tags=[[TAG_TARGET, target]]))

    def aks_target(self, ws: Any, name: str) -> Any:
        from azureml.core.compute import AksCompute

        return AksCompute(ws, name)

    def deploy(
        self,
        ws: Any,
        name: str,
        models: list[Any],
        inference_config: Any,
        deployment_config: Any,
        deployment_target: Any,
        overwrite: bool,
    ) -> Any:
        from azureml.core.model import Model

        return Model.deploy(
            ws,
            name,
            models,
            inference_config=inference_config,
            deployment_config=deployment_config,
            deployment_target=deployment_target,
            overwrite=overwrite,
        )


class LegacyWebserviceExecutor:
    def __init__(self, sdk: AzureMLCoreSDK | None = None) -> None:
        self._sdk = sdk or AzureMLCoreSDK()

    def execute(self, ctx: ActionContext) -> Outcome:
        cfg: LegacyTarget = ctx.target_config()
        target = ctx.action.target
        warn_legacy_once(target, cfg.kind)
        model = ctx.model()
        _require_same_workspace(ctx, cfg, model)
        name = deployment_name(target, model.name, model.version)
        try:
            return self._deploy(ctx, cfg, model, name)
        except ActionError:
            raise
        except Exception as exc:  # noqa: BLE001 - azureml-core raises many types; classify by text
            raise _classify(exc, f"deploying {model.name} v{model.version} to {cfg.kind} web service {name}") from exc

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
                    inference_config(Path(tmp), model),
                    deployment_configuration(cfg, ctx.action.target, model),
                    sdk.aks_target(ws, cfg.compute_target) if isinstance(cfg, AksDeployment) else None,
                    overwrite=service is not None,  # a failed leftover of this very version is replaced
                )
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
        if str(service.state).lower() != "healthy":
            raise PermanentError(
                f"web service {name} ended in state {service.state}; the previous service keeps serving. "
                f"Logs: {_logs(service)}"
            )
        smoke = self._smoke(ctx, cfg, model, service)
        deleted, kept = self._retire(ws, cfg, ctx.action.target, name)
        return Outcome.done(
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

    def _smoke(self, ctx: ActionContext, cfg: LegacyTarget, model: ModelRef, service: Any) -> str:
        example = load_serving_example(model)
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


def deployment_configuration(cfg: LegacyTarget, target: str, model: ModelRef) -> Any:
    """The exact AciWebservice / AksWebservice deploy configuration for this target."""
    tags = {TAG_TARGET: target, "modelops.model": f"{model.name}:{model.version}"}
    description = f"{model.name} v{model.version}, deployed by modelops-reactor"
    if isinstance(cfg, AciDeployment):
        from azureml.core.webservice import AciWebservice

        return AciWebservice.deploy_configuration(
            cpu_cores=cfg.cpu_cores,
            memory_gb=cfg.memory_gb,
            auth_enabled=cfg.auth_enabled,
            enable_app_insights=cfg.enable_app_insights,
            location=cfg.location,
            dns_name_label=cfg.dns_name_label,
            tags=tags,
            description=description,
        )
    from azureml.core.webservice import AksWebservice

    return AksWebservice.deploy_configuration(
        cpu_cores=cfg.cpu_cores,
        memory_gb=cfg.memory_gb,
        auth_enabled=cfg.auth_enabled and not cfg.token_auth_enabled,  # v1 allows one of the two
        token_auth_enabled=cfg.token_auth_enabled,
        enable_app_insights=cfg.enable_app_insights,
        autoscale_enabled=cfg.num_replicas is None,
        num_replicas=cfg.num_replicas,
        autoscale_max_replicas=cfg.autoscale_max_replicas,
        namespace=cfg.namespace,
        scoring_timeout_ms=cfg.scoring_timeout_ms,
        compute_target_name=cfg.compute_target,
        tags=tags,
        description=description,
    )


def inference_config(workdir: Path, model: ModelRef) -> Any:
    """Entry script + environment from the model's own pip requirements (MLflow has no v1 no-code path)."""
    import mlflow
    from azureml.core import Environment
    from azureml.core.model import InferenceConfig

    script = workdir / "score.py"
    script.write_text(ENTRY_SCRIPT)
    requirements = workdir / "requirements.txt"
    requirements.write_text(
        "\n".join(
            _model_requirements(model)
            + [
                f"mlflow=={mlflow.__version__}",
                "azureml-inference-server-http",
                "azureml-defaults",
            ]
        )
        + "\n"
    )
    env = Environment.from_pip_requirements(
        name=f"modelops-{deployment_name('env', model.name, model.version)}", file_path=str(requirements)
    )
    return InferenceConfig(entry_script=str(script), environment=env)


def _model_requirements(model: ModelRef) -> list[str]:
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts

    root = (
        MlflowClient(tracking_uri=model.tracking_uri, registry_uri=model.registry_uri)
        .get_model_version_download_uri(model.name, model.version)
        .rstrip("/")
    )
    with tempfile.TemporaryDirectory(prefix="modelops-req-") as tmp:
        try:
            path = download_artifacts(
                artifact_uri=f"{root}/requirements.txt",
                dst_path=tmp,
                tracking_uri=model.tracking_uri,
                registry_uri=model.registry_uri,
            )
        except Exception as exc:  # noqa: BLE001 - old models have only conda.yaml
            log.info("%s has no requirements.txt (%s); using mlflow's defaults", model.uri, exc)
            return []
        lines = Path(path).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "mlflow=="))]


def _require_same_workspace(ctx: ActionContext, cfg: LegacyTarget, model: ModelRef) -> None:
    registry = ctx.config.registries.get(model.registry or "")
    if (
        registry is not None
        and registry.kind == "azureml"
        and (registry.subscription_id.lower(), registry.resource_group.lower(), registry.workspace.lower())
        == (cfg.subscription_id.lower(), cfg.resource_group.lower(), cfg.workspace.lower())
    ):
        return
    raise PermanentError(
        f"{model.uri} is not registered in workspace {cfg.workspace}: a {cfg.kind} web service deploys a "
        f"model of that workspace. Add a step `{{register: <an azureml registry for workspace "
        f"{cfg.workspace}>}}` before `{{deploy: {ctx.action.target}}}` in the rule"
    )


def _logs(service: Any) -> str:
    try:
        return "\n".join(str(service.get_logs()).splitlines()[-25:])
    except Exception as exc:  # noqa: BLE001 - logs are a courtesy; the state already says it failed
        return f"(unavailable: {exc})"


def _classify(exc: Exception, doing: str) -> ActionError:
    text = str(exc)
    lowered = text.lower()
    if re.search(r"\b(429|500|502|503|504)\b|timed out|too many requests|connection", lowered):
        return RetryableError(f"{doing}: {text}")
    if "quota" in lowered:
        return PermanentError(f"{doing}: {text} (request more quota or lower cpu_cores/memory_gb)")
    return PermanentError(f"{doing}: {text}")
