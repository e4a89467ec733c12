"""Dual tracking into an Azure ML workspace (the contract server, its MLflow endpoint held to the service's
documented limits): the training run arrives in batches the workspace accepts, and what it refuses is
logged item by item while the copy succeeds."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from shared.adapters.azureml_workspace import mlflow_tracking_uri
from shared.adapters.run_limits import AZUREML_LIMITS
from shared.adapters.run_mirror import mirror
from shared.config.registries import AzureMLRegistry
from shared.executors.register import RegisterExecutor
from shared.local.mlflow_server import MlflowServer
from tests.contract.aml_mlflow_limits import METRIC_NAMES_PER_RUN, METRICS_PER_BATCH, PARAMS_PER_RUN
from tests.contract.credentials import StaticTokenCredential
from tests.contract.https import TestCA
from tests.registries.conftest import AmlWorkspace, aml_registry_yaml, register_context
from tests.registries.test_dual_tracking import T0, training_run
from tests.support import unique


def _config(source: MlflowServer, aml: AmlWorkspace) -> str:
    return f'sources:\n  mlflow: {{tracking_uri: "{source.url}"}}\nregistries:\n' + aml_registry_yaml(aml.url)


def _history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, int, float]]:
    return [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)]


class TestDualTrackingIntoAzureML:
    def test_the_run_arrives_within_the_workspace_limits_and_refusals_do_not_fail_the_copy(
        self,
        tmp_path: Path,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        credential: StaticTokenCredential,
        trust_test_ca: TestCA,
    ) -> None:
        name = unique("dual-aml")
        version, src_run_id, _ = training_run(source_server.url, name)
        src = MlflowClient(source_server.url)
        src.log_batch(src_run_id, metrics=[Metric("lr", 0.1 / (i + 1), T0 + i, i) for i in range(600)])
        extra = [Param(f"feature_{i:03d}", "on") for i in range(PARAMS_PER_RUN + 3)]  # 205 with alpha, layers
        for start in range(0, len(extra), 100):
            src.log_batch(src_run_id, params=extra[start : start + 100])
        src.set_tag(src_run_id, "notes", "x" * 1500)  # Azure ML keeps tag values up to 1,000 characters
        # ...and 50 metric names a run: with loss, lr and accuracy, the last 3 of these 50 are refused up front
        src.log_batch(src_run_id, metrics=[Metric(f"z_{i:02d}", float(i), T0, 0) for i in range(50)])
        ctx = register_context(
            tmp_path,
            _config(source_server, aml),
            name,
            version,
            {"source": "mlflow", "source_tracking_uri": source_server.url},
        )
        uri = mlflow_tracking_uri(ctx.target(AzureMLRegistry), credential=credential)
        said: list[str] = []
        ctx.progress = said.append  # the action's log, as `modelops actions ID` shows it

        out = RegisterExecutor().execute(ctx).outputs.to_dict()

        workspace = MlflowClient(tracking_uri=uri, registry_uri=uri)
        copy = workspace.get_model_version(name, out["model_version"])
        assert copy.run_id
        run = workspace.get_run(copy.run_id)
        assert run.info.run_name == src.get_run(src_run_id).info.run_name
        assert run.data.tags["team"] == "fraud" and "notes" not in run.data.tags
        assert len(run.data.params) == PARAMS_PER_RUN and run.data.params["alpha"] == "0.5"
        for key in ("loss", "lr", "accuracy"):
            assert _history(workspace, copy.run_id, key) == _history(src, src_run_id, key)
        batches = [b for b in aml.contract.batches if b["run_id"] == copy.run_id]
        assert max(b["metrics"] for b in batches) == METRICS_PER_BATCH  # 600 points in pages of 250
        assert sum(b["metrics"] for b in batches if not b["refused"]) == 606 + 47
        # the params beyond 200 (a limit the page does not give): refused by the workspace, then tried one by one;
        # no batch was refused for what the page documents (metric rows, tag lengths, metric names)
        assert all(b["params"] for b in batches if b["refused"]) and any(b["refused"] for b in batches)
        assert set(run.data.metrics) == {"loss", "lr", "accuracy"} | {f"z_{i:02d}" for i in range(47)}
        assert out["params_copied"] == PARAMS_PER_RUN and out["metric_points_copied"] == 606 + 47
        assert out["metrics_copied"] == METRIC_NAMES_PER_RUN
        assert out["run_items_refused"] == 9  # the tag, 5 params and 3 metrics beyond the limits, each one logged:
        refusals = [m for m in said if m.startswith("the target refused")]
        assert len(refusals) == 9 and any("tag notes" in m for m in refusals)
        assert sum("FieldName=Parameters, Limit=200" in m for m in refusals) == 5
        assert [m.split(":")[0] for m in refusals if "metric names" in m] == [
            f"the target refused metric z_{i}" for i in (47, 48, 49)
        ]

        # redelivered: the copy is found and its run is not written again
        before = len(aml.contract.batches)
        again = RegisterExecutor().execute(
            register_context(
                tmp_path,
                _config(source_server, aml),
                name,
                version,
                {"source": "mlflow", "source_tracking_uri": source_server.url},
            )
        )
        assert again.outputs.to_dict()["reused"] is True and again.outputs.to_dict()["metric_points_copied"] == 653
        assert len(aml.contract.batches) == before

    def test_a_resumed_mirror_sends_only_the_points_the_workspace_lacks(
        self,
        source_server: MlflowServer,
        aml: AmlWorkspace,
        credential: StaticTokenCredential,
        trust_test_ca: TestCA,
        tmp_path: Path,
    ) -> None:
        src = MlflowClient(source_server.url)
        experiment = src.get_experiment_by_name("tests") or src.get_experiment(src.create_experiment("tests"))
        source_run = src.create_run(experiment.experiment_id).info.run_id
        points = [Metric("loss", float(i), T0 + i, i) for i in range(700)]
        src.log_batch(source_run, metrics=points)
        ctx = register_context(
            tmp_path,
            _config(source_server, aml),
            "m",
            "1",
            {"source": "mlflow", "source_tracking_uri": source_server.url},
        )
        uri = mlflow_tracking_uri(ctx.target(AzureMLRegistry), credential=credential)
        workspace = MlflowClient(tracking_uri=uri, registry_uri=uri)
        target_experiment = workspace.get_experiment_by_name("resume") or workspace.get_experiment(
            workspace.create_experiment("resume")
        )
        target_run = workspace.create_run(target_experiment.experiment_id).info.run_id
        workspace.log_batch(target_run, metrics=points[:250])  # what an attempt that died sent
        workspace.log_batch(target_run, metrics=points[250:450])
        before = len(aml.contract.batches)

        counts = mirror(src, workspace, target_run, run_id=source_run, model_id=None, limits=AZUREML_LIMITS)

        sent = [b for b in aml.contract.batches[before:] if b["run_id"] == target_run]
        assert sum(b["metrics"] for b in sent) == 250 and counts.points == 700
        assert _history(workspace, target_run, "loss") == _history(src, source_run, "loss")
