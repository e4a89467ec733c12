"""A validation's own process: read the holdout data, load each downloaded model, evaluate it.

    python -m shared.executors.validate_process '<job as JSON>'

Started by shared/executors/validate.py with an allow-listed environment (shared/child_env.py): the
candidate's and the baseline's code run here, so they see none of the reactor's secrets and none of
its memory. The models' files are already on disk and the evaluations are logged into a throwaway
store in the action's scratch dir (the reactor records them in the tracking server afterwards), so
no registry or tracking credential is needed here. Reports (shared/model_process.py): ``progress``
(a line for the action's log), one ``evaluated`` per model (its role, metrics and artifacts dir),
or an ``error`` with its ``kind``.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

from shared import model_process

DATA, LOAD, EVALUATE = "data", "load", "evaluate"  # the error kinds the reactor tells apart


def main(argv: list[str]) -> int:
    job: dict[str, Any] = json.loads(argv[0])
    report = model_process.start()

    from shared.adapters import mlflow_evaluate as ev
    from shared.adapters.mlflow_models import load_local_pyfunc
    from shared.errors import PermanentError

    try:
        data = ev.read_holdout(Path(job["data"]), job["data_format"], job["max_rows"], named=job["named"])
    except PermanentError as exc:
        report(error=str(exc), kind=DATA)
        return 1
    if job["targets"] not in data.columns:
        columns = ", ".join(map(str, data.columns))
        problem = f"the validation data has no column {job['targets']!r} (`targets:`); its columns: {columns}"
        report(error=problem, kind=DATA)
        return 1
    report(progress=f"validation data {job['named']}: {len(data)} rows")
    for model in job["models"]:
        try:
            loaded = load_local_pyfunc(model["path"])
        except Exception as exc:  # noqa: BLE001 - the model's own code: any error is its own
            traceback.print_exc()
            report(error=f"{type(exc).__name__}: {exc}", kind=LOAD, uri=model["uri"])
            return 1
        try:
            metrics, artifacts = ev.evaluate_local(
                loaded,
                data,
                targets=job["targets"],
                model_type=job["model_type"],
                tracking_uri=job["tracking_uri"],
                artifacts=Path(job["artifacts"]),
            )
        except Exception as exc:  # noqa: BLE001 - the model's predict or a metric on what it returned
            traceback.print_exc()
            report(error=f"{type(exc).__name__}: {exc}", kind=EVALUATE, uri=model["uri"])
            return 1
        report(progress=f"evaluated {model['uri']} ({model['role']}): {len(metrics)} metrics")
        report(evaluated=model["role"], metrics=metrics, artifacts=str(artifacts), rows=len(data))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
