"""The `register` action: copy a model version into a target registry, with lineage."""

from __future__ import annotations

from dataclasses import replace

from shared.adapters.mlflow_copy import (
    CopyTarget,
    client,
    copy_model_version,
    redact,
    source_run_model,
    source_version,
)
from shared.adapters.registry_uris import registry_uris
from shared.config.registries import AzureMLRegistry, DatabricksRegistry, MlflowRegistry
from shared.errors import PermanentError
from shared.executors.base import ActionContext, Outcome


class RegisterExecutor:
    def execute(self, ctx: ActionContext) -> Outcome:
        source = ctx.model()
        target_config = ctx.target_config()
        if not isinstance(target_config, MlflowRegistry | AzureMLRegistry | DatabricksRegistry):
            raise PermanentError(f"register target {ctx.action.target!r} is not a registry")
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
            artifact_location=getattr(target_config, "artifact_location", None)
            if isinstance(target_config, MlflowRegistry)
            else None,
        )
        lineage = {
            "modelops.source_registry": source.registry or redact(source.tracking_uri),
            "modelops.source_name": source.name,
            "modelops.source_version": source.version,
            "modelops.event_id": action.event_id,
            "modelops.reactor": "modelops-reactor",
            "modelops.rule": action.rule or "operator",
        }
        if action.params.run_id:
            lineage["modelops.source_run_id"] = action.params.run_id
        src = client(source.tracking_uri, source.registry_uri)
        if action.params.source_model_uri:
            what = source_run_model(source.name, source.version, action.params.source_model_uri, action.params.run_id)
        else:
            what = source_version(src, source.name, source.version)
        outputs = copy_model_version(
            src,
            source.tracking_uri,
            what,
            target,
            action_key=action.key,
            lineage=lineage,
            workdir=ctx.state_dir / "tmp",
            progress=ctx.progress,
        )
        return Outcome.done(replace(outputs, registry=action.target))
