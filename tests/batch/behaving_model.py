"""A model that misbehaves as its ``model_config`` says (logged from code): ``mode: slow`` predicts
forever, ``mode: broken`` fails to load after printing an upstream error with a SAS URL and a token,
``mode: environ`` writes its pid and the environment it was loaded with to the file ``to``."""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

LEAKY = "GET https://acct.blob.core.windows.net/m/model.pkl?sv=2024-01-01&sig=c2VjcmV0LXNpZ25hdHVyZQ%3D%3D failed"
BEARER = "Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJtb2RlbCJ9.c2lnbmF0dXJl"


class BehavingModel(PythonModel):  # type: ignore[misc]
    def load_context(self, context: Any) -> None:
        self.mode = context.model_config.get("mode")
        if self.mode == "broken":
            print(f"{LEAKY}\n{BEARER}", file=sys.stderr)
            raise RuntimeError(f"cannot fetch the weights: {LEAKY}")
        if self.mode == "environ":
            with open(context.model_config["to"], "w") as out:
                json.dump({"pid": os.getpid(), "environ": dict(os.environ)}, out)

    def predict(self, context: Any, model_input: Any, params: Any = None) -> list[float]:
        if self.mode == "slow":
            time.sleep(3600)
        return [0.0] * len(model_input)


set_model(BehavingModel())
