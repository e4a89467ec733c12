"""What the Azure ML deploy executors share: deterministic names, and the rule that a deployment
serves a model registered in its own workspace."""

from __future__ import annotations

import re

from shared.config.base import AzureMLWorkspace
from shared.domain.actions import short_hash, source_scope
from shared.errors import PermanentError
from shared.executors.base import ActionContext, ModelRef


def deployment_name(target: str, model_name: str, model_version: str, *, source: str | None = None) -> str:
    """Deterministic, valid Azure ML deployment / web service name for one deploy action's model version.

    At most 32 characters, lowercase letters, digits and hyphens, a letter first and a hash last: valid
    both as an online deployment name and as an ACI/AKS service name (azureml-core's
    `webservice_name_validation`: ``^[a-z]([-a-z0-9]*[a-z0-9])?$``, 3-32 characters). Like action keys
    (`shared.domain.actions.source_scope`), a named source is part of the name, so `churn` v3 of source
    dev and of source prod get two deployments; the names mlflow, databricks and azureml (and operator)
    keep the names they had before sources were named.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-") or "model"
    if not slug[0].isalpha():
        slug = "m" + slug
    version = re.sub(r"[^a-z0-9]+", "", str(model_version).lower()) or "0"
    scope = source_scope(source)
    head = f"{slug}-v{version}"
    if scope is None:
        # the hash keeps names distinct when truncation or the target would otherwise collide
        suffix = short_hash(f"{target}|{model_name}|{model_version}", 6)
    else:
        head += "-" + (re.sub(r"[^a-z0-9]+", "-", scope.lower()).strip("-") or "s")
        suffix = short_hash(f"{target}|{scope}|{model_name}|{model_version}", 6)
    head = head[: 32 - len(suffix) - 1].rstrip("-")
    return f"{head}-{suffix}"


def require_same_workspace(ctx: ActionContext, cfg: AzureMLWorkspace, model: ModelRef, needs: str) -> None:
    """Refuse a model that is not in the target's workspace registry; ``needs`` says why it must be."""
    registry = ctx.config.registries.get(model.registry or "")
    if (
        registry is not None
        and registry.kind == "azureml"
        and (registry.subscription_id.lower(), registry.resource_group.lower(), registry.workspace.lower())
        == (cfg.subscription_id.lower(), cfg.resource_group.lower(), cfg.workspace.lower())
    ):
        return
    raise PermanentError(
        f"{model.uri} is not registered in workspace {cfg.workspace}: {needs}. Add a step "
        f"`{{register: <an azureml registry for workspace {cfg.workspace}>}}` before "
        f"`{{deploy: {ctx.action.target}}}` in the rule"
    )
