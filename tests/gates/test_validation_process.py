"""A validation evaluates the models in a process of its own: the model's code sees none of the
reactor's secrets, its failures come back as the step's (redacted), and past timeout_seconds it is
stopped. Real MLflow (a SQLite registry), real models logged from code (tests/batch/behaving_model.py)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest

from shared.domain.actions import VALIDATE
from shared.domain.outputs import ValidateOutputs
from shared.errors import PermanentError
from shared.executors.validate import ValidateExecutor
from tests.batch.behaving_model import BEARER, LEAKY
from tests.batch.conftest import FEATURES, Registered, batch_context, child_settings, make_frame
from tests.batch.test_scoring_process import gone

SECRETS = {"MODELOPS_OPS_TOKEN": "validate-ops-token", "MLFLOW_TRACKING_TOKEN": "validate-tracking-token"}


def validation(tmp_path: Path, extra: str, targets: str, data: Path | None) -> str:
    frame = make_frame(200, seed=5)
    frame["label"] = (frame["f0"] + 0.5 * frame["f1"] > 0).astype(np.int64)
    frame.drop(columns="row_id").to_parquet(tmp_path / "holdout.parquet")
    return (
        f"data: {data or tmp_path / 'holdout.parquet'}\ntargets: {targets}\nmodel_type: classifier\n"
        f"thresholds: {{accuracy_score: {{threshold: 0.8, greater_is_better: true}}}}\n{extra}"
    )


def validate(
    tmp_path: Path,
    model: Registered,
    extra: str = "",
    targets: str = "label",
    data: Path | None = None,
    **kwargs: Any,
) -> ValidateOutputs:
    """The validate step of ``model`` on a 200-row holdout, run as the worker runs it; its outputs."""
    yaml = validation(tmp_path, extra, targets, data)
    ctx = batch_context(tmp_path, yaml, model, kind=VALIDATE, section="validations", target="holdout", **kwargs)
    outputs = ValidateExecutor().execute(ctx).outputs
    assert isinstance(outputs, ValidateOutputs)
    return outputs


def started_pid(messages: list[str]) -> int:
    [pid] = [int(m.group(1)) for line in messages if (m := re.match(r"validation process started \(pid (\d+)", line))]
    return pid


def test_the_models_code_runs_in_a_process_without_the_reactors_secrets(
    tmp_path: Path, behaving: dict[str, Registered], environ_file: Path
) -> None:
    settings = child_settings(**SECRETS, MODEL_SETTING="named", OTHER_SETTING="not named")
    outputs = validate(tmp_path, behaving["environ"], "env: [MODEL_SETTING]", settings=settings)

    seen = json.loads(environ_file.read_text())
    assert seen["pid"] != os.getpid()
    assert not set(SECRETS) & set(seen["environ"]), sorted(seen["environ"])
    assert seen["environ"]["MODEL_SETTING"] == "named" and "OTHER_SETTING" not in seen["environ"]
    assert outputs.candidate_metrics is not None and outputs.candidate_metrics["example_count"] == 200


def test_metrics_are_sklearns_own_and_the_evaluation_is_a_run_of_the_tracking_server(
    tmp_path: Path, registered_model: Registered
) -> None:
    from sklearn.metrics import accuracy_score

    messages: list[str] = []
    outputs = validate(tmp_path, registered_model, progress=messages.append)

    client = mlflow.MlflowClient(tracking_uri=registered_model.tracking_uri)
    location = client.get_model_version_download_uri(registered_model.name, registered_model.version)
    holdout = pd.read_parquet(tmp_path / "holdout.parquet")
    expected = accuracy_score(holdout["label"], mlflow.sklearn.load_model(location).predict(holdout[FEATURES]))
    assert outputs.candidate_metrics is not None and outputs.candidate_run_id is not None
    assert outputs.candidate_metrics["accuracy_score"] == pytest.approx(expected, abs=1e-12)
    assert outputs.passed is True and outputs.rows == 200
    run = client.get_run(outputs.candidate_run_id)
    assert run.data.metrics["accuracy_score"] == outputs.candidate_metrics["accuracy_score"]
    assert run.data.tags["modelops.model"] == f"{registered_model.name}/{registered_model.version}"
    assert run.info.status == "FINISHED"
    assert "confusion_matrix.png" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert started_pid(messages) != os.getpid()
    assert any(m.startswith("validation data ") and m.endswith(": 200 rows") for m in messages)


def test_a_model_that_fails_to_load_fails_the_step_with_its_redacted_log(
    tmp_path: Path, behaving: dict[str, Registered]
) -> None:
    with pytest.raises(PermanentError) as failed:
        validate(tmp_path, behaving["broken"])

    text = str(failed.value)
    assert "models:/behaving/" in text and "failed to load in its validation process" in text
    assert "cannot fetch the weights" in text and "sig=***" in text and "Authorization: ***" in text
    assert "c2VjcmV0LXNpZ25hdHVyZQ" not in text and BEARER.split()[-1] not in text and LEAKY not in text


def test_past_its_timeout_the_validation_process_is_stopped(tmp_path: Path, behaving: dict[str, Registered]) -> None:
    messages: list[str] = []
    with pytest.raises(PermanentError, match="ran over timeout_seconds=3 and was stopped"):
        validate(tmp_path, behaving["slow"], "timeout_seconds: 3", progress=messages.append)

    assert gone(started_pid(messages))


def test_data_without_the_targets_column_is_refused_naming_its_columns(
    tmp_path: Path, registered_model: Registered
) -> None:
    with pytest.raises(PermanentError, match=r"no column 'churned' \(`targets:`\); its columns: f0, f1, f2, f3, label"):
        validate(tmp_path, registered_model, targets="churned")


def test_a_missing_or_malformed_data_file_fails_the_step_naming_the_file(
    tmp_path: Path, registered_model: Registered
) -> None:
    missing = tmp_path / "nowhere.parquet"
    with pytest.raises(PermanentError, match=f"validation data {missing}: no such file"):
        validate(tmp_path, registered_model, data=missing)

    garbled = tmp_path / "garbled.parquet"
    garbled.write_text("not,a,parquet\n")
    with pytest.raises(PermanentError, match=f"validation data {garbled}: not a readable parquet file"):
        validate(tmp_path, registered_model, data=garbled)
