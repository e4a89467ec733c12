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
from tests.support import databricks_delivery, mlflow_delivery

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


WORKSPACE = "https://adb-1234567890123456.7.azuredatabricks.net"  # never called: the pages only link to it
DATABRICKS_CONFIG = """
sources:
  dbx: {kind: databricks, registry: workspace, secret_setting: DBX_SECRET, reconcile: false}
  uc: {kind: databricks-uc, registry: unity, poll: true}
registries:
  workspace: {kind: databricks, host: "%(ws)s", auth: token, token_setting: DATABRICKS_TOKEN}
  unity: {kind: databricks-uc, host: "%(ws)s", auth: token, token_setting: DATABRICKS_TOKEN}
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db"}
rules:
  - {on: model_version.created, do: [{register: local-aml}]}
"""


def test_a_databricks_sources_versions_link_to_its_workspace_pages(tmp_path: Path) -> None:
    """The pages MLflow's own client prints for them: `#mlflow/models/...` (workspace registry) and
    `/explore/data/models/<catalog>/<schema>/<model>/version/<v>` (Unity Catalog)."""
    config = tmp_path / "modelops.yaml"
    config.write_text(DATABRICKS_CONFIG % {"ws": WORKSPACE, "tmp": tmp_path})
    env = {"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp_path / "state"), "DBX_SECRET": SECRET}
    client = TestClient(Container(Settings.from_env(env), dispatcher=LocalDispatcher()).http_app())
    created = {"event": "MODEL_VERSION_CREATED", "webhook_id": "w1", "event_timestamp": 1764300000000}
    body, headers = databricks_delivery(SECRET, {**created, "model_name": "churn", "version": "4"})
    accepted = client.post("/api/hooks/dbx", content=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    page = client.get(f"/api/ui/events/{accepted.json()['event_id']}").text
    assert f'href="{WORKSPACE}#mlflow/models/churn/versions/4"' in page and "(Databricks)" in page

    request = {"kind": "register", "target": "local-aml", "model_name": "main.ml.churn", "model_version": "2"}
    queued = client.post("/api/actions", json={**request, "source": "uc"})
    assert queued.status_code == 202, queued.text
    page = client.get(f"/api/ui/actions/{queued.json()['action_id']}").text
    assert f'href="{WORKSPACE}/explore/data/models/main/ml/churn/version/2"' in page and "MLflow UI" not in page
