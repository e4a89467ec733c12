"""An upstream error carrying a SAS signature and a bearer token is stored redacted: the API, the CLI
and the audit page show the action's error and log without either (as the log line does)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.support import ROOT, ReactorProcess, unique, wait_for, write_config

pytestmark = pytest.mark.slow

TOKEN = "redaction-test-operator-token"
SIG = "Zm9yZ2VkU0FTc2lnbmF0dXJlMDEyMzQ1Njc4OQ%3D"
BEARER = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1cHN0cmVhbS11c2VyIn0.c2lnbmF0dXJlLXBhcnQ"
UPSTREAM_ERROR = (
    f"copy from https://acct.blob.core.windows.net/models/m/model.pkl?sv=2024-05-04&sr=b&sig={SIG} "
    f"refused; request had Authorization: Bearer {BEARER}"
)


class _Upstream(BaseHTTPRequestHandler):
    """A registry that refuses every request with MLflow's error shape, quoting what it was sent."""

    def _refuse(self) -> None:
        body = json.dumps({"error_code": "INVALID_PARAMETER_VALUE", "message": UPSTREAM_ERROR}).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = _refuse  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_an_upstream_secret_is_redacted_in_the_api_the_cli_and_the_audit_page(upstream: str, tmp_path: Path) -> None:
    config = write_config(
        tmp_path / "modelops.yaml",
        f"""
sources:
  mlflow: {{kind: mlflow, tracking_uri: "{upstream}"}}
registries:
  local-aml: {{kind: mlflow, tracking_uri: "sqlite:///{tmp_path}/aml.db", artifact_location: "{tmp_path}/art"}}
rules: []
worker: {{backoff_base_seconds: 0.2, poll_interval_seconds: 0.2}}
""",
    )
    headers = {"Authorization": f"Bearer {TOKEN}"}
    state = tmp_path / "state"
    model = unique("leaky")
    with ReactorProcess(state, config, env={"MODELOPS_OPS_TOKEN": TOKEN}) as reactor:
        body = {"kind": "register", "target": "local-aml", "model_name": model, "model_version": 1}
        answer = requests.post(f"{reactor.url}/api/actions", json=body, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text
        action_id = answer.json()["action_id"]

        def failed() -> dict | None:
            action = requests.get(f"{reactor.url}/api/actions/{action_id}", headers=headers, timeout=10).json()
            return action if action["status"] == "failed" else None

        action = wait_for(failed, timeout=120, what="the register to fail on the upstream's refusal")
        shown = {
            "GET /api/actions/{id}": json.dumps(action),
            "GET /api/actions": requests.get(f"{reactor.url}/api/actions", headers=headers, timeout=10).text,
            "GET /api/events/{id}": requests.get(
                f"{reactor.url}/api/events/{action['event_id']}", headers=headers, timeout=10
            ).text,
            "audit page": requests.get(
                f"{reactor.url}/api/ui/events/{action['event_id']}", headers=headers, timeout=10
            ).text,
            "log": reactor.log.read_text(),
        }
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELOPS_")}
    for command in (["actions", action_id], ["actions", "-o", "json"]):
        cli = subprocess.run(
            [sys.executable, "-m", "shared.cli.main", *command, "--state-dir", str(state), "--config", str(config)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0, cli.stderr
        shown[f"modelops {' '.join(command)}"] = cli.stdout
    assert "refused; request had Authorization" in action["error"]  # the error is there, its secrets are not
    assert "sig=***" in action["error"] and "Authorization: ***" in action["error"]
    for where, text in shown.items():
        assert SIG not in text and BEARER not in text, where
        assert UPSTREAM_ERROR.split("?")[0] in text or where == "log", where
