"""The scoring script of an ACI / AKS web service (azureml-core SDK v1), run by Azure ML's inference
server in the container: `init()` once, `run(raw)` per request.

Loads the MLflow model shipped with the registered model (under AZUREML_MODEL_DIR, which the
container sets) and answers Azure ML's `input_data` JSON: a pandas split, a list, or named tensors.
Self-contained on purpose: the file is copied into the image alone, so it imports nothing from here.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import load_model
from mlflow.pyfunc.scoring_server import _get_jsonable_obj

model: Any = None


def init() -> None:
    global model
    root = os.environ["AZUREML_MODEL_DIR"]
    for folder, _, files in os.walk(root):
        if "MLmodel" in files:
            model = load_model(folder)
            return
    raise RuntimeError(f"no MLmodel under {root}")


def run(raw: str) -> Any:
    body = json.loads(raw)
    data = body["input_data"]
    frame: Any
    if isinstance(data, dict) and {"columns", "data"} <= set(data):
        frame = pd.DataFrame(data["data"], columns=data["columns"], index=data.get("index"))
    elif isinstance(data, dict):
        frame = {name: np.asarray(value) for name, value in data.items()}
    else:
        frame = np.asarray(data)
    return _get_jsonable_obj(model.predict(frame, params=body.get("params")), pandas_orient="records")
