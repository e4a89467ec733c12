"""The CLI as `az` and `mlflow` users expect it: global options anywhere, `--version`, `-o json|table|tsv`,
`--quiet`, a clean exit on a closed pipe, exit 2 for a name that does not exist, human output."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared import __version__
from shared.cli.main import main
from shared.cli.output import ACTION_HEADERS
from tests.support import ROOT


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELOPS_CONFIG", "MODELOPS_STATE_DIR", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


def queue_deploy(state: Path, version: str = "1") -> None:
    """An operator deploy of m/VERSION, only queued (nothing runs it): a row for the listings."""
    assert main(["deploy", "m", version, "--target", "local", "--no-wait", "--state-dir", str(state), "--quiet"]) == 0


def test_global_options_work_after_the_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "modelops.yaml"
    config.write_text((ROOT / "shared/config/default.yaml").read_text())
    assert main(["config", "check", "--config", str(config), "--quiet"]) == 0
    assert f"config OK: {config}" in capsys.readouterr().out
    queue_deploy(tmp_path / "after")
    capsys.readouterr()
    assert main(["actions", "--state-dir", str(tmp_path / "after"), "-o", "json", "--quiet"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 1
    # before the subcommand works as it always did; given twice, the later one wins
    assert (
        main(
            [
                "--state-dir",
                str(tmp_path / "nowhere"),
                "-o",
                "table",
                "actions",
                "--state-dir",
                str(tmp_path / "after"),
                "--json",
            ]
        )
        == 0
    )
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_serve_takes_host_port_and_config_after_its_name() -> None:
    from shared.cli.main import build_parser

    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "8080", "--config", "x.yaml", "-v"])
    assert (args.host, args.port, args.config, args.verbose, args.output) == ("0.0.0.0", 8080, "x.yaml", True, "table")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"modelops {__version__}"


def test_output_formats_of_a_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    queue_deploy(tmp_path)
    capsys.readouterr()
    main(["actions", "--state-dir", str(tmp_path), "-o", "json"])
    [action] = json.loads(capsys.readouterr().out)
    assert (action["kind"], action["target"], action["model_name"], action["status"]) == (
        "deploy",
        "local",
        "m",
        "queued",
    )
    main(["actions", "--state-dir", str(tmp_path), "--json"])  # the alias
    assert json.loads(capsys.readouterr().out)[0]["id"] == action["id"]
    main(["actions", "--state-dir", str(tmp_path), "-o", "tsv"])
    assert capsys.readouterr().out.splitlines()[0].split("\t")[:4] == [action["id"], "deploy", "local", "m/1"]
    main(["actions", "--state-dir", str(tmp_path)])
    header = capsys.readouterr().out.splitlines()[0]
    assert header.split() == ACTION_HEADERS
    main(["events", "--state-dir", str(tmp_path), "-o", "json"])
    assert [e["id"] for e in json.loads(capsys.readouterr().out)] == [action["event_id"]]


def test_quiet_silences_info_logging(tmp_path: Path) -> None:
    main(["events", "--state-dir", str(tmp_path), "--quiet"])
    assert logging.getLogger().level == logging.WARNING
    main(["events", "--state-dir", str(tmp_path)])
    assert logging.getLogger().level == logging.INFO


def test_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`modelops events -o json | head -1`: the reader is gone before the first write."""
    for version in ("1", "2", "3"):
        queue_deploy(tmp_path, version)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MODELOPS_STATE_DIR": str(tmp_path)}
    for command in (["events", "-o", "json"], ["actions"]):
        proc = subprocess.Popen(
            [sys.executable, "-m", "shared.cli.main", *command, "--quiet"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        assert proc.wait(timeout=120) == 0, stderr
        assert "Traceback" not in stderr and "BrokenPipeError" not in stderr


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["poll", "--source", "nope"], "no source named 'nope'; configured: mlflow"),
        (["deploy", "m", "1", "--target", "nope", "--no-wait"], "no deploy target named 'nope'"),
        (["score", "m", "1", "--target", "nightly", "--source", "nope"], "no source named 'nope'"),
        (["actions", "a-nope"], "no action a-nope"),
        (["events", "e-nope"], "no event e-nope"),
        (["replay", "e-nope"], "no event e-nope"),
        (["undeploy", "nope"], "no local deployment target named 'nope'"),
    ],
)
def test_unknown_names_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queue_deploy(tmp_path)  # a state dir with a ledger: the name, not the dir, is what is wrong
    assert main([*argv, "--state-dir", str(tmp_path), "--quiet"]) == 2
    assert message in capsys.readouterr().err


def test_human_output_for_every_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = ["--state-dir", str(tmp_path), "--quiet"]
    queue_deploy(tmp_path)
    assert main(["deploy", "m", "1", "--target", "local", "--no-wait", *state]) == 0
    assert 'to run it again: `--force` (CLI) or "force": true (API)' in capsys.readouterr().out
    main(["actions", "-o", "json", *state])
    event_id = json.loads(capsys.readouterr().out)[0]["event_id"]
    assert main(["replay", event_id, *state]) == 0
    assert capsys.readouterr().out.startswith(f"event {event_id}: planned 0 new, requeued")
    assert main(["undeploy", "local", *state]) == 0
    assert capsys.readouterr().out.strip() == "local: no local deployment recorded, nothing to stop"
    assert main(["deployments", *state]) == 0
    assert capsys.readouterr().out.split()[:5] == ["TARGET", "KIND", "MODEL", "URL", "STATUS"]


def test_config_check_shows_every_filter_of_a_rule(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "rule serve-and-score-the-champion: on model_version.alias_set models ['*'] alias champion do [" in out
