"""`X-Forwarded-For` names the client in refusal logs only when the peer is a proxy listed in
MODELOPS_TRUSTED_PROXIES (`host`: the Functions host, which passes no peer address)."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shared.bootstrap import Container
from shared.errors import ConfigError
from shared.service.dispatch import LocalDispatcher
from shared.settings import Settings
from shared.trusted_proxies import TrustedProxies
from tests.spine.apptest import make_app


def refusal_client(tmp_path: Path, trusted: str | None, peer: str, caplog: pytest.LogCaptureFixture) -> str:
    """The client a refused request's log line names, the request coming from ``peer`` and claiming 6.6.6.6."""
    _, reactor = make_app(tmp_path)
    settings = replace(reactor.settings, trusted_proxies=TrustedProxies.parse(trusted))
    client = TestClient(Container(settings, dispatcher=LocalDispatcher()).http_app(), client=(peer, 5000))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="modelops.api"):
        answer = client.post("/api/hooks/mlflow", json={}, headers={"X-Forwarded-For": "6.6.6.6, 10.0.0.7"})
    assert answer.status_code == 401
    [line] = [r.getMessage() for r in caplog.records if r.name == "modelops.api"]
    return line.rsplit("(client ", 1)[1][:-1]


@pytest.mark.parametrize(
    ("trusted", "peer", "named"),
    [
        (None, "203.0.113.9", "203.0.113.9"),  # nothing trusted: the header is ignored
        ("10.0.0.0/8", "203.0.113.9", "203.0.113.9"),  # the peer is not a listed proxy
        ("10.0.0.0/8", "10.0.0.5", "6.6.6.6 (via 10.0.0.5)"),  # a listed proxy, and the hop before it too
        ("10.0.0.5", "10.0.0.5", "10.0.0.7 (via 10.0.0.5)"),  # only the proxy: the hop it saw is the client
    ],
)
def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, trusted: str | None, peer: str, named: str
) -> None:
    assert refusal_client(tmp_path, trusted, peer, caplog) == named


def test_behind_the_functions_host_only_its_last_entry_counts() -> None:
    host = TrustedProxies.parse("host")
    assert host.client(None, "6.6.6.6, 198.51.100.4:51234") == "198.51.100.4 (via the Functions host)"
    assert TrustedProxies().client(None, "6.6.6.6") == "unknown"


def test_a_wrong_trusted_proxies_setting_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="MODELOPS_TRUSTED_PROXIES"):
        Settings.from_env({"MODELOPS_TRUSTED_PROXIES": "10.0.0.0/8, proxy.example.com"})
