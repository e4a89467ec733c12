"""The docs: the README stays a newcomer's page, and the reference pages are what the code says
(`python scripts/gen_docs.py` writes them from the CLI parser and the config schema). The site itself
is built by `./scripts/test` with `mkdocs build --strict`, where a broken link or anchor fails."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import ROOT


def gen_docs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "scripts/gen_docs.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def test_the_reference_pages_are_what_the_parser_and_the_schema_say() -> None:
    run = gen_docs("--check")
    assert run.returncode == 0, run.stdout + run.stderr


def test_a_stale_reference_page_is_named_and_rewritten(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "docs" / "reference", tmp_path / "docs" / "reference")
    page = tmp_path / "docs" / "reference" / "cli.md"
    page.write_text(page.read_text().replace("| `--no-worker` |", "| `--no-workers` |"))
    (tmp_path / "docs" / "reference" / "config.md").unlink()

    run = gen_docs("--check", "--root", str(tmp_path))
    assert run.returncode == 1
    assert "stale: docs/reference/cli.md, docs/reference/config.md" in run.stderr
    assert gen_docs("--root", str(tmp_path)).returncode == 0
    assert page.read_text() == (ROOT / "docs" / "reference" / "cli.md").read_text()
    assert gen_docs("--check", "--root", str(tmp_path)).returncode == 0


def test_every_command_and_config_key_is_in_the_reference() -> None:
    from shared.cli.main import build_parser
    from shared.config.schema import ReactorConfig
    from shared.config.worker import WorkerConfig

    cli = (ROOT / "docs" / "reference" / "cli.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:  # type: ignore[union-attr]
        assert f"\n## modelops {name}\n" in cli, name
    # what `--help` says beyond the one line is there too: serve's and status's exit codes
    assert "3 the address cannot be bound (the port is in use, or not permitted): nothing was started." in cli
    assert "1: a line is out of sync, degraded or pinned, or a source registry cannot be read now" in cli
    config = (ROOT / "docs" / "reference" / "config.md").read_text()
    for key in [*ReactorConfig.model_fields, *WorkerConfig.model_fields]:
        assert f"| `{key}` |" in config, key
    assert "| `max_attempts` | integer | `5` |" in config


def test_the_readme_is_a_newcomers_page_that_starts_with_the_two_commands() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250
    first = re.search(r"```bash\n(.*?)```", text, flags=re.S)
    assert first is not None
    assert [line.split()[0] for line in first.group(1).splitlines()] == ["./scripts/demo", "./scripts/test"]
    for page in re.findall(r"\]\((docs/[^)#]+\.md)\)", text):
        assert (ROOT / page).exists(), page


def test_the_site_builds_strict_and_a_broken_link_fails_it(tmp_path: Path) -> None:
    """What `./scripts/test` runs; a page left out of the nav, a missing page or anchor fails it."""
    mkdocs = Path(sys.executable).parent / "mkdocs"

    def build(config: Path) -> subprocess.CompletedProcess[str]:
        command = [str(mkdocs), "build", "--strict", "-f", str(config), "--site-dir", str(tmp_path / "site")]
        return subprocess.run(command, cwd=config.parent, capture_output=True, text=True, timeout=300)

    run = build(ROOT / "mkdocs.yml")
    assert run.returncode == 0, run.stderr[-3000:]

    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    shutil.copy(ROOT / "README.md", copy / "README.md")  # the home page includes its sections
    with (copy / "docs" / "layout.md").open("a") as page:
        page.write("\nSee [rollback](actions.md#no-such-anchor).\n")
    run = build(copy / "mkdocs.yml")
    assert run.returncode == 1 and "does not contain an anchor '#no-such-anchor'" in run.stderr, run.stderr[-3000:]
