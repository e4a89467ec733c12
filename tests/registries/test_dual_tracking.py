"""Dual tracking between two real `mlflow server`s: the copy's run carries the source's training run (name,
params, full metric histories, user tags, datasets), and a run-less MLflow 3 logged-model version copies
with the logged model's params and metrics."""

from __future__ import annotations

import json
import re
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric

from shared.adapters import run_mirror
from shared.adapters.run_limits import MLFLOW_LIMITS
from shared.adapters.run_mirror import MIRROR_TAG, mirror, tag_for_target
from shared.cli.main import main
from shared.executors.base import ActionContext
from shared.executors.register import RegisterExecutor
from shared.lineage import KEY_TAG
from shared.local.mlflow_server import MlflowServer
from tests.registries.conftest import register_context
from tests.spine.apptest import MLFLOW_SECRET, make_app
from tests.support import mlflow_delivery, train_and_register, unique

T0 = 1_780_000_000_000  # ms: fixed timestamps, so equal histories are equal to the millisecond


def _config(source: MlflowServer, target: MlflowServer) -> str:
    return (
        f'sources:\n  mlflow: {{tracking_uri: "{source.url}"}}\n'
        f'registries:\n  team-b: {{kind: mlflow, tracking_uri: "{target.url}"}}\n'
    )


def _params(source: MlflowServer) -> dict[str, str]:
    return {"source": "mlflow", "source_tracking_uri": source.url}


def _context(
    tmp_path: Path, source: MlflowServer, target: MlflowServer, name: str, version: str, progress: Any = None
) -> ActionContext:
    """The register step copying NAME/VERSION from ``source`` into ``target`` (registry team-b)."""
    ctx = register_context(tmp_path, _config(source, target), name, version, _params(source), target="team-b")
    ctx.progress = progress or ctx.progress
    return ctx


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, int, float]]:
    return [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)]


def training_run(url: str, name: str) -> tuple[str, str, Any]:
    """A registered version whose run has params, a 5-step loss, a final accuracy, a user tag, tags that
    describe where it ran, and a dataset input. Returns (version, run id, input example)."""
    version, example = train_and_register(url, name, accuracy=0.93, pip_requirements=["scikit-learn", "pandas"])
    src = MlflowClient(url)
    run_id = src.get_model_version(name, version).run_id
    assert run_id
    src.log_batch(
        run_id,
        metrics=[Metric("loss", 1.0 / (step + 1), T0 + step * 1000, step) for step in range(5)],
        params=[],
        tags=[],
    )
    src.log_batch(run_id, params=[mlflow.entities.Param("alpha", "0.5"), mlflow.entities.Param("layers", "3")])
    src.set_tag(run_id, "team", "fraud")
    src.set_tag(run_id, "mlflow.user", "alice")
    src.set_tag(run_id, "mlflow.source.name", "train.py")
    src.set_tag(run_id, "mlflow.log-model.history", f'[{{"run_id": "{run_id}"}}]')
    dataset = Dataset(name="churn-train", digest="d1g35t", source_type="local", source="/data/churn.parquet")
    src.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "training")])])
    return version, run_id, example


def runless_version(url: str, name: str, model: Any, params: dict[str, str]) -> tuple[Any, Any]:
    """A version registered from an MLflow 3 logged model made outside any run: (its LoggedModel, the version)."""
    src = MlflowClient(url)
    experiment = src.get_experiment_by_name("tests") or src.get_experiment(src.create_experiment("tests"))
    mlflow.set_tracking_uri(url)
    try:
        mlflow.set_experiment(experiment_id=experiment.experiment_id)
        info = mlflow.sklearn.log_model(model, name="lm", params=params, pip_requirements=["scikit-learn"])
        assert mlflow.active_run() is None  # no run: the model stands alone
    finally:
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]
    src.create_registered_model(name)
    mv = src.create_model_version(name, source=info.model_uri, model_id=info.model_id)
    assert not mv.run_id and mv.source == f"models:/{info.model_id}"
    return src.get_logged_model(info.model_id), mv


def half_copied(src: MlflowClient, dst: MlflowClient, points: list[Metric]) -> tuple[str, str]:
    """A source run with ``points`` and a target run an attempt left with the first 1,200 of them (no mirror
    tag written): (source run, target run)."""
    experiment = src.get_experiment_by_name("tests") or src.get_experiment(src.create_experiment("tests"))
    source_run = src.create_run(experiment.experiment_id).info.run_id
    for start in range(0, len(points), 1000):
        src.log_batch(source_run, metrics=points[start : start + 1000])
    target_experiment = dst.get_experiment_by_name("copies") or dst.get_experiment(dst.create_experiment("copies"))
    target_run = dst.create_run(target_experiment.experiment_id, tags={KEY_TAG: unique("key")}).info.run_id
    dst.log_batch(target_run, metrics=points[:1000])
    dst.log_batch(target_run, metrics=points[1000:1200])
    return source_run, target_run


def created(name: str, version: str, run_id: str | None) -> dict[str, Any]:
    """The MLflow webhook's model_version.created envelope."""
    data: dict[str, Any] = {"name": name, "version": version, "source": "s", "run_id": run_id, "tags": {}}
    return {"entity": "model_version", "action": "created", "timestamp": "2026-12-07T10:00:00+00:00", "data": data}


class TestTheTrainingRunTravelsWithTheCopy:
    def test_name_params_histories_tags_and_datasets_arrive_once(
        self, tmp_path: Path, source_server: MlflowServer, mlflow_server: MlflowServer
    ) -> None:
        name = unique("dual")
        version, src_run_id, _ = training_run(source_server.url, name)
        ctx = register_context(
            tmp_path, _config(source_server, mlflow_server), name, version, _params(source_server), target="team-b"
        )

        first = RegisterExecutor().execute(ctx).outputs.to_dict()

        src, dst = MlflowClient(source_server.url), MlflowClient(mlflow_server.url)
        copy = dst.get_model_version(name, first["model_version"])
        assert copy.run_id == first["run_id"] and copy.run_id != src_run_id
        source_run, copy_run = src.get_run(src_run_id), dst.get_run(copy.run_id)
        assert copy_run.info.run_name == source_run.info.run_name
        assert copy_run.data.params == {"alpha": "0.5", "layers": "3"}
        assert copy_run.data.metrics == source_run.data.metrics == {"accuracy": 0.93, "loss": 0.2}
        assert _history(dst, copy.run_id, "loss") == _history(src, src_run_id, "loss")
        assert len(_history(dst, copy.run_id, "loss")) == 5
        tags = copy_run.data.tags
        assert tags["team"] == "fraud"
        # what describes where the source ran is kept as the source's; nothing claims it of the target
        assert tags["modelops.source.mlflow.user"] == "alice" and tags.get("mlflow.user") != "alice"
        assert tags["modelops.source.mlflow.source.name"] == "train.py" and "mlflow.source.name" not in tags
        assert "mlflow.log-model.history" not in tags
        assert tags["modelops.source_run_id"] == src_run_id == copy.tags["modelops.source_run_id"]
        assert [(d.dataset.name, d.dataset.digest) for d in copy_run.inputs.dataset_inputs] == [
            ("churn-train", "d1g35t")
        ]
        assert (first["params_copied"], first["metrics_copied"], first["metric_points_copied"]) == (2, 2, 6)
        assert first["run_items_refused"] == 0

        # a redelivered event, and a forced re-run (its outputs start empty): the copy is found, nothing added
        for _ in range(2):
            again = (
                RegisterExecutor()
                .execute(
                    register_context(
                        tmp_path,
                        _config(source_server, mlflow_server),
                        name,
                        version,
                        _params(source_server),
                        target="team-b",
                    )
                )
                .outputs.to_dict()
            )
            assert again["reused"] is True and again["model_version"] == first["model_version"]
            assert again["metric_points_copied"] == 6 and again["params_copied"] == 2
        assert len(dst.search_model_versions(f"name='{name}'")) == 1
        assert _history(dst, copy.run_id, "loss") == _history(src, src_run_id, "loss")

    def test_an_interrupted_mirror_resumes_after_the_points_the_target_holds(
        self, source_server: MlflowServer, mlflow_server: MlflowServer
    ) -> None:
        src, dst = MlflowClient(source_server.url), MlflowClient(mlflow_server.url)
        # an earlier attempt got 1,200 points across before it died (no mirror tag written)
        source_run, target_run = half_copied(src, dst, [Metric("loss", float(i), T0 + i, i) for i in range(2500)])

        counts = mirror(src, dst, target_run, run_id=source_run, model_id=None, limits=MLFLOW_LIMITS)

        assert counts.points == 2500
        assert _history(dst, target_run, "loss") == _history(src, source_run, "loss")
        assert dst.get_run(target_run).data.tags[MIRROR_TAG] == "params=0 metrics=1 points=2500 refused=0"
        # the recorded counts answer a second call, which sends nothing
        started = time.perf_counter()
        assert mirror(src, dst, target_run, run_id=source_run, model_id=None, limits=MLFLOW_LIMITS) == counts
        assert time.perf_counter() - started < 5

    def test_held_points_are_skipped_not_sent_again(
        self, source_server: MlflowServer, mlflow_server: MlflowServer
    ) -> None:
        """The target's held points are counted, not compared: were they sent again, the target would hold more."""
        src, dst = MlflowClient(source_server.url), MlflowClient(mlflow_server.url)
        experiment = src.get_experiment_by_name("tests") or src.get_experiment(src.create_experiment("tests"))
        source_run = src.create_run(experiment.experiment_id).info.run_id
        src.log_batch(source_run, metrics=[Metric("loss", float(i), T0 + i, i) for i in range(5)])
        target_experiment = dst.get_experiment_by_name("copies") or dst.get_experiment(dst.create_experiment("copies"))
        target_run = dst.create_run(target_experiment.experiment_id).info.run_id
        dst.log_batch(target_run, metrics=[Metric("loss", -1.0, T0 - 10 + i, i) for i in range(2)])

        mirror(src, dst, target_run, run_id=source_run, model_id=None, limits=MLFLOW_LIMITS)

        held = _history(dst, target_run, "loss")
        assert len(held) == 5 and [v for _, _, v in held] == [-1.0, -1.0, 2.0, 3.0, 4.0]


class TestRunlessLoggedModelVersions:
    def test_a_logged_model_without_a_run_copies_as_a_logged_model_with_its_params_and_metrics(
        self, tmp_path: Path, source_server: MlflowServer, mlflow_server: MlflowServer
    ) -> None:
        import numpy as np
        from sklearn.linear_model import LinearRegression

        name = unique("runless")
        x = pd.DataFrame(np.random.default_rng(3).normal(size=(32, 2)), columns=["a", "b"])
        model = LinearRegression().fit(x, x["a"] * 3 - x["b"])
        info, mv = runless_version(source_server.url, name, model, {"alpha": "0.1", "solver": "lsqr"})
        src = MlflowClient(source_server.url)
        evaluation = src.create_run(info.experiment_id).info.run_id  # an evaluation's metric, linked to the model
        rmse = Metric("rmse", 0.25, T0, 0, model_id=info.model_id, dataset_name="holdout", dataset_digest="h0")
        src.log_batch(evaluation, metrics=[rmse])
        said: list[str] = []

        def copy() -> dict[str, Any]:
            ctx = _context(tmp_path, source_server, mlflow_server, name, str(mv.version), said.append)
            return RegisterExecutor().execute(ctx).outputs.to_dict()

        out = copy()

        # the target is an MLflow 3 server: the copy is a logged model of its own, registered from it
        dst = MlflowClient(mlflow_server.url)
        copied = dst.get_model_version(name, out["model_version"])
        # (an OSS server answers the version's model_id in its source only)
        target_id = run_mirror.model_id_of(copied.source)
        assert target_id and target_id != info.model_id and copied.model_id in (None, target_id)
        assert copied.tags["modelops.source_model_id"] == info.model_id and "modelops.source_run_id" not in copied.tags
        target_model = dst.get_logged_model(target_id)
        assert target_model.params == {"alpha": "0.1", "solver": "lsqr"}
        assert [
            (m.key, m.value, m.step, m.timestamp, m.dataset_name, m.dataset_digest) for m in target_model.metrics or []
        ] == [("rmse", 0.25, 0, T0, "holdout", "h0")]
        assert target_model.status.to_proto() == mlflow.entities.LoggedModelStatus.READY.to_proto()
        assert target_model.tags["modelops.source_model_id"] == info.model_id
        # the copy's run is the logged model's source run: it holds the action key, the lineage and the metric
        assert target_model.source_run_id == copied.run_id
        copy_run = dst.get_run(str(copied.run_id))
        assert copy_run.data.metrics == {"rmse": 0.25} and copy_run.data.params == {}
        assert (out["params_copied"], out["metrics_copied"], out["metric_points_copied"]) == (2, 1, 1)
        assert any(f"the copy's logged model {target_id}" in m for m in said)
        local = mlflow.artifacts.download_artifacts(
            dst.get_model_version_download_uri(name, copied.version),
            dst_path=str(tmp_path / "c"),
            tracking_uri=mlflow_server.url,
        )
        predicted = mlflow.pyfunc.load_model(local).predict(x)
        pd.testing.assert_series_equal(pd.Series(predicted), pd.Series(model.predict(x)))

        # redelivered: the copy is found, and no second logged model or version is made
        again = copy()
        assert again["reused"] is True and again["model_version"] == out["model_version"]
        experiment_id = copy_run.info.experiment_id
        assert len(dst.search_logged_models([experiment_id])) == 1
        assert len(dst.search_model_versions(f"name='{name}'")) == 1

    def test_an_attempt_that_died_after_making_the_logged_model_is_resumed_in_it(
        self, tmp_path: Path, source_server: MlflowServer, mlflow_server: MlflowServer
    ) -> None:
        from sklearn.dummy import DummyRegressor

        name = unique("runless-resume")
        _, mv = runless_version(source_server.url, name, DummyRegressor().fit([[0.0]], [1.0]), {"k": "1"})

        def attempt(progress: Any) -> Any:
            return RegisterExecutor().execute(
                _context(tmp_path, source_server, mlflow_server, name, mv.version, progress)
            )

        def dies_uploading(message: str) -> None:
            if message.startswith("uploading"):
                raise KeyboardInterrupt("the worker died mid-copy")  # not an error the copy would catch

        with pytest.raises(KeyboardInterrupt):
            attempt(dies_uploading)
        out = attempt(lambda message: None).outputs.to_dict()

        dst = MlflowClient(mlflow_server.url)
        copied = dst.get_model_version(name, out["model_version"])
        run = dst.get_run(str(copied.run_id))
        [only] = dst.search_logged_models(
            [run.info.experiment_id], filter_string=f"source_run_id = '{run.info.run_id}'"
        )
        assert copied.source == f"models:/{only.model_id}" and only.params == {"k": "1"}
        assert len(dst.search_model_versions(f"name='{name}'")) == 1


class TestWhichTagsTravel:
    def test_user_tags_travel_source_facts_are_renamed_and_lineage_stays_behind(self) -> None:
        assert tag_for_target("team") == "team"
        assert tag_for_target("mlflow.note.content") == "mlflow.note.content"  # the run's description
        assert tag_for_target("mlflow.user") == "modelops.source.mlflow.user"
        assert tag_for_target("mlflow.databricks.jobRunID") == "modelops.source.mlflow.databricks.jobRunID"
        assert tag_for_target("mlflow.log-model.history") is None
        # a copy of a copy: its run's action key, lineage and counts would claim this copy's
        assert tag_for_target("modelops.action_key") is None and tag_for_target("modelops.run_mirror") is None


class TestThroughTheReactor:
    def test_a_redelivered_event_and_a_forced_replay_change_nothing_and_the_cli_shows_the_counts(
        self,
        tmp_path: Path,
        source_server: MlflowServer,
        mlflow_server: MlflowServer,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        for setting in ("MODELOPS_CONFIG", "MODELOPS_STATE_DIR", "MLFLOW_TRACKING_URI"):
            monkeypatch.delenv(setting, raising=False)
        name = unique("dual-cli")
        version, src_run_id, _ = training_run(source_server.url, name)
        rules = "rules:\n  - name: copy\n    on: model_version.created\n    do: [{register: team-b}]\n"
        client, reactor = make_app(tmp_path, config=(_config(source_server, mlflow_server) + rules).replace("%", "%%"))
        body, headers = mlflow_delivery(MLFLOW_SECRET, created(name, version, src_run_id))
        first = client.post("/api/hooks/mlflow", content=body, headers=headers).json()
        [done] = reactor.worker().run_until_done(first["action_ids"], timeout=240)
        assert done.status == "succeeded", done.error
        dst, src = MlflowClient(mlflow_server.url), MlflowClient(source_server.url)
        [copy] = dst.search_model_versions(f"name='{name}'")
        history = _history(src, src_run_id, "loss")
        assert _history(dst, str(copy.run_id), "loss") == history

        # the sender's redelivery is the same event; an operator's forced replay runs the copy again
        again = client.post("/api/hooks/mlflow", content=body, headers=headers).json()
        assert again["duplicate"] is True and again["event_id"] == first["event_id"]
        state = ["--state-dir", str(tmp_path / "state"), "--config", str(tmp_path / "modelops.yaml")]
        assert main(["replay", first["event_id"], "--force", "--wait", *state, "--quiet"]) == 0
        assert [str(mv.version) for mv in dst.search_model_versions(f"name='{name}'")] == [str(copy.version)]
        assert _history(dst, str(copy.run_id), "loss") == history and len(history) == 5

        # `modelops actions ID`: the counts among the outputs, the mirror in the action's log
        capsys.readouterr()
        assert main(["actions", done.id, *state, "-o", "json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        counts = {k: shown["outputs"][k] for k in ("params_copied", "metrics_copied", "metric_points_copied")}
        assert counts == {"params_copied": 2, "metrics_copied": 2, "metric_points_copied": 6}
        assert shown["outputs"]["run_items_refused"] == 0
        assert any(line["message"].startswith(f"mirrored the source run {src_run_id}") for line in shown["log"])
        assert main(["actions", done.id, *state]) == 0
        table = capsys.readouterr().out
        assert re.search(r"^metric_points_copied\s+6$", table, re.M) and re.search(r"^params_copied\s+2$", table, re.M)


class TestTargetLimits:
    def test_a_history_longer_than_a_target_keeps_is_cut_there_with_one_refusal_logged(
        self, source_server: MlflowServer, mlflow_server: MlflowServer
    ) -> None:
        """Azure ML keeps 1 million points a metric name (its service limits); here a target that keeps 2,500,
        across the 1,000-point pages written and a resumed attempt that already holds 1,200."""
        src, dst = MlflowClient(source_server.url), MlflowClient(mlflow_server.url)
        points = [Metric("loss", float(i), T0 + i, i) for i in range(3000)]
        source_run, target_run = half_copied(src, dst, points)
        said: list[str] = []

        limits = replace(MLFLOW_LIMITS, points_per_metric=2500)
        counts = mirror(src, dst, target_run, run_id=source_run, model_id=None, limits=limits, progress=said.append)

        assert (counts.points, counts.refused) == (2500, 1)
        assert _history(dst, target_run, "loss") == [(m.step, m.timestamp, m.value) for m in points[:2500]]
        assert [m for m in said if m.startswith("the target refused")] == [
            "the target refused metric loss's points beyond the first 2,500: a run keeps up to 2,500 points a metric"
            " name"
        ]
