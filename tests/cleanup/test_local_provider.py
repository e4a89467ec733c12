"""The embedded default: the same policy over real local server processes."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from shared.adapters.local_deployments import (
    SERVING,
    STARTING,
    LocalDeploymentRecord,
    LocalDeploymentStore,
)
from shared.cleanup.runner import run_cleanup
from shared.config.schema import ReactorConfig
from tests.contract.https import free_port

DAY = 86400.0


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:  # only the processes this test started
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)


def serve(
    store: LocalDeploymentStore,
    servers: list[subprocess.Popen[bytes]],
    tmp: Path,
    target: str,
    version: str,
    *,
    age_days: float,
    status: str = SERVING,
) -> LocalDeploymentRecord:
    """A real HTTP server process in its own session, recorded as the deploy executor does."""
    port = free_port()
    log = tmp / f"{target}-{version}.log"
    log.write_text("serving\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    servers.append(proc)
    deadline = time.monotonic() + 20
    while not _listening(port):
        assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
        time.sleep(0.05)
    rec = LocalDeploymentRecord(
        target=target,
        model_name="churn",
        model_version=version,
        status=status,
        pid=proc.pid,
        create_time=psutil.Process(proc.pid).create_time(),
        host="127.0.0.1",
        port=port,
        url=f"http://127.0.0.1:{port}",
        model_uri=f"models:/churn/{version}",
        tracking_uri="sqlite:///x.db",
        registry_uri=None,
        log_file=str(log),
        action_key=None,
        started_at=time.time() - age_days * DAY,
    )
    store.record(rec)
    return rec


def config(**cleanup: object) -> ReactorConfig:
    section = {"provider": "local", "default_ttl": "P7D", "grace_period": "PT1H", **cleanup}
    return ReactorConfig.model_validate({"cleanup": section})


def test_stale_local_deployments_are_marked_then_stopped(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    state = tmp_path / "state"
    store = LocalDeploymentStore(state)
    old = serve(store, servers, tmp_path, "local", "1", age_days=10)
    fresh = serve(store, servers, tmp_path, "local", "2", age_days=1)
    busy = serve(store, servers, tmp_path, "local", "3", age_days=10, status=STARTING)
    prod = serve(store, servers, tmp_path, "prod", "1", age_days=10)
    cfg = config(protected_patterns=["prod/*"])
    now = datetime.now(UTC)

    dry = run_cleanup(cfg, apply=False, state_dir=state, now=now)
    assert dry.row("local/churn/1").decision == "mark"
    assert not (state / "cleanup").exists()  # a dry run writes nothing

    first = run_cleanup(cfg, apply=True, state_dir=state, now=now)
    decided = {r.name: (r.decision, r.reason) for r in first.rows}
    assert decided == {
        "local/churn/1": ("mark", "stale"),
        "local/churn/2": ("skip", "not-stale"),
        "local/churn/3": ("skip", "locked"),
        "prod/churn/1": ("skip", "protected-pattern"),
    }
    assert _listening(old.port)

    second = run_cleanup(cfg, apply=True, state_dir=state, now=now + timedelta(hours=2))
    row = second.row("local/churn/1")
    assert (row.decision, row.status) == ("delete", "finished")
    assert not _listening(old.port)  # process stopped, port free
    assert not Path(old.log_file).exists()
    assert sorted(r.model_version for r in store.list() if r.target == "local") == ["2", "3"]
    assert all(_listening(r.port) for r in (fresh, busy, prod))
    assert "local/churn/1" not in (state / "cleanup" / "local-marks.json").read_text()


def test_mark_is_dropped_when_the_policy_ttl_grows(tmp_path: Path, servers: list[subprocess.Popen[bytes]]) -> None:
    state = tmp_path / "state"
    serve(LocalDeploymentStore(state), servers, tmp_path, "local", "1", age_days=3)
    now = datetime.now(UTC)
    assert run_cleanup(config(default_ttl="P2D"), apply=True, state_dir=state, now=now).rows[0].status == "marked"
    again = run_cleanup(config(default_ttl="P30D"), apply=True, state_dir=state, now=now)
    assert (again.rows[0].decision, again.rows[0].status) == ("unmark", "unmarked")


def test_nothing_deployed_yet_reports_nothing(tmp_path: Path) -> None:
    report = run_cleanup(config(), apply=True, state_dir=tmp_path / "empty")
    assert report.rows == [] and not (tmp_path / "empty").exists()
