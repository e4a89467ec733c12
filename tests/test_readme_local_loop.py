"""The README's "Run it locally", run as written: one bash, a fresh directory, the real MLflow server.

What the test changes, and only that: the ports (5000, 7071 -> free ones, so parallel runs do not
collide), the first line (`scripts/bootstrap && source .venv/bin/activate`: the suite runs in that
environment already) and `modelops` on PATH running this checkout's code.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.local.processes import free_port
from tests.support import ROOT

SECTION = "## Run it locally"
SETUP_LINE = "scripts/bootstrap && source .venv/bin/activate"


def readme_blocks() -> list[str]:
    """The ```bash blocks of the section, in order."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    section = section[: section.index("\n## ", len(SECTION))]
    return re.findall(r"```bash\n(.*?)```", section, flags=re.S)


def literal(block: str, ports: dict[str, int]) -> str:
    lines = [line for line in block.splitlines() if line.strip() != SETUP_LINE]
    script = "\n".join(lines) + "\n"
    for readme_port, port in ports.items():
        script = re.sub(rf"\b{readme_port}\b", str(port), script)
    return script


class Shell:
    """One bash reading the README's commands from a pipe, as a terminal would, in its own session."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.log = cwd / "terminal.log"
        self.process = subprocess.Popen(
            ["bash", "-e"],
            cwd=cwd,
            env=env,
            stdin=subprocess.PIPE,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def run(self, script: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(script)
        self.process.stdin.flush()

    def finish(self, timeout: float) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """Whatever of the session is left (the MLflow server's own workers included)."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=30)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Shell]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "modelops"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m shared.cli.main "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELOPS_", "MLFLOW_"))}
    env["PATH"] = os.pathsep.join([str(bin_dir), str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PYTHONPATH"] = str(ROOT)
    work = tmp_path / "work"
    work.mkdir()
    shell = Shell(work, env)
    try:
        yield shell
    finally:
        shell.kill()


def test_the_readme_local_loop_copies_deploys_and_batch_scores(terminal: Shell) -> None:
    start, stop = readme_blocks()
    ports = {"5000": free_port(), "7071": free_port()}
    terminal.run(literal(start, ports))
    state = terminal.log.parent / ".modelops"
    actions = wait_for_actions(state, terminal, timeout=600)
    by_kind = {a["kind"]: a for a in actions}
    assert {k: a["status"] for k, a in by_kind.items()} == {
        "register": "succeeded",
        "deploy": "succeeded",
        "batch_score": "succeeded",
    }, terminal.output()[-4000:]
    assert copied_versions(state, "churn") == ["1"]
    scoring_url = by_kind["deploy"]["outputs"]["scoring_url"]
    assert requests.get(scoring_url.replace("/invocations", "/ping"), timeout=10).ok
    assert by_kind["batch_score"]["outputs"]["rows"] == 1000
    assert (state / "batch" / "predictions.parquet").exists()

    pid = deployment_pid(state)
    terminal.run(literal(stop, ports))
    assert terminal.finish(timeout=120) == 0, terminal.output()[-4000:]
    out = terminal.output()
    assert "left running (1 local deployment(s), still serving):" in out
    assert "stop with: modelops undeploy local" in out
    assert f"(pid {pid})" in out and "stopped" in out
    assert not pid_alive(pid), "the champion's scoring server is still running after `modelops undeploy local`"
    deadline = time.monotonic() + 30
    while session_processes(terminal.process.pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = session_processes(terminal.process.pid)
    assert not left, f"still running after the README's stop commands: {left}"


def wait_for_actions(state: Path, terminal: Shell, *, timeout: float) -> list[dict[str, Any]]:
    """register, deploy and batch_score of churn/1, once all three are finished."""
    from shared.bootstrap import Container
    from shared.settings import Settings

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert terminal.process.poll() is None, f"the shell exited early:\n{terminal.output()[-4000:]}"
        if (state / "ledger.db").exists():  # `modelops serve` has started
            ledger = Container(Settings.from_env({"MODELOPS_STATE_DIR": str(state)})).reactor().ledger
            actions = [a.to_dict() for a in ledger.list_actions(model="churn", limit=100)]
            if len(actions) == 3 and all(a["status"] in ("succeeded", "failed", "skipped") for a in actions):
                return actions
        time.sleep(2)
    raise AssertionError(f"the README's loop did not finish in {timeout:.0f}s:\n{terminal.output()[-4000:]}")


def copied_versions(state: Path, name: str) -> list[str]:
    import mlflow

    client = mlflow.MlflowClient(registry_uri=f"sqlite:///{state / 'aml-registry.db'}")
    return [str(mv.version) for mv in client.search_model_versions(f"name='{name}'")]


def deployment_pid(state: Path) -> int:
    from shared.adapters.local_deployments import LocalDeploymentStore

    records = LocalDeploymentStore(state).list()
    assert len(records) == 1, records
    return records[0].pid


def session_processes(sid: int) -> list[str]:
    """What is left of the shell's session (the MLflow server's workers are in it too)."""
    import psutil

    left = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if os.getsid(proc.pid) == sid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                left.append(" ".join(proc.info["cmdline"] or [])[:120])
        except (ProcessLookupError, PermissionError):
            continue
    return left


def pid_alive(pid: int) -> bool:
    """Running, not a zombie: in a container nobody may reap what `serve` left behind."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
