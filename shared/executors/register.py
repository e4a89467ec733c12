"""The `register` action: copy a model version into a target registry, with lineage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from shared.adapters.mlflow_copy import (
    CopyTarget,
    MlflowClient,
    SourceModel,
    client,
    copy_model_version,
    source_run_model,
    source_version,
)
from shared.adapters.registry_uris import redact, registry_uris
from shared.config.registries import AzureMLRegistry, DatabricksRegistry, MlflowRegistry
from shared.errors import PermanentError
from shared.executors.base import ActionContext, ModelRef, Outcome
from shared.lineage import ORIGINS_TAG, RULE_TAG, SOURCE_TAG, copy_origins, loop_back


def lineage_tags(ctx: ActionContext, source: ModelRef, source_tags: Mapping[str, str] | None = None) -> dict[str, str]:
    """The tags a copy carries back to its source (and by which a second request finds it); with the
    source version's own tags, also every source along its lineage (shared/lineage.py)."""
    action = ctx.action
    lineage = {
        SOURCE_TAG: action.params.source,  # the `sources:` entry the event came from
        "modelops.source_registry": source.registry or redact(source.tracking_uri),
        "modelops.source_name": source.name,
        "modelops.source_version": source.version,
        "modelops.event_id": action.event_id,
        "modelops.reactor": "modelops-reactor",
        RULE_TAG: action.rule or "operator",
    }
    if source_tags is not None:
        lineage[ORIGINS_TAG] = copy_origins(source_tags, action.params.source)
    if action.params.run_id:
        lineage["modelops.source_run_id"] = action.params.run_id
    return lineage


def refuse_loop_back(ctx: ActionContext, source_tags: Mapping[str, str]) -> None:
    """A rule's copy of a version back into a registry along its lineage is refused here too: events
    that carry no tags (an alias set on a copy) pass the planning check."""
    action = ctx.action
    if action.rule in (None, "operator"):
        return  # an operator asked for this very copy
    why = loop_back(ctx.config, action.target, source_tags)
    if why:
        raise PermanentError(f"rule {action.rule}: {why}; nothing was copied")


def read_source(ctx: ActionContext, source: ModelRef) -> tuple[MlflowClient, SourceModel]:
    """The source registry's client and what is copied out of it (a registry version or a run's model)."""
    params = ctx.action.params
    src = client(source.tracking_uri, source.registry_uri)
    if params.source_model_uri:
        return src, source_run_model(source.name, source.version, params.source_model_uri, params.run_id)
    entry = ctx.config.registries.get(source.registry or "")
    endpoint = entry.storage_endpoint if isinstance(entry, DatabricksRegistry) else None
    return src, source_version(
        src, source.name, source.version, registry_uri=source.registry_uri, storage_endpoint=endpoint
    )


class RegisterExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        source = ctx.model()
        target_config = ctx.target_config()
        if not isinstance(target_config, MlflowRegistry | AzureMLRegistry | DatabricksRegistry):
            raise PermanentError(f"register target {ctx.action.target!r} is not an MLflow registry")
        action = ctx.action
        model_name = action.params.target_model_name or source.name
        if isinstance(target_config, AzureMLRegistry):
            from shared.adapters.azureml_workspace import check_model_name

            check_model_name(model_name, action.target)
        tracking_uri, registry_uri = registry_uris(target_config)
        target = CopyTarget(
            tracking_uri=tracking_uri,
            registry_uri=registry_uri,
            model_name=model_name,
            experiment=target_config.experiment,
            artifact_location=target_config.artifact_location if isinstance(target_config, MlflowRegistry) else None,
        )
        src, what = read_source(ctx, source)
        refuse_loop_back(ctx, what.tags)
        outputs = copy_model_version(
            src,
            source.tracking_uri,
            what,
            target,
            action_key=action.key,
            lineage=lineage_tags(ctx, source, what.tags),
            workdir=ctx.scratch_dir,
            progress=ctx.progress,
        )
        return Outcome.done(replace(outputs, registry=action.target))
