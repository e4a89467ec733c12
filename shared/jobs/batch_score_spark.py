"""Score a table or path with a registered MLflow model on Spark, with mlflow.pyfunc.spark_udf.

Runs as a Databricks job task (spark_python_task, see databricks/) or locally:

    python shared/jobs/batch_score_spark.py --master 'local[*]' \\
        --model-uri models:/churn/3 --input in.parquet --output out/

Self-contained on purpose: it is uploaded to the workspace alone, so it imports nothing from
this repository. Output = the input columns + `prediction` + `model_version`. The last stdout
line starting with RESULT_PREFIX is a JSON summary (rows, output, seconds) for the caller.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from typing import Any

RESULT_PREFIX = "MODELOPS_RESULT "
_MODELS_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-uri", required=True, help="e.g. models:/churn/3")
    parser.add_argument("--input", required=True, help="table name, or path (file/dir/dbfs:/...)")
    parser.add_argument("--output", required=True, help="table name, or path to write Parquet to")
    parser.add_argument("--input-format", default="auto", choices=["auto", "parquet", "csv", "delta", "table"])
    parser.add_argument("--output-format", default="auto", choices=["auto", "parquet", "delta", "table"])
    parser.add_argument("--model-name", default="", help="recorded in the output (default: from the URI)")
    parser.add_argument("--model-version", default="", help="recorded in the output (default: from the URI)")
    parser.add_argument("--registry-uri", default="", help="e.g. databricks-uc; empty: the default")
    parser.add_argument("--feature-columns", default="", help="comma-separated; default: the signature's")
    parser.add_argument("--result-type", default="double", help="Spark type of the prediction column")
    parser.add_argument("--mode", default="overwrite", choices=["overwrite", "append", "error"])
    parser.add_argument("--master", default="", help="Spark master for local runs, e.g. local[*]")
    parser.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--end-with-stdin", action="store_true", help="exit when stdin closes (a local caller holds it open)"
    )
    return parser.parse_args(argv)


def end_with_stdin() -> None:
    """The local caller holds our stdin open while it lives: EOF means it died, and so do we (the
    JVM follows: PySpark's gateway exits when its own stdin, held by this process, closes)."""

    def watch() -> None:
        while os.read(0, 4096):  # the raw fd: a daemon thread on sys.stdin would abort the shutdown
            pass
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def is_path(location: str) -> bool:
    """Table names look like catalog.schema.table; paths have a slash or a scheme."""
    return "/" in location or ":" in location


def read_input(spark: Any, location: str, fmt: str) -> Any:
    if fmt == "auto" and not is_path(location):
        fmt = "table"
    elif fmt == "auto":
        fmt = "csv" if location.lower().endswith(".csv") else "parquet"
    if fmt == "table":
        return spark.read.table(location)
    if fmt == "csv":
        return spark.read.option("header", True).option("inferSchema", True).csv(location)
    return spark.read.format(fmt).load(location)


def write_output(frame: Any, location: str, fmt: str, mode: str) -> Any:
    """Write, then return a reader of what was written (counting it reads only metadata)."""
    spark = frame.sparkSession
    if fmt == "auto":
        fmt = "parquet" if is_path(location) else "table"
    if fmt == "table":
        frame.write.mode(mode).saveAsTable(location)
        return spark.read.table(location)
    frame.write.mode(mode).format(fmt).save(location)
    return spark.read.format(fmt).load(location)


def feature_columns(model_uri: str, given: str, columns: list[str]) -> list[str]:
    if given:
        return [c.strip() for c in given.split(",") if c.strip()]
    import mlflow.models

    signature = mlflow.models.get_model_info(model_uri).signature
    if signature is not None and signature.inputs.has_input_names():
        return list(signature.inputs.input_names())
    return columns


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.end_with_stdin:
        end_with_stdin()
    started = time.monotonic()
    import mlflow
    import mlflow.pyfunc
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F  # noqa: N812 - the PySpark convention

    builder = SparkSession.builder.appName("modelops-batch-score")
    if args.master:
        builder = builder.master(args.master)
    for setting in args.spark_conf:
        key, _, value = setting.partition("=")
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    if args.registry_uri:
        mlflow.set_registry_uri(args.registry_uri)  # one job per process: global state is ours

    parsed = _MODELS_URI.match(args.model_uri)
    version = args.model_version or (parsed.group("version") if parsed else "")
    frame = read_input(spark, args.input, args.input_format)
    features = feature_columns(args.model_uri, args.feature_columns, frame.columns)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        print(f"input {args.input} lacks column(s) {', '.join(missing)} the model needs", file=sys.stderr)
        return 2
    # env_manager="local": the cluster (or this venv) already has the model's libraries
    predict = mlflow.pyfunc.spark_udf(spark, args.model_uri, env_manager="local", result_type=args.result_type)
    scored = frame.withColumn("prediction", predict(F.struct(*[F.col(c) for c in features])))
    scored = scored.withColumn("model_version", F.lit(version))
    written = write_output(scored, args.output, args.output_format, args.mode)
    summary = {
        "rows": written.count(),
        "output": args.output,
        "model_uri": args.model_uri,
        "model_version": version,
        "seconds": round(time.monotonic() - started, 3),
    }
    print(RESULT_PREFIX + json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
