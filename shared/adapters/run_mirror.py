"""Dual tracking: the copy's run in the target mirrors the source's training run (DESIGN.md section 3).

What travels: the run name, params, every metric with its full (step, timestamp, value) history, user
tags, the `mlflow.*` tags that describe where the source ran (under `modelops.source.<key>`: copied as
themselves they would lie about the target) and the dataset inputs. A version registered from an MLflow
3 logged model without a run brings the logged model's params, metrics and user tags instead (read from the
version itself where it holds them, as Unity Catalog's do), onto the target's own logged model when it has one
(shared/adapters/logged_model_copy.py), else onto the copy's run.

Bounded: histories are read a page at a time (the store's ``get_metric_history`` with ``max_results`` and
``page_token``) and written with ``log_batch`` within the target's limits. Idempotent: the counts are written
last in the `modelops.run_mirror` tag; a run without them (an interrupted attempt) gets only what it lacks,
each history resuming after the points the target holds (written in the source's order: the first ones).
What the target refuses (a value too long, a per-run limit) is logged item by item; the copy goes on
(shared/adapters/run_batches.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.adapters.mlflow_http import classify
from shared.adapters.run_batches import BatchWriter
from shared.adapters.run_limits import BatchLimits

log = logging.getLogger("modelops.register")

MIRROR_TAG = "modelops.run_mirror"  # written last: "params=3 metrics=2 points=6 refused=0"
SOURCE_PREFIX = "modelops.source."
# mlflow.* tags that say where and by whom the source run ran: true of the source, false of the target
DESCRIBES_SOURCE = (
    "mlflow.user",
    "mlflow.source.",
    "mlflow.databricks.",
    "mlflow.parentRunId",
    "mlflow.project.",
    "mlflow.docker.",
    "mlflow.gitRepoURL",
)
KEPT = ("mlflow.note.content",)  # the run's description: the user's words, true wherever it is shown
UNREADABLE = ("RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED", "ENDPOINT_NOT_FOUND")  # the copy goes on without the run
HISTORY_PAGE = 10_000  # points read per source request: a few MB of Metric objects at most


@dataclass(frozen=True)
class MirrorCounts:
    params: int = 0
    metrics: int = 0  # metric keys
    points: int = 0  # metric points across every history
    refused: int = 0  # items the target refused (logged one by one)

    def text(self) -> str:
        return f"params={self.params} metrics={self.metrics} points={self.points} refused={self.refused}"

    @classmethod
    def parse(cls, text: str | None) -> MirrorCounts | None:
        """The counts in a `modelops.run_mirror` tag; None for no tag, or one an attempt left unfinished."""
        try:
            fields = {k: int(v) for k, v in (part.split("=", 1) for part in (text or "").split())}
            return cls(fields["params"], fields["metrics"], fields["points"], fields["refused"])
        except (ValueError, KeyError):
            return None


def model_id_of(uri: str | None) -> str | None:
    """The logged model id in an MLflow 3 ``models:/m-...`` source, else None."""
    rest = (uri or "").removeprefix("models:/")
    return rest if rest != uri and rest.startswith("m-") and "/" not in rest else None


def source_lineage(run_id: str | None, model_id: str | None) -> dict[str, str]:
    return {
        **({"modelops.source_run_id": run_id} if run_id else {}),
        **({"modelops.source_model_id": model_id} if model_id else {}),
    }


def recorded(dst: MlflowClient, run_id: str | None) -> MirrorCounts | None:
    """What an earlier attempt mirrored onto ``run_id``, from its tag (None: nothing recorded)."""
    if not run_id:
        return None
    try:
        return MirrorCounts.parse(dst.get_run(run_id).data.tags.get(MIRROR_TAG))
    except MlflowException:
        return None  # the counts are a report; a copy is not refused for want of them


def tag_for_target(key: str) -> str | None:
    """The key a source run tag is copied under, or None when it is not copied."""
    if key.startswith("modelops."):
        return None  # a copy of a copy: the copy's run has lineage of its own, and its own action key and counts
    if not key.startswith("mlflow.") or key in KEPT:
        return key
    return SOURCE_PREFIX + key if key.startswith(DESCRIBES_SOURCE) else None


@dataclass(frozen=True)
class ModelData:
    """A logged model's params and metrics as its registry version holds them (Unity Catalog's versions do)."""

    params: dict[str, str]
    metrics: tuple[Metric, ...]


@dataclass(frozen=True)
class _Source:
    name: str | None
    params: dict[str, str]
    tags: dict[str, str]
    metric_keys: list[str]
    datasets: list[Any]
    model_metrics: list[Metric] | None  # a logged model's metrics (a short list), else histories are paged


def _read_source(
    src: MlflowClient, run_id: str | None, model_id: str | None, carried: ModelData | None
) -> _Source | None:
    if not run_id and carried is not None and (carried.params or carried.metrics):
        metrics = list(carried.metrics)  # the version holds them: the logged model may live in another workspace
        return _Source(None, dict(carried.params), {}, sorted({m.key for m in metrics}), [], metrics)
    try:
        if run_id:
            run = src.get_run(run_id)
            inputs = run.inputs.dataset_inputs if run.inputs else []
            data = run.data
            return _Source(run.info.run_name, dict(data.params), dict(data.tags), sorted(data.metrics), inputs, None)
        if model_id:
            model = src.get_logged_model(model_id)
            metrics = list(model.metrics or [])
            return _Source(None, dict(model.params), dict(model.tags), sorted({m.key for m in metrics}), [], metrics)
    except MlflowException as exc:
        what = f"run {run_id}" if run_id else f"logged model {model_id}"
        if exc.error_code in UNREADABLE:  # e.g. a Unity Catalog version made from another workspace's run
            log.warning("the source %s is not readable here, so the copy's run holds none of it: %s", what, exc)
            return None
        raise classify(exc, f"cannot read the source {what}") from exc
    return None


def mirror(
    src: MlflowClient,
    dst: MlflowClient,
    target_run: str,
    *,
    run_id: str | None,
    model_id: str | None,
    limits: BatchLimits,
    progress: Callable[[str], None] = lambda message: None,
    carried: ModelData | None = None,
    onto_model: str | None = None,
) -> MirrorCounts:
    """Mirror the source run (else the logged model) onto ``target_run``; returns what it now holds.

    ``carried``: a logged model's params and metrics as its version holds them (Unity Catalog); ``onto_model``:
    the target's logged model (an MLflow 3 target), which then gets the params, and the metrics with the run.
    """
    try:
        held = dst.get_run(target_run).data
    except MlflowException as exc:
        raise classify(exc, f"cannot read the copy's run {target_run}") from exc
    done = MirrorCounts.parse(held.tags.get(MIRROR_TAG))
    if done is not None:
        return done
    source = _read_source(src, run_id, model_id, carried)
    held_params = _model_params(dst, onto_model) if onto_model else dict(held.params)
    writer = BatchWriter(dst, target_run, limits, progress, held_metric_keys=held.metrics.keys())
    if source is None:
        if run_id or model_id:
            progress(
                f"the source {'run ' + str(run_id) if run_id else 'logged model ' + str(model_id)} is not readable"
            )
        writer.send(tags=[RunTag(MIRROR_TAG, MirrorCounts().text())])
        return MirrorCounts()
    # the marker first: a target with a per-run tag limit (Azure ML: 50) still has room for its final value
    writer.send(tags=[RunTag(MIRROR_TAG, "pending")])
    params = writer.params_that_fit([Param(k, v) for k, v in sorted(source.params.items()) if held_params.get(k) != v])
    sent = writer.send_model_params(onto_model, params) if onto_model else writer.send(params=params)
    kept_params = len([k for k, v in source.params.items() if held_params.get(k) == v]) + sent
    if source.name:
        writer.rename(source.name)
    tags = {new: v for k, v in source.tags.items() if (new := tag_for_target(k))}
    writer.send(tags=[RunTag(k, v) for k, v in sorted(tags.items()) if writer.fits(k, v)])
    if source.datasets:
        writer.inputs(source.datasets)
    points, keys = 0, 0
    for key in source.metric_keys:
        if not writer.metric_fits(key):
            continue
        have = _count(dst, target_run, key) if key in held.metrics else 0
        if source.model_metrics is not None:
            pages: Iterator[list[Metric]] = iter([[_onto(m, onto_model) for m in source.model_metrics if m.key == key]])
        else:
            pages = _history(src, str(run_id), key)
        got = have + writer.history(key, pages, skip=have)
        points, keys = points + got, keys + (got > 0)
    counts = MirrorCounts(kept_params, keys, points, writer.refused)
    writer.send(tags=[RunTag(MIRROR_TAG, counts.text())])
    what = f"run {run_id}" if run_id else f"logged model {model_id}"
    onto = f"the copy's logged model {onto_model} and run" if onto_model else "the copy's run"
    onto += f" {target_run}"
    progress(f"mirrored the source {what} onto {onto}: {counts.text()}")
    return counts


def _onto(metric: Metric, model_id: str | None) -> Metric:
    """A logged model's metric as the target takes it: linked to the target's logged model, if there is one."""
    return Metric(
        metric.key,
        metric.value,
        metric.timestamp,
        metric.step,
        model_id=model_id,
        dataset_name=metric.dataset_name if model_id else None,
        dataset_digest=metric.dataset_digest if model_id else None,
    )


def _model_params(dst: MlflowClient, model_id: str) -> dict[str, str]:
    try:
        return dict(dst.get_logged_model(model_id).params)
    except MlflowException as exc:
        raise classify(exc, f"cannot read the copy's logged model {model_id}") from exc


def _history(client: MlflowClient, run_id: str, key: str) -> Iterator[list[Metric]]:
    """A metric's history a page at a time, in the store's order (timestamp, step, value)."""
    store = client._tracking_client.store  # the store pages; the client's method gathers every page first
    token = None
    while True:
        try:
            page = store.get_metric_history(run_id, key, max_results=HISTORY_PAGE, page_token=token)
        except MlflowException as exc:
            raise classify(exc, f"cannot read the history of metric {key} of run {run_id}") from exc
        yield [Metric(m.key, m.value, m.timestamp, m.step) for m in page]
        token = getattr(page, "token", None)
        if not token:
            return


def _count(client: MlflowClient, run_id: str, key: str) -> int:
    return sum(len(page) for page in _history(client, run_id, key))
