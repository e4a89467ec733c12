"""Every command a docs page shows (its ```bash blocks) is run by a test as the page writes it, or this
module says which test runs it or why none can here; a command added to a page without either fails.
The commands of docs/cli.md, docs/how-it-works.md and docs/azure.md's first step run here, through
bash, the installed `modelops` and a real `modelops serve` (the README's own loop has its own test)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.cli.test_config_init import PLACEHOLDERS
from tests.support import (
    ROOT,
    ReactorProcess,
    databricks_delivery,
    doc,
    mlflow_delivery,
    wait_for,
    write_config,
)

AZURE_FIRST_STEP = (
    "modelops config init --azure && $EDITOR modelops.yaml && modelops config check --config modelops.yaml"
)
# commands run in this module, by page, taken from the page itself
RUN_HERE = {
    "cli.md": ("modelops plan ", "modelops config check --explain"),
    "how-it-works.md": ("modelops events --delivery ", 'curl -s "http://127.0.0.1:7071/api/events?delivery_id='),
    "gates.md": ("modelops approvals ", "modelops approve ACTION_ID ", "curl -X POST "),
    "azure.md": (AZURE_FIRST_STEP,),
}
# commands another test runs as written: (the test file, the text by which it reads or runs it)
ELSEWHERE = {
    "python -m compileall": ("tests/spine/test_function_app.py", 'startswith("python -m compileall")'),
    "modelops rollback local ": ("tests/deploy/test_rollback_local.py", 'doc("actions.md")'),
    "modelops plan --kind model_version.alias_set --model churn --version 2 --alias challenger": (
        "tests/gates/test_docs_gates.py",
        'line.startswith("modelops plan")',
    ),
    "python benchmarks/ingest_azure.py": ("tests/benchmarks/test_ingest_azure.py", "--baseline-tree"),
    "python benchmarks/ingest_inproc.py": ("tests/benchmarks/test_intake_tools.py", "ingest_inproc"),
    "python benchmarks/profile_summary.py": ("tests/benchmarks/test_intake_tools.py", "profile_summary"),
    "python -m benchmarks.report": ("tests/benchmarks/test_report.py", "python -m benchmarks.report"),
}
# commands no test can run here, and why
NOT_HERE = {
    "az ": "needs the Azure CLI signed in to a subscription",
    "func azure functionapp publish": "needs Azure Functions Core Tools and a function app in Azure",
    "python benchmarks/": "a measurement run (minutes, interleaved rounds); its figures are in docs/benchmarks.md",
    "py-spy record": "a profiler attached to a benchmark run",
}


def bash_blocks(text: str) -> list[list[str]]:
    """Each ```bash block's commands: continuation lines joined, comment-only and blank lines left out."""
    blocks = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        blocks.append([line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")])
    return blocks


def the_block_with(page: str, command: str) -> list[str]:
    [block] = [b for b in bash_blocks(doc(page)) if any(line.startswith(command) for line in b)]
    return block


def test_every_command_of_every_page_is_run_by_a_test_or_says_why_not() -> None:
    unaccounted = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        for command in (line for block in bash_blocks(page.read_text()) for line in block):
            if command.startswith(RUN_HERE.get(page.name, ())):
                continue
            elsewhere = next((where for prefix, where in ELSEWHERE.items() if command.startswith(prefix)), None)
            if elsewhere is not None:
                test_file, marker = elsewhere
                assert marker in (ROOT / test_file).read_text(), (command, test_file)
                continue
            if not any(command.startswith(prefix) for prefix in NOT_HERE):
                unaccounted.append(f"{page.name}: {command}")
    assert unaccounted == [], "commands shown in docs/ that no test runs: " + "; ".join(unaccounted)


def bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"  # the installed `modelops`, as after bootstrap
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MODELOPS_", "MLFLOW_"))}
    return subprocess.run(
        ["bash", "-c", script], cwd=cwd, env={**clean, "PATH": path, **env}, capture_output=True, text=True, timeout=300
    )


def test_the_cli_pages_plan_and_explain_commands(tmp_path: Path) -> None:
    # a sender's body, as the page says: the MLflow webhook a champion alias move sends
    moved = {"name": "churn", "version": "3", "alias": "champion"}
    envelope = {"entity": "model_version_alias", "action": "created", "timestamp": 1764300000000, "data": moved}
    (tmp_path / "payload.json").write_text(json.dumps(envelope))
    env = {"MODELOPS_STATE_DIR": str(tmp_path / "state")}  # the embedded default config
    outputs = []
    for command in the_block_with("cli.md", "modelops plan payload.json"):
        run = bash(command, tmp_path, env)
        assert run.returncode == 0, (command, run.stdout, run.stderr)
        outputs.append(run.stdout)
    from_payload, from_flags, run_completed, explained = outputs
    for plan in (from_payload, from_flags):  # the body and the flags describe the same event
        assert re.search(r"serve-and-score-the-champion\s+deploy\s+local\s+churn/3", plan), plan
    assert "kind=run.completed run_id=r1" in run_completed and "no rule listens to run.completed" in run_completed
    assert "example for serve-and-score-the-champion / model_version.alias_set:" in explained


@pytest.fixture
def reactor(tmp_path: Path) -> Iterator[ReactorProcess]:
    config = write_config(tmp_path / "modelops.yaml", (ROOT / "shared/config/default.yaml").read_text())
    secrets = {"MLFLOW_WEBHOOK_SECRET": "doc-mlflow", "DATABRICKS_WEBHOOK_SECRET": "doc-databricks"}
    with ReactorProcess(tmp_path / "state", config, env=secrets, extra=["--no-worker"]) as process:
        yield process


def test_how_it_works_finds_events_by_delivery_id_from_the_cli_and_curl(
    reactor: ReactorProcess, tmp_path: Path
) -> None:
    block = the_block_with("how-it-works.md", "modelops events --delivery ")
    mlflow_id = re.search(r"--delivery (\S+)", block[0]).group(1)  # type: ignore[union-attr]
    webhook_id, timestamp = re.search(r"delivery_id=(\w+):(\d+)", block[1]).groups()  # type: ignore[union-attr]
    created = {"name": "churn", "version": "3", "source": "models:/m-1", "run_id": "r1"}
    body, headers = mlflow_delivery(
        "doc-mlflow", {"entity": "model_version", "action": "created", "data": created}, delivery_id=mlflow_id
    )
    first = requests.post(f"{reactor.url}/api/hooks/mlflow", data=body, headers=headers, timeout=30)
    databricks = {
        "event": "MODEL_VERSION_CREATED",
        "webhook_id": webhook_id,
        "event_timestamp": int(timestamp),
        "model_name": "fraud",
        "version": "7",
    }
    body, headers = databricks_delivery("doc-databricks", databricks)
    second = requests.post(f"{reactor.url}/api/hooks/databricks", data=body, headers=headers, timeout=30)
    assert first.status_code == second.status_code == 202, (first.text, second.text)

    env = {"MODELOPS_STATE_DIR": str(reactor.state_dir), "MODELOPS_CONFIG": str(tmp_path / "modelops.yaml")}
    by_cli = bash(block[0], tmp_path, env)
    assert by_cli.returncode == 0, by_cli.stderr
    assert first.json()["event_id"] in by_cli.stdout and "churn/3" in by_cli.stdout
    by_curl = bash(block[1].replace("127.0.0.1:7071", f"127.0.0.1:{reactor.port}"), tmp_path, env)
    found = json.loads(by_curl.stdout)
    assert [e["id"] for e in found["events"]] == [second.json()["event_id"]]
    assert [d["answer"] for d in found["deliveries"]] == ["accepted"]


def test_the_azure_pages_first_step_fills_the_template_and_checks_it(tmp_path: Path) -> None:
    [command] = [line for block in bash_blocks(doc("azure.md")) for line in block if line.startswith("modelops config")]
    assert command == AZURE_FIRST_STEP
    editor = tmp_path / "fill-in"  # what the operator types in $EDITOR: a value for every <placeholder>
    edits = "; ".join(f"s#{placeholder}#{value}#g" for placeholder, value in PLACEHOLDERS.items())
    editor.write_text(f"#!/bin/sh\nsed -i '{edits}' \"$1\"\n")
    editor.chmod(0o755)
    run = bash(command, tmp_path, {"EDITOR": str(editor), "MODELOPS_STATE_DIR": str(tmp_path / "state")})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "config OK: modelops.yaml" in run.stdout and "never fires" not in run.stdout
    fresh = tmp_path / "fresh"  # the template as written, not filled in: refused, naming what is left
    fresh.mkdir()
    untouched = bash(command.replace("$EDITOR", "true"), fresh, {"MODELOPS_STATE_DIR": str(fresh / "state")})
    assert untouched.returncode == 2 and "still holds the template's placeholder" in untouched.stderr


APPROVALS = """
sources:
  mlflow: {tracking_uri: "sqlite:///%(tmp)s/source.db", reconcile: false}
approvals:
  prod-owners: {expires: P7D}
rules:
  - name: owners-decide
    on: model_version.created
    do: [{approve: prod-owners}]
"""


def test_the_gates_pages_approval_commands_decide_waiting_approvals(tmp_path: Path) -> None:
    block = the_block_with("gates.md", "modelops approvals")
    config = write_config(tmp_path / "modelops.yaml", APPROVALS % {"tmp": tmp_path})
    env = {"MLFLOW_WEBHOOK_SECRET": "doc-mlflow", "MODELOPS_APPROVER_TOKEN": "doc-approver"}
    with ReactorProcess(tmp_path / "state", config, env=env) as reactor:
        waiting = []
        for version in ("1", "2"):
            created = {"name": "churn", "version": version, "source": "models:/m-1", "run_id": "r1"}
            envelope = {"entity": "model_version", "action": "created", "data": created}
            body, headers = mlflow_delivery("doc-mlflow", envelope)
            answer = requests.post(f"{reactor.url}/api/hooks/mlflow", data=body, headers=headers, timeout=30)
            assert answer.status_code == 202, answer.text
            waiting += answer.json()["action_ids"]
        wait_for(lambda: all(_status(reactor, a) == "waiting" for a in waiting), timeout=120, what="approvals waiting")

        shell = {"MODELOPS_STATE_DIR": str(reactor.state_dir), "MODELOPS_CONFIG": str(config), **env}
        listed = bash(block[0], tmp_path, shell)
        assert listed.returncode == 0 and all(a in listed.stdout for a in waiting), listed.stdout + listed.stderr
        by_cli = bash(block[1].replace("ACTION_ID", waiting[0]), tmp_path, shell)
        assert by_cli.returncode == 0, by_cli.stdout + by_cli.stderr
        url = f"127.0.0.1:{reactor.port}/api/actions/{waiting[1]}/approve"
        by_curl = bash(block[2].replace("127.0.0.1:7071/api/actions/ACTION_ID/approve", url), tmp_path, shell)
        assert by_curl.returncode == 0 and json.loads(by_curl.stdout)["action_id"] == waiting[1], by_curl.stdout
        wait_for(lambda: all(_status(reactor, a) == "succeeded" for a in waiting), timeout=120, what="approved")
        for action_id in waiting:
            outputs = requests.get(f"{reactor.url}/api/actions/{action_id}", timeout=30).json()["outputs"]
            assert outputs["decision"] == "approve" and outputs["comment"] == "beats champion"


def _status(reactor: ReactorProcess, action_id: str) -> str:
    return str(requests.get(f"{reactor.url}/api/actions/{action_id}", timeout=30).json()["status"])
