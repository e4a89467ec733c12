"""Deployment targets (the `deployments:` section)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, field_validator

from shared.config.base import AzureMLWorkspace, ChildEnv, ConfigModel
from shared.config.rollout import OnlineRollout, Rollout

# Azure ML endpoint names: 3-32 chars, start with a letter, letters/digits/hyphens.
_AML_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$")


class LocalDeployment(ConfigModel):
    """Serve with `mlflow models serve --env-manager local` on this machine."""

    kind: Literal["local"]
    host: str = Field(default="127.0.0.1", description="interface the scoring server binds")
    port: int | None = Field(default=None, description="fixed port; omit for a free port")
    startup_timeout_s: float = Field(default=120, gt=0, description="seconds to wait for /ping")
    workers: int = Field(default=1, ge=1, description="scoring server workers")
    smoke_timeout_s: float = Field(default=30, gt=0, description="seconds the smoke-test request may take")
    keep_previous: int = Field(
        default=1,
        ge=0,
        description="replaced versions kept (stopped) for a rollback to start again; older ones are forgotten",
    )
    router_port: int | None = Field(
        default=None, ge=1, le=65535, description="port of the target's stable endpoint; omit: a free one, kept"
    )
    rollout: Rollout | None = Field(default=None, description="steps, holds and judgement instead of a switch at once")
    env: ChildEnv = Field(
        default_factory=list,
        description="app settings the scoring server's process also gets (e.g. AZURE_STORAGE_CONNECTION_STRING "
        "for artifacts in Blob Storage); by default it gets PATH, HOME, locale, TLS trust and MLflow's non-secret "
        "settings",
    )


class _Workspace(AzureMLWorkspace):
    smoke_timeout_s: float = Field(default=60, gt=0, description="seconds the smoke-test request may take")


class _OnlineDeployment(_Workspace):
    endpoint: str = Field(description="online endpoint name (3-32 chars, letters, digits, hyphens)")
    instance_type: str = Field(default="Standard_DS3_v2", description="VM size of each instance")
    instance_count: int = Field(default=1, ge=1, description="instances of the new deployment")
    auth_mode: Literal["key", "aml_token"] = Field(default="key", description="endpoint auth: key or aml_token")
    keep_previous: int = Field(
        default=1, ge=0, description="older deployments kept at 0% traffic for rollback; older ones are deleted"
    )
    aml_endpoint: str | None = Field(
        default=None,
        description="Azure ML resource id for sovereign clouds (e.g. https://ml.azure.us/); default follows ARM",
    )
    wait_s: float = Field(
        default=240,
        gt=0,
        description="seconds one attempt waits on provisioning before handing back to the worker (re-checked later)",
    )
    provisioning_timeout_s: float = Field(
        default=3600, gt=0, description="give up when a deployment has not finished provisioning after this long"
    )
    poll_interval_s: float = Field(default=15, gt=0, description="seconds between provisioning status checks")
    rollout: OnlineRollout | None = Field(
        default=None, description="mirror, steps, holds and judgement instead of a switch at once"
    )
    metrics_endpoint: str | None = Field(
        default=None,
        description="Azure Monitor metrics data plane the rollout judge reads; default: the endpoint region's "
        "https://<region>.metrics.monitor.azure.com",
    )

    @field_validator("endpoint")
    @classmethod
    def _endpoint_name(cls, value: str) -> str:
        if not _AML_NAME.match(value):
            raise ValueError("must be 3-32 letters, digits or hyphens, starting with a letter")
        return value


class ManagedOnlineDeployment(_OnlineDeployment):
    """An Azure ML managed online endpoint (azure-ai-ml), MLflow no-code, blue/green by traffic."""

    kind: Literal["managed-online"]


class KubernetesOnlineDeployment(_OnlineDeployment):
    """An Azure ML Kubernetes online endpoint on an attached Arc/AKS compute (azure-ai-ml)."""

    kind: Literal["kubernetes-online"]
    compute: str = Field(description="name of the Kubernetes compute attached to the workspace")
    instance_type: str = Field(default="defaultinstancetype", description="instance type defined on the cluster")

    @field_validator("rollout")
    @classmethod
    def _no_mirror(cls, value: OnlineRollout | None) -> OnlineRollout | None:
        if value is not None and value.mirror is not None:
            raise ValueError("mirror: Azure ML does not mirror traffic on Kubernetes online endpoints; remove it")
        return value


class _LegacyWebservice(_Workspace):
    keep_previous: int = Field(
        default=1, ge=0, description="older web services of this target kept for rollback; older ones are deleted"
    )
    cpu_cores: float = Field(default=1, gt=0, description="CPU cores per container")
    memory_gb: float = Field(default=2, gt=0, description="memory (GB) per container")
    auth_enabled: bool = Field(default=True, description="require a key on the scoring URI")
    enable_app_insights: bool = Field(default=False, description="send telemetry to the workspace App Insights")
    timeout_s: float = Field(default=1800, gt=0, description="seconds to wait for the web service to deploy")


class AciDeployment(_LegacyWebservice):
    """Azure Container Instances web service (azureml-core SDK v1: legacy, use managed-online)."""

    kind: Literal["aci"]
    location: str | None = Field(default=None, description="Azure region; default: the workspace's")
    dns_name_label: str | None = Field(default=None, description="DNS label of the scoring URI")


class AksDeployment(_LegacyWebservice):
    """AKS web service on an attached AKS compute (azureml-core SDK v1: legacy, use kubernetes-online)."""

    kind: Literal["aks"]
    compute_target: str = Field(description="name of the AKS compute target attached to the workspace")
    num_replicas: int | None = Field(default=None, ge=1, description="fixed replicas; omit for autoscale")
    autoscale_max_replicas: int | None = Field(default=None, ge=1, description="autoscale ceiling")
    token_auth_enabled: bool = Field(default=False, description="use Entra tokens instead of keys")
    namespace: str | None = Field(default=None, description="Kubernetes namespace")
    scoring_timeout_ms: int | None = Field(default=None, gt=0, description="per-request scoring timeout")


DeploymentConfig = Annotated[
    LocalDeployment | ManagedOnlineDeployment | KubernetesOnlineDeployment | AciDeployment | AksDeployment,
    Field(discriminator="kind"),
]
