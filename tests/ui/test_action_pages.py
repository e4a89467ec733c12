"""The audit page's action page and links over HTTP (issue 26, item 7): "after act_..." leads to the
action it waits for, a source served over HTTP links the version and run in its MLflow UI, and a
page whose actions still have to run refreshes itself (a meta refresh: the page's CSP allows no script)."""

from __future__ import annotations

import re
from pathlib import Path

from fastapi.testclient import TestClient

from shared.bootstrap import Container
from shared.service.dispatch import LocalDispatcher
from shared.settings import Settings
from tests.support import mlflow_delivery

SECRET = "action-pages-secret"
MLFLOW_UI = "http://127.0.0.1:5999"  # never called: the page only links to it
CONFIG = """
sources:
  team: {kind: mlflow, tracking_uri: "%(ui)s", secret_setting: TEAM_SECRET}
  lab: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/lab.db", secret_setting: LAB_SECRET}
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db"}
deployments:
  local: {kind: local}
rules:
  - name: champion
    on: model_version.created
    do: [{register: local-aml}, {deploy: local}]
"""


def test_action_pages_link_what_runs_before_the_source_and_refresh_until_done(tmp_path: Path) -> None:
    config = tmp_path / "modelops.yaml"
    config.write_text(CONFIG % {"ui": MLFLOW_UI, "tmp": tmp_path})
    env = {"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp_path / "state")}
    settings = Settings.from_env({**env, "TEAM_SECRET": SECRET, "LAB_SECRET": SECRET})
    container = Container(settings, dispatcher=LocalDispatcher())  # no worker: the actions stay queued
    client = TestClient(container.http_app())
    data = {"name": "churn", "version": "3", "source": "models:/m-1", "run_id": "0a1b2c"}
    envelope = {"entity": "model_version", "action": "created", "data": data}
    body, headers = mlflow_delivery(SECRET, envelope)
    accepted = client.post("/api/hooks/team", content=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    event_id, (register, deploy) = accepted.json()["event_id"], accepted.json()["action_ids"]

    event = client.get(f"/api/ui/events/{event_id}")
    assert event.status_code == 200
    assert '<meta http-equiv="refresh" content="5">' in event.text and 'id="auto-refresh"' in event.text
    assert f'class="after" href="/api/ui/actions/{register}"' in event.text
    assert f'href="{MLFLOW_UI}/#/models/churn/versions/3"' in event.text
    assert f'href="{MLFLOW_UI}/#/runs/0a1b2c"' in event.text
    assert "replay-hint" not in event.text  # nothing failed

    page = client.get(f"/api/ui/actions/{deploy}")
    assert page.status_code == 200 and '<meta http-equiv="refresh" content="5">' in page.text
    assert f'class="after" href="/api/ui/actions/{register}"' in page.text
    assert f'href="{MLFLOW_UI}/#/models/churn/versions/3"' in page.text
    assert re.search(r"<th[^>]*>source</th><td class=\"mono\">team</td>", page.text)
    assert page.headers["content-security-policy"].startswith("default-src 'none'")

    # a source whose registry is not served over HTTP has nothing to link to
    lab = {**envelope, "data": {**data, "name": "fraud"}}
    body, headers = mlflow_delivery(SECRET, lab)
    other = client.post("/api/hooks/lab", content=body, headers=headers).json()
    assert "MLflow UI" not in client.get(f"/api/ui/events/{other['event_id']}").text

    missing = client.get("/api/ui/actions/act_nope")
    assert missing.status_code == 404 and "no action act_nope" in missing.text
