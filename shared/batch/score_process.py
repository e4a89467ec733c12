"""The local batch engine's own process: load a downloaded model and stream its input through it.

    python -m shared.batch.score_process '<job as JSON>'

Started by shared/executors/batch_local.py with an allow-listed environment (shared/child_env.py):
the model's code runs here, so it sees none of the reactor's secrets and none of its memory. The
model's files are already on disk (the reactor downloads them: no registry credential is needed
here). Reports (shared/model_process.py): ``progress`` (rows done, total), then ``result`` or
``error`` (with its ``kind``). On SIGTERM the engine's ``finally`` removes the half-written output.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from shared import model_process

INPUT, LOAD, WRITE = "input", "load", "write"  # the error kinds the reactor tells apart


def main(argv: list[str]) -> int:
    job: dict[str, Any] = json.loads(argv[0])
    report = model_process.start()

    from shared.adapters.mlflow_models import load_local_pyfunc, signature_inputs
    from shared.batch.local_engine import InputError, score

    try:
        model = load_local_pyfunc(job["model_path"])
        features = signature_inputs(model)
    except Exception as exc:  # noqa: BLE001 - the model's own code: any error is its own
        traceback.print_exc()
        report(error=f"{type(exc).__name__}: {exc}", kind=LOAD)
        return 1
    try:
        result = score(
            model,
            Path(job["input"]),
            Path(job["output"]),
            model_version=job["model_version"],
            batch_rows=job["batch_rows"],
            input_format=job["input_format"],
            features=features,
            metadata=job["metadata"],
            progress=lambda done, total: report(progress=[done, total]),
        )
    except InputError as exc:
        report(error=str(exc), kind=INPUT)
        return 1
    except OSError as exc:
        report(error=str(exc), kind=WRITE)
        return 1
    report(result={"rows": result.rows, "seconds": result.seconds})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
