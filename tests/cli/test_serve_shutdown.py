"""Ctrl+C and SIGTERM on `modelops serve`: the API and workers stop, exit 0, and it says what it leaves
running (the README's local loop shows a deployment left serving and `modelops undeploy` stopping it)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from shared.local.processes import free_port, stop_process, wait_http
from tests.support import ROOT


@pytest.mark.parametrize(
    ("sig", "output"), [(signal.SIGINT, "table"), (signal.SIGTERM, "tsv")], ids=["ctrl-c", "sigterm-tsv"]
)
def test_serve_stops_its_workers_and_says_what_it_leaves(sig: signal.Signals, output: str, tmp_path: Path) -> None:
    config = tmp_path / "modelops.yaml"
    config.write_text((ROOT / "shared/config/default.yaml").read_text())
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELOPS_")}
    log = tmp_path / "serve.log"
    # the global options after the subcommand, as docs/cli.md writes them
    command = [
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--config",
        str(config),
        "--state-dir",
        str(tmp_path),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli.main", *command, "--workers", "2", "-o", output],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{port}/api/health", timeout=90, process=proc, log=log)
        os.kill(proc.pid, sig)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        stop_process(proc)
    text = log.read_text()
    assert "Traceback" not in text, text
    api = f"http://127.0.0.1:{port}/api"
    if output == "tsv":  # `what<TAB>where` lines a script reads the URLs from
        assert f"listening\t{api}\n" in text and f"\naudit page\t{api}/ui/\n" in text
        assert re.search(r"^timer registry_poller\tnext at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", text, re.M)
        assert "modelops-reactor listening" not in text
    else:  # the banner says where the audit page is, each arrow apart from its label however long
        assert re.search(rf"^  audit page +-> {api}/ui/$", text, re.M)
        assert re.search(r"^  timer registry_poller +-> next at ", text, re.M) and not re.search(r"\S->", text)
    assert f"input {tmp_path}/batch/input.parquet does not exist yet; batch_score fails until it does" in text
    assert "stopping 2 worker(s)" in text and "workers stopped" in text
    assert text.rstrip().endswith("no local deployments left running"), text


def test_serve_on_a_busy_port_fails_before_announcing_anything(tmp_path: Path) -> None:
    """Bound before the workers start and the banner prints: the port's owner is named, exit 3 (`serve --help`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELOPS_")}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "shared.cli.main", "serve", "--port", str(port), "--state-dir", str(tmp_path)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 3, done.stderr
    assert "listening" not in done.stdout and "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: port {port} is already in use (another `modelops serve` or "
        "`func start`?); stop it, or choose another port with --port"
    )
    assert not (tmp_path / "ledger.db").exists()  # nothing started, nothing made
