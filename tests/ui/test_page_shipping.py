"""The audit page without a browser: it ships with the app, costs the cold start nothing, and is
open locally exactly when the ops routes are."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from shared.api.ui.render import TEMPLATES
from shared.settings import OpsAuthSettings
from tests.spine.apptest import make_app
from tests.support import ROOT


def test_the_templates_are_package_data_and_not_funcignored() -> None:
    templates = sorted(p.relative_to(ROOT / "shared").as_posix() for p in TEMPLATES.glob("*.html"))
    assert "api/ui/templates/base.html" in templates
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["shared"]
    assert all(any(fnmatch(t, g) for g in globs) for t in templates), (templates, globs)
    ignored = [line.strip() for line in (ROOT / ".funcignore").read_text().splitlines() if line.strip()]
    for template in templates:
        parts = Path("shared", template).parts
        hits = [g for g in ignored if not g.startswith("!") and any(fnmatch(part, g) for part in parts)]
        assert hits == [], (template, hits)


def test_building_the_app_does_not_import_jinja2() -> None:
    code = "import sys, function_app; function_app.app.get_functions(); print('jinja2' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_open_locally_like_the_ops_reads_and_closed_with_a_token(tmp_path: Path) -> None:
    client, _ = make_app(tmp_path / "open")
    assert client.get("/api/ui/").status_code == 200 and client.get("/api/events").status_code == 200

    client, _ = make_app(tmp_path / "closed", ops_auth=OpsAuthSettings(token="t0ken"))
    page = client.get("/api/ui/deployments")
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    assert 'name="token"' in page.text
    assert client.get("/api/ui/deployments", headers={"Authorization": "Bearer t0ken"}).status_code == 200
    assert client.get("/api/ui/", cookies={"modelops_ui_token": "wrong"}).status_code == 401
    signed = client.post("/api/ui/login", data={"token": "t0ken", "next": "//elsewhere"}, follow_redirects=False)
    assert signed.status_code == 303 and signed.headers["location"] == "/api/ui/"
    assert "httponly" in signed.headers["set-cookie"].lower()
    assert client.get("/api/ui/").status_code == 200  # the cookie the sign-in set
