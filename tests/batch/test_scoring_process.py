"""The local batch engine's scoring process: the model's failures come back as a clear, redacted
action error; past timeout_seconds, or when the reactor's process dies, the scoring process is gone."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from shared.errors import PermanentError
from shared.executors.batch_local import LocalBatchExecutor
from tests.batch.behaving_model import BEARER, LEAKY
from tests.batch.conftest import batch_context, make_frame

ROOT = Path(__file__).parents[2]


def target(tmp_path: Path, extra: str = "") -> str:
    (tmp_path / "in.csv").write_text("x\n1\n2\n")
    return f"kind: local\ninput: {tmp_path / 'in.csv'}\noutput: {tmp_path / 'out.parquet'}\n{extra}"


def scoring_pid(messages: list[str]) -> int:
    started = [m for m in messages if re.match(r"(scoring process|spark job) started", m)]
    return int(re.search(r"pid (\d+)", started[0]).group(1))  # type: ignore[union-attr]


def gone(pid: int, within: float = 30) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.2)
    return False


def test_a_model_that_fails_to_load_fails_the_action_with_its_redacted_log(tmp_path, behaving):
    ctx = batch_context(tmp_path, target(tmp_path), behaving["broken"])

    with pytest.raises(PermanentError) as failed:
        LocalBatchExecutor().execute(ctx)

    text = str(failed.value)
    assert "models:/behaving/" in text and "failed to load in its scoring process" in text
    assert "cannot fetch the weights" in text and "sig=***" in text and "Authorization: ***" in text
    assert "c2VjcmV0LXNpZ25hdHVyZQ" not in text and BEARER.split()[-1] not in text and LEAKY not in text
    assert not (tmp_path / "out.parquet").exists()


def test_past_its_timeout_the_scoring_process_is_stopped(tmp_path, behaving):
    messages: list[str] = []
    ctx = batch_context(tmp_path, target(tmp_path, "timeout_seconds: 3"), behaving["slow"], progress=messages.append)

    with pytest.raises(PermanentError, match="ran over timeout_seconds=3 and was stopped"):
        LocalBatchExecutor().execute(ctx)

    assert gone(scoring_pid(messages))
    assert sorted(p.name for p in tmp_path.iterdir() if "out.parquet" in p.name) == []  # no temp file left


@pytest.mark.parametrize(
    ("executor", "target_kind"),
    [("batch_local:LocalBatchExecutor", "local"), ("batch_spark_local:SparkLocalBatchExecutor", "spark-local")],
)
def test_when_the_reactor_process_dies_its_scoring_process_ends(
    tmp_path, behaving, registered_model, executor, target_kind
):
    """The worker killed (SIGKILL: no finally runs) mid-score: the model's process sees its stdin close."""
    module, name = executor.split(":")
    if target_kind == "local":
        model, yaml = behaving["slow"], target(tmp_path)
    else:
        make_frame(100).to_csv(tmp_path / "in.csv", index=False)
        model = registered_model
        yaml = f"kind: spark-local\nmaster: 'local[1]'\ninput: {tmp_path / 'in.csv'}\noutput: {tmp_path / 'out'}"
    script = (
        "import sys; from pathlib import Path; from tests.batch.conftest import batch_context, Registered;"
        f"from shared.executors.{module} import {name} as Executor;"
        "say = lambda message: print(message, flush=True);"
        "ctx = batch_context(Path(sys.argv[1]), sys.argv[2], Registered(*sys.argv[3:6]), progress=say);"
        "Executor().execute(ctx)"
    )
    args = [str(tmp_path), yaml, model.tracking_uri, model.name, model.version]
    worker = subprocess.Popen([sys.executable, "-c", script, *args], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert worker.stdout is not None
    messages = []
    for line in worker.stdout:
        messages.append(line)
        if re.match(r"(scoring process|spark job) started", line):
            break
    pid = scoring_pid(messages)
    assert psutil.pid_exists(pid)

    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()

    assert gone(pid), f"the model's process outlived the worker; it said: {''.join(messages)}"
    assert all(gone(other.pid) for other in session(pid)), "what the model's process started outlived it"


def session(leader: int) -> list[psutil.Process]:
    """The processes still in the session the model's process led (a Spark job's JVM)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == leader and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
    return found
