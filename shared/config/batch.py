"""Batch-scoring targets (the `batch:` section).

`output` may contain `{model_name}` and `{model_version}`, so each version writes its own result.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.config.base import ChildEnv, ConfigModel

AZURE_DATABRICKS_RESOURCE = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"  # Entra app id of Azure Databricks


class LocalBatch(ConfigModel):
    """Stream a Parquet/CSV input through pyfunc.predict in record batches, in a process of its own."""

    kind: Literal["local"]
    input: str = Field(description="Parquet or CSV file (or directory of Parquet files) to score")
    output: str = Field(description="Parquet file the predictions are written to")
    input_format: Literal["auto", "parquet", "csv"] = Field(
        default="auto", description="auto (from the file extension), parquet or csv"
    )
    batch_rows: int = Field(default=65536, gt=0, description="rows per record batch")
    timeout_seconds: float = Field(default=3600, gt=0, description="stop the scoring process after this long")
    env: ChildEnv = Field(
        default_factory=list,
        description="app settings the scoring process also gets (the model's code runs there); by default it "
        "gets PATH, HOME, locale, TLS trust and MLflow's non-secret settings",
    )


class SparkLocalBatch(ConfigModel):
    """Run the shipped PySpark job (shared/jobs/batch_score_spark.py) on local Spark."""

    kind: Literal["spark-local"]
    input: str = Field(description="Parquet/CSV path (file or directory) to score")
    output: str = Field(description="directory the Parquet predictions are written to")
    input_format: Literal["auto", "parquet", "csv"] = Field(
        default="auto", description="auto (from the path), parquet or csv"
    )
    master: str = Field(default="local[*]", description="Spark master URL, e.g. local[*] or local[2]")
    driver_memory: str = Field(default="2g", description="spark.driver.memory, e.g. 2g")
    feature_columns: list[str] | None = Field(
        default=None, description="columns passed to the model (default: its signature's inputs)"
    )
    result_type: str = Field(default="double", description="Spark type of the prediction column")
    spark_conf: dict[str, str] = Field(default_factory=dict, description="extra Spark settings")
    timeout_seconds: float = Field(default=3600, gt=0, description="kill the job after this long")
    env: ChildEnv = Field(
        default_factory=list,
        description="app settings the job's process also gets (e.g. AZURE_STORAGE_CONNECTION_STRING); "
        "by default it gets PATH, HOME, locale, TLS trust, Java/Spark and MLflow's non-secret settings",
    )


class DatabricksBatch(ConfigModel):
    """Start a Databricks job (e.g. the shipped bundle in databricks/) with jobs.run_now."""

    kind: Literal["databricks"]
    host: str = Field(description="workspace URL, e.g. https://adb-123.4.azuredatabricks.net")
    job_id: int = Field(gt=0, description="id of the job to run (`databricks bundle deploy` prints it)")
    input: str | None = Field(default=None, description="job parameter `input`: table or path to score")
    output: str | None = Field(default=None, description="job parameter `output`: table or path to write")
    job_parameters: dict[str, str] = Field(
        default_factory=dict, description="extra job parameters, e.g. {input_format: csv}"
    )
    auth: Literal["azure-identity", "token"] = Field(
        default="azure-identity",
        description="azure-identity (managed identity in Azure) or token (a PAT, for development)",
    )
    token_setting: str = Field(default="DATABRICKS_TOKEN", description="app setting holding the PAT when auth is token")
    managed_identity_client_id: str | None = Field(
        default=None, description="client id of a user-assigned managed identity (azure-identity)"
    )
    authority_host: str | None = Field(default=None, description="Entra authority for sovereign clouds")
    scope: str = Field(
        default=f"{AZURE_DATABRICKS_RESOURCE}/.default",
        description="Entra scope of the Azure Databricks resource",
    )
    poll_interval_seconds: float = Field(default=60, gt=0, description="seconds between run checks")
    timeout_seconds: float = Field(
        default=24 * 3600, gt=0, description="fail the action if the run is not over after this long"
    )
    http_timeout_seconds: float = Field(default=30, gt=0, description="timeout of one HTTP request")
    retry_timeout_seconds: int = Field(
        default=60, gt=0, description="budget of the SDK's own retries (429/503) per call"
    )
    max_retry_after_seconds: float = Field(
        default=15,
        ge=0,
        description="longer Retry-After waits go back to the ledger (next attempt no earlier than asked)",
    )


BatchConfig = Annotated[LocalBatch | SparkLocalBatch | DatabricksBatch, Field(discriminator="kind")]
