"""The README's main command, end to end: `modelops demo` exits 0 with its summary."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def test_demo_runs_the_whole_loop_and_leaves_nothing_running(tmp_path: Path) -> None:
    env = {**os.environ, "MODELOPS_STATE_DIR": str(tmp_path)}
    env.pop("MODELOPS_CONFIG", None)
    out = subprocess.run(
        [sys.executable, "-m", "shared.cli.main", "demo", "--rows", "20000"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "all actions succeeded" in out.stdout
    for kind in ("register", "deploy", "batch_score"):
        assert kind in out.stdout
    leftovers = subprocess.run(["pgrep", "-f", str(tmp_path)], capture_output=True, text=True)
    assert leftovers.stdout.strip() == "", "processes of the demo are still running"
