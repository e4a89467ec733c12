"""The `batch:` section: three target kinds, validated with errors that name the key and the fix."""

from __future__ import annotations

import pytest

from shared.config.batch import DatabricksBatch, LocalBatch, SparkLocalBatch
from shared.config.loader import load_config
from shared.errors import ConfigError


def load(tmp_path, body: str):
    path = tmp_path / "modelops.yaml"
    path.write_text("batch:\n" + body)
    return load_config(path, env={"DATA": "/data"})


def test_each_kind_loads_with_its_defaults(tmp_path):
    config = load(
        tmp_path,
        "  here: {kind: local, input: '${DATA}/in.csv', output: '/o/{model_name}-{model_version}.parquet'}\n"
        "  spark: {kind: spark-local, input: /in, output: /out}\n"
        "  nightly: {kind: databricks, host: 'https://adb-1.2.azuredatabricks.net', job_id: 7}\n",
    )
    local, spark, remote = config.batch["here"], config.batch["spark"], config.batch["nightly"]
    assert isinstance(local, LocalBatch) and local.input == "/data/in.csv"
    assert isinstance(spark, SparkLocalBatch) and spark.master == "local[*]"
    assert isinstance(remote, DatabricksBatch)
    assert remote.auth == "azure-identity"
    assert remote.scope == "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default"


def test_a_missing_job_id_names_the_key(tmp_path):
    with pytest.raises(ConfigError) as error:
        load(tmp_path, "  nightly: {kind: databricks, host: 'https://adb-1.2.azuredatabricks.net'}\n")
    assert "batch.nightly.job_id: required key is missing" in str(error.value)


def test_an_unknown_auth_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"batch\.nightly\.auth"):
        load(tmp_path, "  nightly: {kind: databricks, host: 'https://h', job_id: 7, auth: password}\n")


def test_an_unknown_kind_lists_the_known_ones(tmp_path):
    with pytest.raises(ConfigError, match="spark-local"):
        load(tmp_path, "  nightly: {kind: dask, input: a, output: b}\n")
