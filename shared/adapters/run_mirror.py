"""Dual tracking: the copy's run in the target mirrors the source's training run (DESIGN.md section 3).

What travels: the run name, params, every metric with its full (step, timestamp, value) history, user
tags, the `mlflow.*` tags that describe where the source ran (under `modelops.source.<key>`: copied as
themselves they would lie about the target) and the dataset inputs. A version registered from an MLflow
3 logged model without a run brings the logged model's params, metrics and user tags instead.

Bounded: histories are read a page at a time (the store's ``get_metric_history`` with ``max_results`` and
``page_token``) and written with ``log_batch`` within the target's limits. Idempotent: the counts are written
last in the `modelops.run_mirror` tag; a run without them (an interrupted attempt) gets only what it lacks,
each history resuming after the points the target holds (written in the source's order: the first ones).
What the target refuses (a value too long, a per-run limit) is logged item by item; the copy goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.adapters.mlflow_http import classify
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
SHOWN_REFUSALS = 20  # refusals written to the action's log; every one goes to the worker's log


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
class _Source:
    name: str | None
    params: dict[str, str]
    tags: dict[str, str]
    metric_keys: list[str]
    datasets: list[Any]
    model_metrics: list[Metric] | None  # a logged model's metrics (a short list), else histories are paged


def _read_source(src: MlflowClient, run_id: str | None, model_id: str | None) -> _Source | None:
    try:
        if run_id:
            run = src.get_run(run_id)
            inputs = run.inputs.dataset_inputs if run.inputs else []
            data = run.data
            return _Source(run.info.run_name, dict(data.params), dict(data.tags), sorted(data.metrics), inputs, None)
        if model_id:
            model = src.get_logged_model(model_id)
            metrics = [Metric(m.key, m.value, m.timestamp, m.step) for m in model.metrics or []]
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
) -> MirrorCounts:
    """Mirror the source run (else the logged model) onto ``target_run``; returns what it now holds."""
    try:
        held = dst.get_run(target_run).data
    except MlflowException as exc:
        raise classify(exc, f"cannot read the copy's run {target_run}") from exc
    done = MirrorCounts.parse(held.tags.get(MIRROR_TAG))
    if done is not None:
        return done
    source = _read_source(src, run_id, model_id)
    writer = _Writer(dst, target_run, limits, progress)
    if source is None:
        if run_id or model_id:
            progress(
                f"the source {'run ' + str(run_id) if run_id else 'logged model ' + str(model_id)} is not readable"
            )
        writer.send(tags=[RunTag(MIRROR_TAG, MirrorCounts().text())])
        return MirrorCounts()
    # the marker first: a target with a per-run tag limit (Azure ML: 50) still has room for its final value
    writer.send(tags=[RunTag(MIRROR_TAG, "pending")])
    params = [Param(k, v) for k, v in sorted(source.params.items()) if held.params.get(k) != v]
    kept_params = len(source.params) - len(params) + writer.send(params=params)
    if source.name:
        writer.rename(source.name)
    tags = {new: v for k, v in source.tags.items() if (new := tag_for_target(k))}
    writer.send(tags=[RunTag(k, v) for k, v in sorted(tags.items()) if writer.fits(k, v)])
    if source.datasets:
        writer.inputs(source.datasets)
    points, keys = 0, 0
    for key in source.metric_keys:
        have = _count(dst, target_run, key) if key in held.metrics else 0
        if source.model_metrics is not None:
            pages: Iterator[list[Metric]] = iter([[m for m in source.model_metrics if m.key == key]])
        else:
            pages = _history(src, str(run_id), key)
        got = have + writer.history(key, pages, skip=have)
        points, keys = points + got, keys + (got > 0)
    counts = MirrorCounts(kept_params, keys, points, writer.refused)
    writer.send(tags=[RunTag(MIRROR_TAG, counts.text())])
    what = f"run {run_id}" if run_id else f"logged model {model_id}"
    progress(f"mirrored the source {what} onto the copy's run {target_run}: {counts.text()}")
    return counts


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


class _Writer:
    """``log_batch`` within the target's limits; a refused batch is sent again item by item."""

    def __init__(self, dst: MlflowClient, run_id: str, limits: BatchLimits, progress: Callable[[str], None]) -> None:
        self.dst, self.run_id, self.limits, self.progress = dst, run_id, limits, progress
        self.refused = 0

    def fits(self, key: str, value: str) -> bool:
        """Whether the target keeps a tag this long; if not, the tag is refused here (logged), not sent."""
        if len(key) <= self.limits.tag_key and len(value) <= self.limits.tag_value:
            return True
        why = f"key of {len(key)} and value of {len(value)} characters; the target keeps up to "
        self._refuse(f"tag {key}", why + f"{self.limits.tag_key} and {self.limits.tag_value}")
        return False

    def send(self, *, params: Sequence[Param] = (), tags: Sequence[RunTag] = ()) -> int:
        """Params, then tags, in batches; returns how many the target took."""
        taken = sum(self._batch([], chunk, []) for chunk in _chunks(params, self.limits.params))
        return taken + sum(self._batch([], [], chunk) for chunk in _chunks(tags, self.limits.tags))

    def history(self, key: str, pages: Iterator[list[Metric]], *, skip: int) -> int:
        """Send a metric's history after its first ``skip`` points; returns the points the target took."""
        sent = 0
        for page in pages:
            if skip >= len(page):
                skip -= len(page)
                continue
            page, skip = page[skip:], 0
            for chunk in _chunks(page, self.limits.metrics):
                taken = self._batch(chunk, [], [])
                if taken == 0 and sent == 0:
                    return 0  # the metric itself is refused (a per-run limit): the rest of it would be too
                sent += taken
        return sent

    def rename(self, name: str) -> None:
        try:  # update_run, not the mlflow.runName tag: a SQL store renames the run on set_tag alone, not log_batch
            self.dst.update_run(self.run_id, name=name)
        except MlflowException as exc:
            self._refused_or_raise(exc, f"run name {name!r}")

    def inputs(self, datasets: list[Any]) -> None:
        try:
            self.dst.log_inputs(self.run_id, datasets=datasets)
        except MlflowException as exc:
            self._refused_or_raise(exc, f"{len(datasets)} dataset inputs")

    def _batch(self, metrics: list[Metric], params: list[Param], tags: list[RunTag]) -> int:
        """Log one batch (of one kind); returns how many items the target took."""
        items: list[Any] = metrics or params or tags
        if not items:
            return 0
        try:
            self.dst.log_batch(self.run_id, metrics=metrics, params=params, tags=tags, synchronous=True)
            return len(items)
        except MlflowException as exc:
            self._refused_or_raise(exc, _describe(items[0]) if len(items) == 1 else None)
            if len(items) == 1:
                return 0
        taken = 0
        for i, item in enumerate(items):
            one = self._batch([item] if metrics else [], [item] if params else [], [item] if tags else [])
            if one == 0 and i == 0 and metrics:
                return 0  # the first point of a metric refused: the others would be as well
            taken += one
        return taken

    def _refused_or_raise(self, exc: MlflowException, what: str | None) -> None:
        """A 400 about the data is the target's answer to that item (logged); anything else fails the attempt."""
        if exc.error_code not in ("INVALID_PARAMETER_VALUE", "RESOURCE_LIMIT_EXCEEDED"):
            raise classify(exc, "the target refused the copy's run data")
        if what is not None:
            self._refuse(what, exc.message)

    def _refuse(self, what: str, why: str) -> None:
        self.refused += 1
        log.warning("target run %s refused %s: %s", self.run_id, what, why)
        if self.refused <= SHOWN_REFUSALS:
            self.progress(f"the target refused {what}: {why[:300]}")
        elif self.refused == SHOWN_REFUSALS + 1:
            self.progress("more refusals are in the worker's log")


def _describe(item: Metric | Param | RunTag) -> str:
    if isinstance(item, Metric):
        return f"metric {item.key} (step {item.step})"
    return f"{'param' if isinstance(item, Param) else 'tag'} {item.key}"


def _chunks(items: Sequence[Any], size: int) -> Iterator[list[Any]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk
