"""Named event sources, each of a kind: where events come from and where their models live."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from shared.config.base import ConfigModel, Flag
from shared.domain import events as ev

SourceKind = Literal["mlflow", "databricks", "databricks-uc", "azureml"]
SOURCE_KINDS: tuple[str, ...] = get_args(SourceKind)
# the one-source-per-kind names of earlier configs: such a source may leave out `kind:` (name == kind)
LEGACY_SOURCE_NAMES = ("mlflow", "databricks", "azureml")
# the event kinds each kind of source can send (webhooks, Event Grid; read from shared/ingest/*), and
# what reconcile records for a source it watches (shared/service/reconcile.py): a rule on any other
# kind never fires for it
SENDS: dict[str, frozenset[str]] = {
    "mlflow": frozenset(
        {
            ev.REGISTERED_MODEL_CREATED,
            ev.MODEL_VERSION_CREATED,
            ev.MODEL_VERSION_TAG_SET,
            ev.MODEL_VERSION_TAG_DELETED,
            ev.MODEL_VERSION_ALIAS_SET,
            ev.MODEL_VERSION_ALIAS_DELETED,
        }
    ),
    "databricks": frozenset(
        {
            ev.REGISTERED_MODEL_CREATED,
            ev.MODEL_VERSION_CREATED,
            ev.MODEL_VERSION_STAGE_CHANGED,
            ev.MODEL_VERSION_TRANSITION_REQUESTED,
            ev.MODEL_VERSION_TAG_SET,
            ev.COMMENT_CREATED,
            ev.RUN_COMPLETED,  # job notifications (jobs.on_success / on_failure)
            ev.RUN_STATUS_CHANGED,
        }
    ),
    "azureml": frozenset({ev.MODEL_REGISTERED, ev.MODEL_DEPLOYED, ev.RUN_COMPLETED, ev.RUN_STATUS_CHANGED}),
    "databricks-uc": frozenset(),
}
RECONCILED: frozenset[str] = frozenset({ev.MODEL_VERSION_CREATED, ev.MODEL_VERSION_ALIAS_SET})
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_WORKSPACE_ID = re.compile(
    r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.machinelearningservices/workspaces/[^/]+$",
    re.IGNORECASE,
)


class SourceConfig(ConfigModel):
    """A named source of events, of a kind, and where the models its events name live."""

    kind: SourceKind | None = Field(
        default=None,
        description=f"one of {', '.join(SOURCE_KINDS)} (may be left out only by a source named mlflow, "
        "databricks or azureml)",
    )
    tracking_uri: str | None = Field(default=None, description="MLflow tracking URI of the source registry")
    registry_uri: str | None = Field(default=None, description="MLflow registry URI if not the tracking URI")
    registry: str | None = Field(default=None, description="name of a `registries:` entry holding the models")
    secret_setting: str | None = Field(
        default=None,
        description="name of the app setting holding this source's webhook secret "
        "(default: MLFLOW_WEBHOOK_SECRET for mlflow, DATABRICKS_WEBHOOK_SECRET for databricks)",
    )
    workspace_id: str | None = Field(
        default=None,
        description="azureml: the workspace's resource id, /subscriptions/<id>/resourceGroups/<rg>/providers/"
        "Microsoft.MachineLearningServices/workspaces/<name> (Event Grid events are matched by it)",
    )
    subscription_id: str | None = Field(default=None, description="azureml: the workspace's subscription id")
    resource_group: str | None = Field(default=None, description="azureml: the workspace's resource group")
    workspace: str | None = Field(default=None, description="azureml: the workspace name")
    reconcile: Flag = Field(
        default=True,
        description="false to leave this source out of reconcile (then only its webhooks or Event Grid report changes)",
    )
    poll: Flag = Field(default=False, description="true: reconciled even with `reconcile: false` (the older name)")
    poll_lookback_seconds: float = Field(
        default=3600, ge=0, description="on the first reconcile, versions created this long ago count as new"
    )

    @field_validator("secret_setting")
    @classmethod
    def _setting(cls, value: str | None) -> str | None:
        if value is not None and not _SETTING_NAME.match(value):
            raise ValueError("must be the name of an app setting (letters, digits, _), not the secret itself")
        return value

    @field_validator("workspace_id")
    @classmethod
    def _resource_id(cls, value: str | None) -> str | None:
        if value is not None and not _WORKSPACE_ID.match(value.rstrip("/")):
            raise ValueError(
                "must be a workspace resource id: /subscriptions/<id>/resourceGroups/<rg>/providers/"
                "Microsoft.MachineLearningServices/workspaces/<name>"
            )
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        if not self.tracking_uri and not self.registry:
            raise ValueError("give `tracking_uri` (an MLflow URI) or `registry` (a registries: entry)")
        parts = [self.subscription_id, self.resource_group, self.workspace]
        if any(parts) and not all(parts):
            raise ValueError("give all of subscription_id, resource_group and workspace (or `workspace_id`)")
        if any(parts) and self.workspace_id:
            raise ValueError("give `workspace_id` or subscription_id/resource_group/workspace, not both")
        if self.kind is None:
            raise ValueError(
                f"give `kind:`, one of {', '.join(SOURCE_KINDS)} (only a source named "
                f"{', '.join(LEGACY_SOURCE_NAMES)} may leave it out)"
            )
        kind = self.kind
        if kind != "azureml" and (self.workspace_id or self.workspace):
            raise ValueError(f"a workspace belongs to azureml sources only, not to kind {kind}")
        if kind == "databricks-uc":
            if self.secret_setting:
                raise ValueError(
                    "Unity Catalog sends no registry webhooks, so a databricks-uc source has no webhook secret: "
                    "remove `secret_setting` (the poller watches it)"
                )
            if not self.poll:
                raise ValueError("Unity Catalog sends no registry webhooks: set `poll: true` to watch it")
        if kind == "azureml" and self.secret_setting:
            raise ValueError(
                "Event Grid deliveries are not signed (the function key guards them): remove `secret_setting`"
            )
        return self

    def event_kinds(self) -> frozenset[str]:
        """The event kinds this source can send: its kind's, and reconcile's unless it opted out
        (the same test as shared/service/reconcile.py: `reconciled`)."""
        return SENDS[str(self.kind)] | (RECONCILED if self.reconcile or self.poll else frozenset())

    def workspace_resource_id(self, registries: Mapping[str, Any]) -> str | None:
        """azureml: the workspace's resource id, lowercased (Event Grid's `topic`), from the source or its registry."""
        if self.workspace_id:
            return self.workspace_id.lower()
        where: Any = self
        if not self.workspace:
            where = registries.get(self.registry or "")
            if getattr(where, "kind", None) != "azureml":
                return None
        return (
            f"/subscriptions/{where.subscription_id}/resourcegroups/{where.resource_group}"
            f"/providers/microsoft.machinelearningservices/workspaces/{where.workspace}"
        ).lower()
