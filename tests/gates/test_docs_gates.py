"""The Gates page (docs/gates.md): its config is valid as written and its `modelops plan` says what it shows."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def _section() -> str:
    return (ROOT / "docs" / "gates.md").read_text()


def _modelops(tmp_path: Path, line: str) -> subprocess.CompletedProcess[str]:
    argv = shlex.split(line, comments=True)
    assert argv[0] == "modelops"
    env = {**os.environ, "MODELOPS_CONFIG": str(tmp_path / "modelops.yaml"), "MODELOPS_STATE_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "shared.cli.main", *argv[1:]]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_the_gates_config_is_valid_and_plan_explains_its_gates(tmp_path: Path) -> None:
    section = _section()
    [config] = re.findall(r"```yaml\n(.*?)```", section, flags=re.S)
    (tmp_path / "modelops.yaml").write_text(config)
    checked = _modelops(tmp_path, "modelops config check")
    assert checked.returncode == 0, checked.stderr

    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.S)
    [plan_line] = [line for block in blocks for line in block.splitlines() if line.startswith("modelops plan")]
    planned = _modelops(tmp_path, plan_line)
    assert planned.returncode == 0, planned.stderr
    said = " ".join(planned.stdout.split())
    shown = re.search(r"prints, under the planned actions, `(.*?)` and `(.*?)`\.", section, flags=re.S)
    assert shown is not None
    validate, approve = (" ".join(s.split()) for s in shown.groups())
    head, tail = validate.split("...")
    assert head in said and tail in said and str(tmp_path / "validation" / "holdout.parquet") in said
    assert approve in said
