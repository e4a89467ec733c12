"""The `register` action into an Azure ML registry: the source's files become a model version there.

Idempotent by lineage: a version tagged with this source version (or this action key) is reused, so a
redelivery, a retry or a second rule naming the same source version registers nothing new. The version
number is chosen here (one past the highest); when a concurrent copy registers that number first, the
versions are read again (the winner may be this very source version: reused) and the next is tried.
The files are copied blob to blob by the storage service when the source is an Azure ML workspace on
blob storage, else downloaded to a temp dir (once, whatever the number of tries) and uploaded.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from shared.adapters import artifact_transfer
from shared.adapters.aml_online import explain
from shared.adapters.aml_registry import RegistryModelsClient, RegistryModelVersion, VersionTaken, registry_model_uri
from shared.adapters.azureml_workspace import check_model_name
from shared.adapters.blob_copy import CopyRefused
from shared.adapters.mlflow_copy import SourceModel, download_model
from shared.config.registries import AzureMLSharedRegistry
from shared.domain.outputs import RegisterOutputs
from shared.errors import ActionError, RetryableError
from shared.executors.base import ActionContext, Outcome
from shared.executors.register import lineage_tags, read_source, refuse_loop_back
from shared.lineage import KEY_TAG

VERSION_RACE_ATTEMPTS = 5  # version numbers tried when concurrent copies take them first
_SAME_SOURCE = ("modelops.source_registry", "modelops.source_name", "modelops.source_version")


class RegistryRegisterExecutor:
    def __init__(self, credential: Any | None = None) -> None:
        self._credential = credential  # None: the app's identity (shared.adapters.credentials)

    def execute(self, ctx: ActionContext) -> Outcome:
        cfg = ctx.target(AzureMLSharedRegistry)
        source = ctx.model()
        name = ctx.action.params.target_model_name or source.name
        check_model_name(name, ctx.action.target)
        lineage = lineage_tags(ctx, source)
        doing = f"registering {source.name} v{source.version} in Azure ML registry {cfg.registry_name}"
        try:
            registry = RegistryModelsClient(cfg, self._credential, ctx.settings.azure_http)
            versions = registry.versions(name)
            earlier = _earlier_copy(versions, ctx.action.key, lineage)
            if earlier is not None:
                ctx.progress(f"found earlier copy {name}/{earlier.version} in {cfg.registry_name}; reusing it")
                return Outcome.done(_outputs(ctx, cfg, earlier, reused=True))
            src, what = read_source(ctx, source)
            refuse_loop_back(ctx, what.tags)
            lineage = lineage_tags(ctx, source, what.tags)
            tags = {**what.tags, **lineage, KEY_TAG: ctx.action.key}
            blobs = _blob_sources(ctx, what, source.tracking_uri)  # None: the files are streamed
            workdir = ctx.scratch_dir
            workdir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(dir=workdir, prefix="copy-") as tmp:
                folder: Path | None = None
                for _ in range(VERSION_RACE_ATTEMPTS):
                    version = _next_version(versions)
                    try:
                        created = None
                        if blobs is not None:
                            created = _copied_in_storage(ctx, registry, what, blobs, name, version, tags)
                            if created is None:
                                blobs = None  # refused: stream from now on
                        if created is None:
                            if folder is None:
                                folder = download_model(what, source.tracking_uri, Path(tmp), ctx.progress)
                            ctx.progress(f"uploading {name}/{version} to registry {cfg.registry_name}")
                            created = registry.create(
                                name,
                                version,
                                folder,
                                tags=tags,
                                description=what.description,
                                mlflow=(folder / "MLmodel").is_file(),
                            )
                        break
                    except VersionTaken as taken:
                        ctx.progress(f"{name}/{version}: {taken}; reading the versions again")
                    versions = registry.versions(name)
                    earlier = _earlier_copy(versions, ctx.action.key, lineage)
                    if earlier is not None:  # the faster copy was of this very source version
                        ctx.progress(f"{name}/{earlier.version} in {cfg.registry_name} is this copy; reusing it")
                        return Outcome.done(_outputs(ctx, cfg, earlier, reused=True))
                else:
                    raise RetryableError(
                        f"{doing}: other copies took the next {VERSION_RACE_ATTEMPTS} version numbers of {name} "
                        "first; trying again"
                    )
        except ActionError:
            raise
        except Exception as exc:  # noqa: BLE001 - azure-ai-ml raises azure-core and its own types
            raise explain(exc, doing) from exc
        ctx.progress(f"registered {registry_model_uri(cfg.registry_name, created.name, created.version)}")
        return Outcome.done(_outputs(ctx, cfg, created, reused=False))


def _blob_sources(ctx: ActionContext, what: SourceModel, source_tracking_uri: str) -> dict[str, str] | None:
    """Read SAS URLs of the source's files (an Azure ML workspace on blob storage), or None (why is logged)."""
    sources = artifact_transfer.blob_sources(what.download_uri, source_tracking_uri)
    if isinstance(sources, str):
        (ctx.log.info if sources == artifact_transfer.NO_BLOB_SOURCE else ctx.log.warning)(
            "streaming the files: %s", sources
        )
        return None
    return sources


def _copied_in_storage(
    ctx: ActionContext,
    registry: RegistryModelsClient,
    what: SourceModel,
    sources: dict[str, str],
    name: str,
    version: str,
    tags: dict[str, str],
) -> RegistryModelVersion | None:
    """The version registered from files the storage service copied, or None when the storage refused
    (logged; the caller streams the files). ``VersionTaken`` passes through, as from ``create``."""
    try:
        created = registry.create_from_blobs(
            name, version, sources, tags=tags, description=what.description, http=ctx.settings.azure_http
        )
    except CopyRefused as refused:
        ctx.log.warning("streaming the files: %s", refused)
        return None
    ctx.progress(f"copied {len(sources)} files inside blob storage to registry {registry.registry}")
    return created


def _earlier_copy(
    versions: list[RegistryModelVersion], action_key: str, lineage: dict[str, str]
) -> RegistryModelVersion | None:
    for version in versions:
        if version.tags.get(KEY_TAG) == action_key or all(
            version.tags.get(tag) == lineage[tag] for tag in _SAME_SOURCE
        ):
            return version
    return None


def _next_version(versions: list[RegistryModelVersion]) -> str:
    """Registry versions are chosen by the client: one past the highest numeric one."""
    numbers = [int(v.version) for v in versions if v.version.isdigit()]
    return str(max(numbers, default=0) + 1)


def _outputs(
    ctx: ActionContext, cfg: AzureMLSharedRegistry, version: RegistryModelVersion, *, reused: bool
) -> RegisterOutputs:
    return RegisterOutputs(
        model_name=version.name,
        model_version=version.version,
        model_uri=registry_model_uri(cfg.registry_name, version.name, version.version),
        registry=ctx.action.target,
        reused=reused,
    )
