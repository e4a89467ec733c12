"""What the Azure ML deploy executors share: deterministic names, and the rule that a deployment
serves a model registered in its own workspace."""

from __future__ import annotations

import re

from shared.config.base import AzureMLWorkspace
from shared.domain.actions import short_hash
from shared.errors import PermanentError
from shared.executors.base import ActionContext, ModelRef


def deployment_name(target: str, model_name: str, model_version: str) -> str:
    """Deterministic, valid Azure ML deployment name (<=32 chars, letters/digits/hyphens, a letter first)."""
    slug = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-") or "model"
    if not slug[0].isalpha():
        slug = "m" + slug
    version = re.sub(r"[^a-z0-9]+", "", str(model_version).lower()) or "0"
    # the hash keeps names distinct when truncation or the target would otherwise collide
    suffix = short_hash(f"{target}|{model_name}|{model_version}", 6)
    head = f"{slug}-v{version}"[: 32 - len(suffix) - 1].rstrip("-")
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
