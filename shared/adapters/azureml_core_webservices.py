"""ACI / AKS web services through azureml-core (Azure ML SDK v1, legacy): every azureml-core call the
legacy deploy executor makes, the deploy configurations, the inference config, and the translation
of azureml-core's errors. Services come back as azureml-core `Webservice` objects (state,
scoring_uri, wait_for_deployment, get_keys, get_token, get_logs, delete); azureml-core is imported
when a call needs it."""

from __future__ import annotations

import json
import re
import sys
from importlib.resources import files
from pathlib import Path
from typing import Any

from shared.adapters.azure_errors import is_ongoing_operation
from shared.adapters.azureml_workspace import identity_auth
from shared.adapters.credentials import workspace_credential
from shared.adapters.mlflow_models import ModelVersionAt, pip_requirements, python_version
from shared.config.deployments import AciDeployment, AksDeployment
from shared.errors import ActionError, PermanentError, RetryableError

LegacyTarget = AciDeployment | AksDeployment
TAG_TARGET = "modelops.target"


class AzureMLCoreWebservices:
    """Every azureml-core call of the legacy executor, one workspace call per method."""

    def __init__(self, credential: Any | None = None) -> None:
        self._credential = credential

    def workspace(self, cfg: LegacyTarget) -> Any:
        from azureml.core import Workspace

        return Workspace.get(
            cfg.workspace,
            auth=identity_auth(self._credential or workspace_credential(cfg), cfg),
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
        """The web services deployed for ``target`` (by their TAG_TARGET tag)."""
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


def deployment_configuration(cfg: LegacyTarget, target: str, model: ModelVersionAt) -> Any:
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


def inference_config(workdir: Path, model: ModelVersionAt, environment: str) -> Any:
    """Our scoring script + an environment from the model's own pip requirements (MLflow has no v1
    no-code path); the files are written into ``workdir``, which must outlive the deploy call."""
    import mlflow
    from azureml.core import Environment
    from azureml.core.model import InferenceConfig

    script = workdir / "score.py"
    script.write_text(files("shared.jobs").joinpath("azureml_score.py").read_text())
    requirements = workdir / "requirements.txt"
    pins = [f"mlflow=={mlflow.__version__}", "azureml-inference-server-http", "azureml-defaults"]
    requirements.write_text("\n".join(pip_requirements(model) + pins) + "\n")
    env = Environment.from_pip_requirements(name=environment, file_path=str(requirements))
    # azureml-core's default is Python 3.8, which today's mlflow pins cannot install on
    env.python.conda_dependencies.set_python_version(
        python_version(model) or f"{sys.version_info.major}.{sys.version_info.minor}"
    )
    return InferenceConfig(entry_script=str(script), environment=env)


def explain(exc: Exception, doing: str) -> ActionError:
    """azureml-core raises many types for the same causes: classify by the text Azure sent.

    Its WebserviceException carries MMS's answer as text ("Response Code: 429 / Headers: {...} /
    Content: ..."); other types (a KeyError deep in the SDK) are named, or their text says nothing."""
    if isinstance(exc, ActionError):
        return exc
    text = str(exc).strip()
    if type(exc).__name__ != "WebserviceException":
        text = f"{type(exc).__name__}: {text}"
    lowered = text.lower()
    status = re.search(r"response code: (\d{3})", lowered)
    code = int(status.group(1)) if status else 0
    asked = re.search(r"'retry-after': '(\d+)'", lowered)
    retry_after = float(asked.group(1)) if asked else None
    if is_ongoing_operation(code, text):
        return RetryableError(f"{doing}: {text}", retry_after=retry_after)
    if (
        code in (408, 429)
        or code >= 500
        or (not code and re.search(r"\b(429|500|502|503|504)\b|timed out|too many requests|connection", lowered))
    ):
        return RetryableError(f"{doing}: {text}", retry_after=retry_after)
    if "quota" in lowered:
        return PermanentError(f"{doing}: {text} (request more quota or lower cpu_cores/memory_gb)")
    return PermanentError(f"{doing}: {text}")


def deployment_failure(exc: Exception, service: Any) -> str:
    """The deployment operation's own error ("AciDeploymentFailed: ... (CrashLoopBackOff)").

    wait_for_deployment raises it as text: "... Error:\n{json}" (unicode-unescaped, so strings may
    hold raw newlines); the service's `error` field says the same once it is Failed."""
    message = str(getattr(exc, "message", None) or exc)
    error: Any = None
    if "Error:\n" in message:
        try:
            error = json.loads(message.split("Error:\n", 1)[1], strict=False)
        except ValueError:
            error = None
    error = error if isinstance(error, dict) else getattr(service, "error", None)
    if not isinstance(error, dict) or not error.get("code"):
        return message.strip()
    text = f"{error['code']}: {str(error.get('message') or '').strip()}"
    details = [d for d in error.get("details") or [] if isinstance(d, dict) and d.get("code")]
    for detail in details:
        extra = str(detail.get("message") or "").strip()
        same = not extra or extra in text
        text += f" ({detail['code']})" if same else f" ({detail['code']}: {extra})"
    return text
