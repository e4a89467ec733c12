"""Start `mlflow models serve --env-manager local` as a detached process and wait for /ping."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import requests

from shared.adapters.local_deployments import kill_process_group
from shared.child_env import child_environment
from shared.errors import PermanentError, RetryableError


@dataclass(frozen=True)
class StartedServer:
    pid: int
    create_time: float
    host: str
    port: int
    url: str
    log_file: Path


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def url_for(host: str, port: int) -> str:
    # a wildcard bind is reached through loopback
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("[::1]" if host == "::" else host)
    return f"http://{shown}:{port}"


def serve_command(model_uri: str, host: str, port: int, workers: int) -> list[str]:
    """The exact command line, shared by the executor and the benchmark."""
    return [
        sys.executable,
        "-m",
        "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        host,
        "-p",
        str(port),
        "-w",
        str(workers),
    ]


# Marks a scoring server with the action that started it, so that a server whose worker died
# between spawning it and recording it is still found (and stopped) by the next attempt.
OWNER_VARIABLE = "MODELOPS_DEPLOY_ACTION"


def server_env(
    tracking_uri: str,
    registry_uri: str | None,
    owner: str | None = None,
    *,
    named: Iterable[str] = (),
    withheld: Iterable[str] = (),
) -> dict[str, str]:
    """The child's environment: an allow-list of this one (the model's code runs there: none of the
    reactor's secrets), the settings the target ``named`` (its ``env:``) but ``withheld``, and the
    model's registry passed explicitly (no global mlflow state)."""
    environ = os.environ
    # mlflow execs `uvicorn` by name: make this interpreter's scripts directory come first
    bin_dir = str(Path(sys.executable).parent)
    path = environ.get("PATH")
    overrides = {
        "PATH": os.pathsep.join([bin_dir, path]) if path else bin_dir,
        "MLFLOW_TRACKING_URI": tracking_uri,
    }
    if owner:
        overrides[OWNER_VARIABLE] = owner
    env = child_environment(environ, named=named, withheld=withheld, overrides=overrides)
    if registry_uri:
        env["MLFLOW_REGISTRY_URI"] = registry_uri
    else:
        env.pop("MLFLOW_REGISTRY_URI", None)
    return env


def start_server(
    *,
    model_uri: str,
    tracking_uri: str,
    registry_uri: str | None,
    host: str,
    port: int | None,
    workers: int,
    log_file: Path,
    owner: str | None = None,
    env_names: Iterable[str] = (),
    withheld: Iterable[str] = (),
) -> StartedServer:
    """Spawn the server in its own session, so it outlives this worker and stops as one group.

    ``env_names``: what the target's ``env:`` names; ``withheld``: settings never passed."""
    import psutil

    port = port or free_port(host)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = server_env(tracking_uri, registry_uri, owner, named=env_names, withheld=withheld)
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            serve_command(model_uri, host, port, workers),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    create_time = psutil.Process(proc.pid).create_time()
    return StartedServer(proc.pid, create_time, host, port, url_for(host, port), log_file)


def stop_strays(owner: str, keep: set[int]) -> list[int]:
    """Stop the scoring servers marked with ``owner`` that are not in ``keep`` (the recorded ones):
    an earlier attempt spawned them and died before it could record them. Returns their pids."""
    import psutil

    stopped = []
    for proc in psutil.process_iter(["pid"]):
        try:
            if proc.pid in keep or os.getsid(proc.pid) != proc.pid:
                continue  # recorded, or not a session leader (the server's own workers go with it)
            if proc.environ().get(OWNER_VARIABLE) != owner:
                continue
            kill_process_group(proc.pid, proc.create_time())
        except (psutil.Error, ProcessLookupError, PermissionError):
            continue
        stopped.append(proc.pid)
    return stopped


def log_tail(log_file: Path, lines: int = 25) -> str:
    try:
        text = log_file.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def wait_healthy(server: StartedServer, timeout_s: float) -> None:
    """Poll /ping until 200; stop the process and raise if it exits or never becomes healthy."""
    import psutil

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if requests.get(f"{server.url}/ping", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        try:
            proc = psutil.Process(server.pid)
            exited = proc.status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            exited = True
        if exited:
            kill_process_group(server.pid)
            tail = log_tail(server.log_file)
            raise PermanentError(
                f"the scoring server exited before answering /ping; check the model loads with "
                f"`mlflow models serve --env-manager local`. Last log lines ({server.log_file}):\n{tail}"
            )
        if time.monotonic() > deadline:
            kill_process_group(server.pid, server.create_time)
            raise RetryableError(
                f"the scoring server did not answer {server.url}/ping within {timeout_s:.0f}s "
                f"(raise startup_timeout_s for large models). Last log lines:\n{log_tail(server.log_file)}"
            )
        time.sleep(0.25)


def is_healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/ping", timeout=2).status_code == 200
    except requests.RequestException:
        return False
