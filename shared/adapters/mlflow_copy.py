"""Copy a model version between MLflow registries, with lineage, exactly once per action key.

Follows mlflow-export-import's copy_model_version: read the source version, create the target
model if missing (tolerating RESOURCE_ALREADY_EXISTS), create the version, tag lineage. Artifacts
stream through a temp dir on disk (bounded memory), in parallel ranged GETs from a tracking
server's artifact proxy (shared/adapters/artifact_transfer.py); between two Azure ML workspaces the
storage service copies them instead (blob to blob, nothing downloaded). Every step can be re-run after a
crash: the copy run is found by its action-key tag, the version by its lineage tags.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import ViewType
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.adapters import artifact_transfer, copy_places, logged_model_copy, run_limits, run_mirror, uc_artifacts
from shared.adapters.mlflow_http import bound_retry_after, classify
from shared.domain.outputs import RegisterOutputs
from shared.errors import RetryableError
from shared.lineage import KEY_TAG

log = logging.getLogger("modelops.register")
bound_retry_after()  # before any client: a long Retry-After goes back to the ledger (adapters/mlflow_http.py)


@dataclass(frozen=True)
class CopyTarget:
    tracking_uri: str
    registry_uri: str | None
    model_name: str
    experiment: str
    artifact_location: str | None = None


def client(tracking_uri: str, registry_uri: str | None) -> MlflowClient:
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


@dataclass(frozen=True)
class SourceModel:
    """What is copied: a registry version, or a run's logged model (then ``version`` is a label)."""

    name: str
    version: str
    download_uri: str
    run_id: str | None
    tags: dict[str, str]
    description: str | None
    registered_name: str | None = None  # registry model to take description/tags from
    registry_uri: str | None = None  # a Unity Catalog URI: files come through temporary credentials
    storage_endpoint: str | None = None  # Unity Catalog: the blob endpoint its storage is read at, if not the cloud's
    # an MLflow 3 logged model (`models:/m-...`): its params and metrics travel even without a run
    model_id: str | None = None
    model_data: run_mirror.ModelData | None = None  # those params and metrics, where the version holds them (UC)


def source_version(
    src: MlflowClient, name: str, version: str, *, registry_uri: str | None = None, storage_endpoint: str | None = None
) -> SourceModel:
    try:
        mv = src.get_model_version(name, version)
        download_uri = src.get_model_version_download_uri(name, version)
    except MlflowException as exc:
        raise classify(exc, f"cannot read source model version {name}/{version}") from exc
    return SourceModel(
        name,
        version,
        download_uri,
        mv.run_id or None,
        dict(mv.tags),
        mv.description,
        registered_name=name,
        registry_uri=registry_uri,
        storage_endpoint=storage_endpoint,
        model_id=getattr(mv, "model_id", None) or run_mirror.model_id_of(mv.source),
        model_data=_carried(mv),
    )


def _carried(mv: ModelVersion) -> run_mirror.ModelData | None:
    """The logged model's params and metrics a version holds itself (Unity Catalog's: model_params, model_metrics)."""
    params, metrics = getattr(mv, "params", None) or [], getattr(mv, "metrics", None) or []
    if not params and not metrics:
        return None
    return run_mirror.ModelData({p.key: p.value for p in params}, tuple(metrics))


def source_run_model(name: str, label: str, model_uri: str, run_id: str | None) -> SourceModel:
    description = f"registered from run {run_id}" if run_id else None
    return SourceModel(name, label, model_uri, run_id, {}, description, model_id=run_mirror.model_id_of(model_uri))


def copy_model_version(
    src: MlflowClient,
    src_tracking_uri: str,
    source: SourceModel,
    target: CopyTarget,
    *,
    action_key: str,
    lineage: dict[str, str],
    workdir: Path,
    progress: Callable[[str], None] = lambda message: None,
) -> RegisterOutputs:
    """Copy ``source`` into ``target``; returns outputs describing the copy."""
    dst = client(target.tracking_uri, target.registry_uri)
    lineage = {**run_mirror.source_lineage(source.run_id, source.model_id), **lineage}
    existing = copy_places.find_copy(dst, target.model_name, action_key)
    if existing is not None:
        progress(f"found earlier copy {target.model_name}/{existing.version}; reusing it")
        return _outputs(target, existing, run_mirror.recorded(dst, existing.run_id), reused=True)

    run_id, model_id = _copy_run(dst, src, src_tracking_uri, source, target, action_key, lineage, workdir, progress)
    copy_places.ensure_registered_model(dst, src, target.model_name, source.registered_name)
    tags = {**source.tags, **lineage, KEY_TAG: action_key}
    run = dst.get_run(run_id)
    try:
        created = dst.create_model_version(
            name=target.model_name,
            source=f"models:/{model_id}" if model_id else f"{run.info.artifact_uri}/model",
            run_id=run_id,
            tags=tags,
            description=source.description,
            model_id=model_id,
        )
    except MlflowException as exc:
        raise classify(exc, f"target registry refused version of {target.model_name}") from exc
    progress(f"registered {target.model_name}/{created.version}")
    return _outputs(
        target, created, run_mirror.MirrorCounts.parse(run.data.tags.get(run_mirror.MIRROR_TAG)), reused=False
    )


def _copy_run(
    dst: MlflowClient,
    src: MlflowClient,
    src_tracking_uri: str,
    source: SourceModel,
    target: CopyTarget,
    action_key: str,
    lineage: dict[str, str],
    workdir: Path,
    progress: Callable[[str], None],
) -> tuple[str, str | None]:
    """A finished run in the target mirroring the source's run, the artifacts under `model/` (reused after a crash);
    a run-less source's files go into a logged model of the copy's own where the target has them (its id, else None)."""
    experiment_id = copy_places.experiment(dst, target.experiment, target.artifact_location)
    as_model = not source.run_id and bool(source.model_id) and logged_model_copy.supported(target.tracking_uri)
    runs = dst.search_runs(
        [experiment_id], filter_string=f"tags.`{KEY_TAG}` = '{action_key}'", run_view_type=ViewType.ACTIVE_ONLY
    )
    for run in runs:
        if run.info.status == "FINISHED":
            progress(f"artifacts already uploaded in run {run.info.run_id}")
            found = logged_model_copy.find(dst, experiment_id, run.info.run_id) if as_model else None
            return run.info.run_id, found
    if runs:
        run = runs[0]
        progress(f"resuming interrupted upload in run {run.info.run_id}")
    else:
        run = dst.create_run(experiment_id, tags={**lineage, KEY_TAG: action_key, "mlflow.runName": action_key[:250]})
    run_id = run.info.run_id
    model_id = None
    if as_model:
        tags = {**lineage, KEY_TAG: action_key}
        model_id = logged_model_copy.ensure(dst, experiment_id, run_id, name=target.model_name, tags=tags)
    run_mirror.mirror(
        src,
        dst,
        run_id,
        run_id=source.run_id,
        model_id=source.model_id,
        limits=run_limits.limits_for(target.tracking_uri),
        progress=progress,
        carried=source.model_data,
        onto_model=model_id,
    )
    if model_id is None and _copied_in_storage(dst, src_tracking_uri, source, target, run_id, progress):
        dst.set_terminated(run_id, "FINISHED")
        return run_id, None
    workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=workdir, prefix="copy-") as tmp:
        local = download_model(source, src_tracking_uri, Path(tmp), progress)
        size = sum(p.stat().st_size for p in local.rglob("*") if p.is_file())
        if model_id:
            progress(f"uploading {size / 1e6:.1f} MB to the copy's logged model {model_id}")
            logged_model_copy.fill(dst, model_id, local)
        else:
            progress(f"uploading {size / 1e6:.1f} MB to run {run_id}")
            _upload(dst, run_id, local)
    dst.set_terminated(run_id, "FINISHED")
    return run_id, model_id


def _upload(dst: MlflowClient, run_id: str, local: Path) -> None:
    try:
        artifact_transfer.upload(dst, run_id, local, "model")
    except MlflowException as exc:
        raise classify(exc, "cannot upload artifacts to the target registry") from exc
    except OSError as exc:
        raise RetryableError(f"uploading artifacts failed: {exc}") from exc


def _copied_in_storage(
    dst: MlflowClient,
    src_tracking_uri: str,
    source: SourceModel,
    target: CopyTarget,
    run_id: str,
    progress: Callable[[str], None],
) -> bool:
    """Whether the storage service copied the files (both sides blob storage); if not, the reason is logged."""
    run_artifacts = lambda: dst.get_run(run_id).info.artifact_uri  # noqa: E731 - asked only when the source is blobs
    done = artifact_transfer.copy_in_storage(
        source.download_uri, src_tracking_uri, target.tracking_uri, run_artifacts, "model"
    )
    if isinstance(done, str):
        (log.info if done == artifact_transfer.NO_BLOB_SOURCE else log.warning)("streaming the files: %s", done)
        return False
    files, size = done
    progress(f"copied {files} files, {size / 1e6:.1f} MB, inside blob storage to run {run_id}")
    return True


def download_model(
    source: SourceModel, src_tracking_uri: str, into: Path, progress: Callable[[str], None] = lambda message: None
) -> Path:
    """The source model's files, downloaded under ``into``; returns the folder holding them."""
    from mlflow.utils.uri import add_databricks_profile_info_to_artifact_uri

    if uc_artifacts.is_unity_catalog(source.registry_uri) and source.registered_name:
        try:  # temporary model-version credentials, then the blob storage they grant (adapters/uc_artifacts.py)
            return uc_artifacts.download(
                str(source.registry_uri),
                source.name,
                source.version,
                into,
                storage_endpoint=source.storage_endpoint,
                progress=progress,
            )
        except MlflowException as exc:
            raise classify(exc, f"cannot get temporary credentials for {source.name}/{source.version}") from exc
    # a Databricks registry answers dbfs:/ URIs; naming the source's profile in them keeps MLflow from
    # authenticating the download through the global tracking URI
    download_uri = add_databricks_profile_info_to_artifact_uri(source.download_uri, src_tracking_uri)
    progress(f"downloading {download_uri}")
    try:
        local = artifact_transfer.download(download_uri, into, src_tracking_uri)
    except MlflowException as exc:
        raise classify(exc, f"cannot download artifacts of {source.name}/{source.version}") from exc
    except OSError as exc:
        raise RetryableError(f"downloading artifacts failed: {exc}") from exc
    folder = Path(local)
    if not folder.exists() or (folder.is_dir() and not any(p.is_file() for p in folder.rglob("*"))):
        raise RetryableError(f"downloading {download_uri} brought no files; the source answered an empty model")
    return folder


def _outputs(
    target: CopyTarget, mv: ModelVersion, run: run_mirror.MirrorCounts | None, *, reused: bool
) -> RegisterOutputs:
    return RegisterOutputs(
        tracking_uri=target.tracking_uri,
        registry_uri=target.registry_uri,
        model_name=mv.name,
        model_version=str(mv.version),
        model_uri=f"models:/{mv.name}/{mv.version}",
        run_id=mv.run_id,
        reused=reused,
        params_copied=run.params if run else None,
        metrics_copied=run.metrics if run else None,
        metric_points_copied=run.points if run else None,
        run_items_refused=run.refused if run else None,
    )
