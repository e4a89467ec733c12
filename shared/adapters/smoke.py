"""Smoke test: score the model's own input example against a freshly deployed endpoint.

The example itself comes from shared.adapters.mlflow_models.serving_example."""

from __future__ import annotations

from typing import Any

import requests

from shared.errors import PermanentError, RetryableError


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
        # an online endpoint answers 424 when the model container failed, with the container's status here
        model_status = response.headers.get("ms-azureml-model-error-statuscode")
        answered = f"{response.status_code}" + (f" (the model answered {model_status})" if model_status else "")
        raise PermanentError(
            f"smoke test failed: {url} answered {answered} to the model's input example; "
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
