"""The README's "Run it locally", then its "Gates" (on the same servers, before the loop's stop
commands), run as written: one bash, a fresh directory, the real MLflow server.

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.local.processes import free_port
from tests.support import ROOT

LOOP, GATES = "## Run it locally", "## Gates"
SETUP_LINE = "scripts/bootstrap && source .venv/bin/activate"


def readme_blocks(heading: str = LOOP) -> list[str]:
    """The ```bash blocks of the README's section under ``heading``, in order."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(f"\n{heading}\n") :]
    section = section[: section.index("\n## ", len(heading) + 1)]
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


def test_the_readme_local_loop_copies_deploys_and_batch_scores_then_gates_a_challenger(terminal: Shell) -> None:
    start, stop = readme_blocks()
    ports = {"5000": free_port(), "7071": free_port()}
    terminal.run(literal(start, ports))
    state = terminal.log.parent / ".modelops"
    actions = wait_for_actions(state, terminal, "1", finished(3), timeout=600)
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

    gate_readme_challenger(terminal, state, ports)

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


def gate_readme_challenger(terminal: Shell, state: Path, ports: dict[str, int]) -> None:
    """The README's "Gates": version 2 validated against the champion, approved by the CLI, deployed."""
    ask, decide = readme_blocks(GATES)
    terminal.run(literal(ask, ports))
    waiting = {a["kind"]: a for a in wait_for_actions(state, terminal, "2", asked, timeout=600)}
    validation = waiting["validate"]["outputs"]
    assert waiting["validate"]["status"] == "succeeded", terminal.output()[-4000:]
    assert validation["passed"] is True and validation["baseline_version"] == "1"
    candidate, champion = (
        m["accuracy_score"] for m in (validation["candidate_metrics"], validation["baseline_metrics"])
    )
    assert (candidate, champion) == (pytest.approx(0.995), pytest.approx(0.815))  # as the README says

    terminal.run(literal(decide, ports))
    done = {a["kind"]: a for a in wait_for_actions(state, terminal, "2", finished(3), timeout=600)}
    assert {k: a["status"] for k, a in done.items()} == {
        "validate": "succeeded",
        "approve": "succeeded",
        "deploy": "succeeded",
    }, terminal.output()[-4000:]
    out = terminal.output()
    assert f"{waiting['approve']['id']}: approved by" in out
    assert "passed: accuracy_score=0.995 vs baseline 0.815: passed" in out  # `modelops actions`, RESULT
    shown = modelops(state, "actions", waiting["validate"]["id"])
    assert re.search(r"accuracy_score +0\.9950 +0\.8150 +>= 0\.9, \+0\.05 over baseline +passed", shown), shown
    assert done["approve"]["outputs"]["via"] == "cli"
    assert done["approve"]["outputs"]["comment"] == "beats the champion on fresh rows"
    scoring_url = done["deploy"]["outputs"]["scoring_url"]
    assert requests.get(scoring_url.replace("/invocations", "/ping"), timeout=10).ok


Finished = Callable[[list[dict[str, Any]]], bool]


def finished(count: int) -> Finished:
    """``count`` actions, each finished."""
    return lambda actions: (
        len(actions) == count and all(a["status"] in ("succeeded", "failed", "skipped") for a in actions)
    )


def asked(actions: list[dict[str, Any]]) -> bool:
    """The approval waits for a decision, or something before it ended the chain."""
    return any(a["kind"] == "approve" and a["status"] in ("waiting", "skipped") for a in actions)


def wait_for_actions(
    state: Path, terminal: Shell, version: str, done: Finished, *, timeout: float
) -> list[dict[str, Any]]:
    """The actions of churn ``version`` once ``done`` says so."""
    from shared.bootstrap import Container
    from shared.settings import Settings

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert terminal.process.poll() is None, f"the shell exited early:\n{terminal.output()[-4000:]}"
        if (state / "ledger.db").exists():  # `modelops serve` has started
            ledger = Container(Settings.from_env({"MODELOPS_STATE_DIR": str(state)})).reactor().ledger
            actions = [a.to_dict() for a in ledger.list_actions(model="churn", version=version, limit=100)]
            if done(actions):
                return actions
        time.sleep(2)
    raise AssertionError(f"the README's commands did not finish in {timeout:.0f}s:\n{terminal.output()[-4000:]}")


def modelops(state: Path, *args: str) -> str:
    """What `modelops ARGS` prints, on the README's state dir."""
    env = {**os.environ, "MODELOPS_STATE_DIR": str(state)}
    command = [sys.executable, "-m", "shared.cli.main", *args]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def copied_versions(state: Path, name: str) -> list[str]:
    import mlflow

    client = mlflow.MlflowClient(registry_uri=f"sqlite:///{state / 'aml-registry.db'}")
    return [str(mv.version) for mv in client.search_model_versions(f"name='{name}'")]


def deployment_pid(state: Path) -> int:
    """The pid of the local target's one serving version (one it replaced is kept, stopped, as retired)."""
    from shared.adapters.local_deployments import SERVING, LocalDeploymentStore

    serving = [r for r in LocalDeploymentStore(state).list() if r.status == SERVING]
    assert len(serving) == 1, serving
    return serving[0].pid


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
