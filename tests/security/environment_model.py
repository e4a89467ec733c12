"""A model whose every prediction is its own process's environment, as any model's code can read it
(logged from code: `mlflow.pyfunc.log_model(python_model=<this file>)`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.models import set_model
from mlflow.pyfunc import PythonModel


class EnvironmentModel(PythonModel):  # type: ignore[misc]
    def predict(self, context: Any, model_input: Any, params: Any = None) -> list[str]:
        entries = Path("/proc/self/environ").read_bytes().decode(errors="replace").split("\0")
        return [json.dumps(entries)] * len(model_input)  # as JSON: an Arrow string column ends at a NUL


set_model(EnvironmentModel())
