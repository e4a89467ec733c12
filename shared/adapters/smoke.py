"""Smoke test: score the model's own input example against a freshly deployed endpoint."""

from __future__ import annotations

import json
import tempfile
from typing import Any

import requests

from shared.errors import PermanentError, RetryableError
from shared.executors.base import ModelRef


def load_serving_example(model: ModelRef) -> dict[str, Any] | None:
    """The model's saved serving input (MLflow scoring-server JSON), or None if it has none."""
    from mlflow import MlflowClient
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    client = MlflowClient(tracking_uri=model.tracking_uri, registry_uri=model.registry_uri)
    root = client.get_model_version_download_uri(model.name, model.version).rstrip("/")
    with tempfile.TemporaryDirectory(prefix="modelops-smoke-") as tmp:
        # only the metadata and the example files: the model's weights may be gigabytes
        fetch = {"tracking_uri": model.tracking_uri, "registry_uri": model.registry_uri, "dst_path": tmp}
        mlmodel = Model.load(download_artifacts(artifact_uri=f"{root}/MLmodel", **fetch))
        info = mlmodel.saved_input_example_info or {}
        serving_path = info.get("serving_input_path")
        if not serving_path:
            return None
        local = download_artifacts(artifact_uri=f"{root}/{serving_path}", **fetch)
        with open(local, encoding="utf-8") as handle:
            return json.load(handle)


def to_azureml_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """MLflow scoring JSON -> the `input_data` shape Azure ML's MLflow servers accept."""
    if "input_data" in payload:
        return payload
    out: dict[str, Any] = {}
    if "dataframe_split" in payload:
        split = dict(payload["dataframe_split"])
        split.setdefault("index", list(range(len(split.get("data", [])))))
        out["input_data"] = split
    elif "dataframe_records" in payload:
        records = payload["dataframe_records"]
        columns = list(records[0]) if records else []
        out["input_data"] = {
            "columns": columns,
            "index": list(range(len(records))),
            "data": [[row.get(c) for c in columns] for row in records],
        }
    else:
        out["input_data"] = payload.get("inputs", payload.get("instances"))
    if "params" in payload:
        out["params"] = payload["params"]
    return out


def smoke_test(
    url: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    timeout_s: float = 30,
) -> Any:
    """POST the example; return the parsed predictions or raise with the endpoint's answer."""
    try:
        response = requests.post(
            url,
            json=payload,
            headers={"Content-Type": "application/json", **(headers or {})},
            timeout=timeout_s,
        )
    except requests.RequestException as exc:
        raise RetryableError(f"smoke test could not reach {url}: {exc}") from exc
    body = response.text[:2000]
    if response.status_code == 429:
        raise RetryableError(f"smoke test throttled by {url} (429): {body}")
    if response.status_code >= 400:
        raise PermanentError(
            f"smoke test failed: {url} answered {response.status_code} to the model's input example; "
            f"the previous deployment keeps serving. Response: {body}",
            details={"status_code": response.status_code, "response": body},
        )
    try:
        return response.json()
    except ValueError as exc:
        raise PermanentError(
            f"smoke test failed: {url} answered {response.status_code} with a body that is not JSON: {body}",
            details={"status_code": response.status_code, "response": body},
        ) from exc
