"""The smaller edges of the HTTP surface: the CloudEvents handshake's origin, the docs page's headers,
what /api/health shows without a credential, bidi controls on the audit page, an open `serve`."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from shared.settings import OpsAuthSettings
from tests.spine.apptest import MLFLOW_SECRET, make_app
from tests.support import ROOT, mlflow_delivery

TOKEN = "edges-operator-token"


@pytest.mark.parametrize(
    ("origin", "status"),
    [("eventgrid.azure.net", 200), ("evil.example.com, other", 400), ("a" * 254, 400), (b"bad\xe9.com", 400)],
)
def test_the_cloudevents_handshake_echoes_only_a_host_name(tmp_path: Path, origin: str | bytes, status: int) -> None:
    client, _ = make_app(tmp_path)
    answer = client.options("/api/hooks/eventgrid", headers={"WebHook-Request-Origin": origin})
    assert answer.status_code == status, answer.text
    if status == 200:
        assert answer.headers["WebHook-Allowed-Origin"] == origin
    else:
        assert "WebHook-Allowed-Origin" not in answer.headers and answer.json()["problems"]


def test_the_docs_page_runs_only_its_own_scripts_and_is_never_framed(tmp_path: Path) -> None:
    client, _ = make_app(tmp_path)
    answer = client.get("/api/docs")
    assert answer.status_code == 200
    policy = answer.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and answer.headers["X-Frame-Options"] == "DENY"
    [inline] = re.findall(r"<script>(.*?)</script>", answer.text, flags=re.S)
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"script-src 'self' 'sha256-{digest}';" in policy and "unsafe-eval" not in policy


def test_health_names_the_ledger_file_only_to_an_operator(tmp_path: Path) -> None:
    client, reactor = make_app(tmp_path, ops_auth=OpsAuthSettings(token=TOKEN))
    public = client.get("/api/health")
    assert public.status_code == 200 and public.json()["status"] == "ok"
    assert "path" not in public.json()["ledger"] and str(tmp_path) not in public.text
    operator = client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert operator["ledger"]["path"] == str(reactor.settings.state_dir / "ledger.db")


def test_a_bidi_override_in_a_model_name_is_shown_marked_on_the_audit_page(tmp_path: Path) -> None:
    client, _ = make_app(tmp_path)
    name = "invoice\u202egpj.exe"
    data = {"name": name, "version": "3", "source": "models:/m-1", "run_id": "r1", "tags": {}}
    envelope = {"entity": "model_version", "action": "created", "timestamp": "2026-12-07T12:00:00Z", "data": data}
    body, headers = mlflow_delivery(MLFLOW_SECRET, envelope)
    event_id = client.post("/api/hooks/mlflow", content=body, headers=headers).json()["event_id"]
    for path in ("/api/ui/", f"/api/ui/events/{event_id}"):
        page = client.get(path)
        assert page.status_code == 200
        assert "invoice[U+202E]gpj.exe" in page.text and "\u202e" not in page.text, path
    assert client.get(f"/api/events/{event_id}").json()["model_name"] == name  # the data keeps what was sent


def test_serve_refuses_a_non_loopback_bind_with_open_ops_routes(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODELOPS_", "WEBSITE_"))}
    command = [sys.executable, "-m", "shared.cli.main", "serve", "--host", "0.0.0.0", "--state-dir", str(tmp_path)]
    refused = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2
    assert "0.0.0.0 is reachable from other machines" in refused.stderr and "--allow-open" in refused.stderr
    assert not (tmp_path / "ledger.db").exists()  # refused before anything was opened


def test_open_bind_is_allowed_with_a_credential_or_when_asked() -> None:
    from shared.cli.commands.serve_cmd import refuse_open_bind
    from shared.errors import ConfigError
    from shared.settings import Settings

    open_settings = Settings()
    refuse_open_bind("127.0.0.1", open_settings, allow_open=False)
    refuse_open_bind("::1", open_settings, allow_open=False)
    refuse_open_bind("0.0.0.0", open_settings, allow_open=True)
    refuse_open_bind("0.0.0.0", replace(open_settings, ops_auth=OpsAuthSettings(token=TOKEN)), allow_open=False)
    with pytest.raises(ConfigError):
        refuse_open_bind("192.0.2.10", open_settings, allow_open=False)


def test_a_trickled_body_gets_408_and_holds_no_connection(tmp_path: Path) -> None:
    import socket
    import time

    from tests.support import ReactorProcess, write_config

    config = write_config(
        tmp_path / "modelops.yaml", 'sources:\n  mlflow: {kind: mlflow, tracking_uri: "sqlite:///x.db"}\n'
    )
    env = {"MODELOPS_BODY_READ_TIMEOUT_SECONDS": "1", "MLFLOW_WEBHOOK_SECRET": "trickle-secret"}
    with ReactorProcess(tmp_path / "state", config, env=env) as reactor:
        with socket.create_connection(("127.0.0.1", reactor.port), timeout=10) as sock:
            head = "POST /api/hooks/mlflow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
            sock.sendall(head.encode() + b'{"entity"')
            started = time.monotonic()
            received = b""
            while b"did not arrive" not in received:  # the head and the body may come in two packets
                chunk = sock.recv(4096)
                if not chunk:
                    break
                received += chunk
            answer = received.decode(errors="replace")
            assert time.monotonic() - started < 8
        assert answer.startswith("HTTP/1.1 408"), answer
        assert "did not arrive within 1 s" in answer
