"""The shipped PySpark job, run on local Spark exactly as the spark-local target runs it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shared.executors.batch_spark_local import MARKER, SparkLocalBatchExecutor
from tests.batch.conftest import batch_context, make_frame


@pytest.mark.slow
def test_spark_job_output_matches_pyfunc_predict(tmp_path, registered_model, reference_predict):
    frame = make_frame(3_000, seed=11)
    frame.to_parquet(tmp_path / "input.parquet", row_group_size=1_000)
    messages: list[str] = []
    ctx = batch_context(
        tmp_path,
        f"kind: spark-local\nmaster: 'local[2]'\ndriver_memory: 1g\n"
        f"input: {tmp_path / 'input.parquet'}\noutput: {tmp_path / 'scored-{model_version}'}\n"
        "spark_conf: {spark.sql.shuffle.partitions: '2', spark.ui.enabled: 'false'}",
        registered_model,
        progress=messages.append,
    )

    outcome = SparkLocalBatchExecutor().execute(ctx)

    output = tmp_path / f"scored-{registered_model.version}"
    assert outcome.outputs.to_dict()["rows"] == 3_000
    assert outcome.outputs.to_dict()["output"] == str(output.resolve())
    assert (output / MARKER).is_file()
    scored = pd.read_parquet(output).sort_values("row_id")
    assert scored["row_id"].tolist() == list(range(3_000))
    np.testing.assert_array_equal(scored["prediction"].to_numpy(), reference_predict(frame).astype(float))
    assert set(scored["model_version"]) == {registered_model.version}
    assert any(m.startswith("spark job scored 3,000 rows") for m in messages)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".old"))]

    again = SparkLocalBatchExecutor().execute(ctx)  # a retry after success does not rerun Spark
    assert again.outputs.to_dict()["reused"] is True
    assert again.outputs.to_dict()["rows"] == 3_000
