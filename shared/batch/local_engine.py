"""Stream a Parquet/CSV input through a pyfunc model into one Parquet file, in bounded memory.

Memory holds one record batch (plus the reader's small read-ahead) whatever the input size.
The output is written to a temp file beside the target and renamed at the end, so a crash or a
retry never leaves a half-written file where a finished one is expected.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

PREDICTION = "prediction"
MODEL_VERSION = "model_version"
META_PREFIX = "modelops."
WRITE_QUEUE = 2  # scored batches waiting for the writer thread
CSV_BLOCK_BYTES = 8 << 20  # arrow's CSV reader splits on bytes; batches are re-cut to batch_rows

ProgressCallback = Callable[[int, int | None], None]


class Model(Protocol):
    def predict(self, data: pd.DataFrame) -> Any: ...


class InputError(ValueError):
    """The input cannot be read, or its rows do not fit the model; says what to fix."""


@dataclass(frozen=True)
class ScoreResult:
    rows: int
    seconds: float
    output: Path
    batches: int


def input_files(path: Path, input_format: str = "auto") -> tuple[list[Path], str]:
    """The files to read, in a stable order, and their format (parquet or csv)."""
    if not path.exists():
        raise InputError(f"input {path} does not exist; set `input:` to a Parquet or CSV file/dir")
    if path.is_dir():
        files = sorted(
            p
            for p in path.rglob("*")
            if p.is_file() and p.suffix in (".parquet", ".csv") and not p.name.startswith(("_", "."))
        )
        if input_format == "auto":
            input_format = "parquet" if any(p.suffix == ".parquet" for p in files) else "csv"
        files = [p for p in files if p.suffix == f".{input_format}"]
        if not files:
            raise InputError(f"input directory {path} holds no .{input_format} files")
        return files, input_format
    if input_format == "auto":
        input_format = "csv" if path.suffix.lower() in (".csv", ".txt") else "parquet"
    return [path], input_format


def fingerprint(files: list[Path]) -> str:
    """Cheap identity of the input (names, sizes, mtimes): a rerun on changed data is not skipped."""
    parts = [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def read_batches(files: list[Path], input_format: str, batch_rows: int) -> tuple[Iterator[pa.RecordBatch], int | None]:
    """Record batches of at most `batch_rows` rows, and the total row count when cheap to know."""
    if input_format == "parquet":
        total = sum(pq.ParquetFile(p).metadata.num_rows for p in files)
        return _recut(_parquet_batches(files, batch_rows), batch_rows), total
    return _recut(_csv_batches(files), batch_rows), None


def _parquet_batches(files: list[Path], batch_rows: int) -> Iterator[pa.RecordBatch]:
    for path in files:
        with pq.ParquetFile(path) as parquet:
            yield from parquet.iter_batches(batch_size=batch_rows)


def _csv_batches(files: list[Path]) -> Iterator[pa.RecordBatch]:
    options = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    for path in files:
        with pacsv.open_csv(path, read_options=options) as reader:
            try:
                yield from reader
            except pa.ArrowInvalid as exc:
                # types are inferred from the first block; a later block that disagrees lands here
                raise InputError(f"cannot read {path}: {exc}") from exc


def _recut(batches: Iterator[pa.RecordBatch], batch_rows: int) -> Iterator[pa.RecordBatch]:
    for batch in batches:
        for offset in range(0, batch.num_rows, batch_rows):
            yield batch.slice(offset, batch_rows)  # zero-copy


def prediction_columns(predictions: Any, rows: int) -> list[tuple[str, pa.Array]]:
    """Turn whatever pyfunc returned (array, Series, DataFrame, list, dict) into Arrow columns."""
    if isinstance(predictions, dict):
        predictions = pd.DataFrame(predictions)
    if isinstance(predictions, pd.DataFrame):
        if predictions.shape[1] == 1:
            columns = [(PREDICTION, predictions.iloc[:, 0])]
        else:
            columns = [(f"{PREDICTION}_{c}", predictions[c]) for c in predictions.columns]
        out = [(name, pa.Array.from_pandas(series.to_numpy())) for name, series in columns]
    elif isinstance(predictions, pd.Series):
        out = [(PREDICTION, pa.Array.from_pandas(predictions.to_numpy()))]
    else:
        array = np.asarray(predictions)
        if array.ndim == 2 and array.shape[1] == 1:
            array = array.ravel()
        if array.ndim == 2:
            values = pa.array(np.ascontiguousarray(array).ravel())
            out = [(PREDICTION, pa.FixedSizeListArray.from_arrays(values, array.shape[1]))]
        else:
            out = [(PREDICTION, pa.array(array))]
    for name, column in out:
        if len(column) != rows:
            raise InputError(f"the model returned {len(column)} predictions for {rows} rows ({name})")
    return out


def score(
    model: Model,
    input_path: Path,
    output_path: Path,
    *,
    model_version: str,
    batch_rows: int = 65536,
    input_format: str = "auto",
    features: list[str] | None = None,
    metadata: dict[str, str] | None = None,
    progress: ProgressCallback | None = None,
) -> ScoreResult:
    """Score every row of the input, in input order, into `output_path` (Parquet).

    `features`: the columns the model reads (its signature); only those are converted to pandas.
    """
    started = time.perf_counter()
    files, input_format = input_files(input_path, input_format)
    batches, total = read_batches(files, input_format, batch_rows)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    temp = output_path.with_name(f".{output_path.name}.{uuid.uuid4().hex}.tmp")
    footer = {f"{META_PREFIX}{k}": v for k, v in (metadata or {}).items()}
    writer: pq.ParquetWriter | None = None
    rows = count = 0
    try:
        # Reading (Parquet decode) and writing (encode + compress) release the GIL, so one
        # thread each overlaps them with predict; the queues are a couple of batches deep,
        # which keeps memory bounded.
        with ThreadPoolExecutor(1, "batch-read") as reader, ThreadPoolExecutor(1, "batch-write") as out:
            upcoming = reader.submit(next, batches, None)
            writes: deque[Future[None]] = deque()
            while (batch := upcoming.result()) is not None:
                upcoming = reader.submit(next, batches, None)
                scored = _score_batch(model, batch, model_version, features)
                if writer is None:
                    schema = scored.schema.with_metadata({**(scored.schema.metadata or {}), **footer})
                    writer = pq.ParquetWriter(temp, schema, compression="snappy")
                writes.append(out.submit(writer.write_batch, _conform(scored, writer.schema)))
                while len(writes) > WRITE_QUEUE:
                    writes.popleft().result()
                rows += batch.num_rows
                count += 1
                if progress:
                    progress(rows, total)
            for write in writes:
                write.result()
        if writer is None:
            raise InputError(f"input {input_path} has no rows to score")
        writer.close()
        writer = None
        os.replace(temp, output_path)
    finally:
        if writer is not None:
            writer.close()
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()
    return ScoreResult(rows, time.perf_counter() - started, output_path, count)


def _score_batch(model: Model, batch: pa.RecordBatch, model_version: str, features: list[str] | None) -> pa.RecordBatch:
    names = batch.schema.names
    for reserved in (PREDICTION, MODEL_VERSION):
        if reserved in names:
            raise InputError(f"the input already has a column named {reserved!r}; rename it")
    missing = [name for name in features or [] if name not in names]
    if missing:
        raise InputError(f"the input lacks column(s) {', '.join(missing)} the model needs")
    model_input = batch.select(features) if features else batch
    try:
        predictions = model.predict(model_input.to_pandas())
    except InputError:
        raise
    except Exception as exc:
        # schema mismatches and bad values surface here as MlflowException / ValueError
        raise InputError(f"the model rejected a batch of the input: {exc}") from exc
    names = list(names)
    arrays = list(batch.columns)
    for name, column in prediction_columns(predictions, batch.num_rows):
        names.append(name)
        arrays.append(column)
    names.append(MODEL_VERSION)
    # one dictionary entry and zeroed indices: constant cost per batch, stored as a string column
    indices = pa.array(np.zeros(batch.num_rows, dtype=np.int32))
    arrays.append(pa.DictionaryArray.from_arrays(indices, pa.array([model_version])))
    return pa.RecordBatch.from_arrays(arrays, names=names)


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """Later batches may infer another type (int vs float predictions); write the first one's."""
    if batch.schema.remove_metadata().equals(schema.remove_metadata()):
        return batch
    try:
        return batch.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError) as exc:
        raise InputError(f"a batch does not match the first batch's columns: {exc}") from exc
