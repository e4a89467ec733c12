"""The local batch engine's own process: load a downloaded model and stream its input through it.

    python -m shared.batch.score_process '<job as JSON>'

Started by shared/executors/batch_local.py with an allow-listed environment (shared/child_env.py):
the model's code runs here, so it sees none of the reactor's secrets and none of its memory. The
model's files are already on disk (the reactor downloads them: no registry credential is needed
here). Reports go, one JSON object a line, to the stdout this process started with: ``progress``
(rows done, total), then ``result`` or ``error`` (with its ``kind``); whatever the model's code
prints goes to stderr. The process ends when its parent does (EOF on stdin), and on SIGTERM it
removes the half-written output.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

INPUT, LOAD, WRITE = "input", "load", "write"  # the error kinds the reactor tells apart


def main(argv: list[str]) -> int:
    job: dict[str, Any] = json.loads(argv[0])
    reports = _own_stdout()
    _end_with_parent()
    signal.signal(signal.SIGTERM, _exit_on_term)

    def report(**fields: Any) -> None:
        reports.write(json.dumps(fields) + "\n")
        reports.flush()

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


def _own_stdout() -> IO[str]:
    """The reports' channel: stdout as started; fd 1 then points at stderr, for the model's prints."""
    reports = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return reports


def _end_with_parent() -> None:
    """The parent holds our stdin open until it is done: EOF means it died, and so do we."""

    def watch() -> None:
        # the raw fd, not sys.stdin: a daemon thread blocked on a buffered reader aborts the shutdown
        while os.read(0, 4096):
            pass
        os._exit(3)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: the engine's finally removes its temp file


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
