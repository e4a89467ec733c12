"""Batch-scoring targets (the `batch:` section)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.config.base import ConfigModel


class LocalBatch(ConfigModel):
    """Stream a Parquet/CSV input through pyfunc.predict in record batches."""

    kind: Literal["local"]
    input: str = Field(description="Parquet or CSV file (or directory of Parquet files) to score")
    output: str = Field(description="Parquet file the predictions are written to")
    batch_rows: int = Field(default=65536, gt=0, description="rows per record batch")


BatchConfig = Annotated[LocalBatch, Field(discriminator="kind")]
