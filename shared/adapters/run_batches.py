"""Writing a mirrored run into the target: ``log_batch`` within the target's limits (shared/adapters/run_limits.py),
what the target documents it would refuse refused here, and what it refuses anyway logged item by item."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import islice
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.adapters.mlflow_http import classify
from shared.adapters.run_limits import BatchLimits

log = logging.getLogger("modelops.register")

SHOWN_REFUSALS = 20  # refusals written to the action's log; every one goes to the worker's log
REFUSALS = ("INVALID_PARAMETER_VALUE", "RESOURCE_LIMIT_EXCEEDED")  # a 400 about the data: that item's answer


class BatchWriter:
    """Writes onto one run; a refused batch is sent again item by item, and the copy goes on."""

    def __init__(
        self,
        dst: MlflowClient,
        run_id: str,
        limits: BatchLimits,
        progress: Callable[[str], None],
        *,
        held_metric_keys: Iterable[str] = (),
    ) -> None:
        self.dst, self.run_id, self.limits, self.progress = dst, run_id, limits, progress
        self.refused = 0
        self._metric_keys = set(held_metric_keys)

    def fits(self, key: str, value: str) -> bool:
        """Whether the target keeps a tag this long; if not, the tag is refused here (logged), not sent."""
        if len(key) <= self.limits.tag_key and len(value) <= self.limits.tag_value:
            return True
        why = f"key of {len(key)} and value of {len(value)} characters; the target keeps up to "
        self._refuse(f"tag {key}", why + f"{self.limits.tag_key} and {self.limits.tag_value}")
        return False

    def params_that_fit(self, params: Sequence[Param]) -> list[Param]:
        """The params whose values the target keeps (a longer one is refused here, logged, not sent)."""
        kept = []
        for param in params:
            if len(param.value) <= self.limits.param_value:
                kept.append(param)
                continue
            why = f"a value of {len(param.value)} characters; the target keeps up to {self.limits.param_value}"
            self._refuse(f"param {param.key}", why)
        return kept

    def metric_fits(self, key: str) -> bool:
        """Whether the run has room for this metric name (Azure ML: 50 per run); if not, it is refused, logged."""
        limit = self.limits.metric_keys_per_run
        if key in self._metric_keys or limit is None or len(self._metric_keys) < limit:
            self._metric_keys.add(key)
            return True
        self._refuse(f"metric {key}", f"a run holds up to {limit} metric names")
        return False

    def send(self, *, params: Sequence[Param] = (), tags: Sequence[RunTag] = ()) -> int:
        """Params, then tags, in batches; returns how many the target took."""
        taken = sum(
            self._batch(chunk, lambda items: self._log(params=items)) for chunk in _chunks(params, self.limits.params)
        )
        return taken + sum(
            self._batch(chunk, lambda items: self._log(tags=items)) for chunk in _chunks(tags, self.limits.tags)
        )

    def send_model_params(self, model_id: str, params: Sequence[Param]) -> int:
        """Params onto the target's logged model (an MLflow 3 target); returns how many it took."""
        send = lambda chunk: self.dst.log_model_params(model_id, {p.key: p.value for p in chunk})  # noqa: E731
        return sum(self._batch(chunk, send) for chunk in _chunks(params, self.limits.params))

    def history(self, key: str, pages: Iterator[list[Metric]], *, skip: int) -> int:
        """Send a metric's history after its first ``skip`` points, up to as many as the target keeps a metric;
        returns the points the target took."""
        sent, room = 0, self.limits.points_per_metric
        room = None if room is None else room - skip
        for page in pages:
            if skip >= len(page):
                skip -= len(page)
                continue
            page, skip = page[skip:], 0
            if room is not None and len(page) > room:
                page, room = page[:room], 0  # the rest is not read: one refusal says so
                why = f"a run keeps up to {self.limits.points_per_metric:,} points a metric name"
                self._refuse(f"metric {key}'s points beyond the first {self.limits.points_per_metric:,}", why)
            elif room is not None:
                room -= len(page)
            for chunk in _chunks(page, self.limits.metrics):
                taken = self._batch(chunk, lambda points: self._log(metrics=points), first_refused_ends=True)
                if taken == 0 and sent == 0:
                    return 0  # the metric itself is refused (a per-run limit): the rest of it would be too
                sent += taken
            if room == 0:
                break
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

    def _log(
        self, *, metrics: Sequence[Metric] = (), params: Sequence[Param] = (), tags: Sequence[RunTag] = ()
    ) -> None:
        self.dst.log_batch(self.run_id, metrics=metrics, params=params, tags=tags, synchronous=True)

    def _batch(self, items: list[Any], send: Callable[[list[Any]], None], *, first_refused_ends: bool = False) -> int:
        """Send ``items`` (of one kind) in one call; if refused, one by one. Returns how many the target took."""
        if not items:
            return 0
        try:
            send(items)
            return len(items)
        except MlflowException as exc:
            self._refused_or_raise(exc, _describe(items[0]) if len(items) == 1 else None)
            if len(items) == 1:
                return 0
        taken = 0
        for i, item in enumerate(items):
            one = self._batch([item], send)
            if one == 0 and i == 0 and first_refused_ends:
                return 0  # the first point of a metric refused: the others would be as well
            taken += one
        return taken

    def _refused_or_raise(self, exc: MlflowException, what: str | None) -> None:
        """A 400 about the data is the target's answer to that item (logged); anything else fails the attempt."""
        if exc.error_code not in REFUSALS:
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
