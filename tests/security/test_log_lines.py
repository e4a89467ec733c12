"""A text log line cannot be forged: a webhook's model name carrying a newline, a NUL byte and a bidi
override is written escaped, on the one line of the record that carries it."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path

from shared import telemetry
from tests.spine.apptest import MLFLOW_SECRET, make_app
from tests.support import mlflow_delivery

FORGED = "2026-12-07 12:00:00,000 WARNING modelops.auth: operator admin approved act_1"
NAME = f"churn\n{FORGED}\r\x00\u202egpj.exe"
LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR|CRITICAL) [\w.]+( \[[^\]]*\])?: ")


def test_a_hostile_model_name_cannot_start_or_fake_a_log_line(tmp_path: Path) -> None:
    client, reactor = make_app(tmp_path)
    stream = io.StringIO()
    telemetry.setup_logging(reactor.settings, level=logging.INFO, stream=stream)
    try:
        envelope = {
            "entity": "model_version",
            "action": "created",
            "timestamp": "2026-12-07T12:00:00Z",
            "data": {"name": NAME, "version": "3", "source": "models:/m-1", "run_id": "r1", "tags": {}},
        }
        body, headers = mlflow_delivery(MLFLOW_SECRET, envelope)
        answer = client.post("/api/hooks/mlflow", content=body, headers=headers)
        assert answer.status_code == 202, answer.text
        ran = reactor.worker().run_once()  # logs the action's key, which holds the name
        assert ran is not None and ran.model_name == NAME
        logging.getLogger("modelops.test").error("with a traceback", exc_info=ValueError(f"bad {NAME}"))
    finally:
        root = logging.getLogger()
        for handler in [h for h in root.handlers if getattr(h, "modelops_handler", False)]:
            root.removeHandler(handler)
    text = stream.getvalue()
    lines = text.splitlines()
    assert f"running register:local-aml:churn\\n{FORGED}\\r\\x00\\u202egpj.exe:3" in text
    assert "\x00" not in text and "\r" not in text and "\u202e" not in text
    for line in lines:  # each starts as a record does, or is an indented traceback line
        assert LINE.match(line) or line.startswith("    "), line
    assert not any(line.startswith(FORGED) for line in lines)
    # a traceback keeps its lines, every one indented: the forged text cannot begin a line there either
    assert f"    ValueError: bad churn\n    {FORGED}" in text
