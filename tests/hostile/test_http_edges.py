"""Hostile HTTP input at the routes: refused with the right 4xx, never a 5xx, nothing recorded."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.ledger.sqlite import SqliteLedger
from tests.spine.apptest import DATABRICKS_SECRET, MLFLOW_SECRET, make_app
from tests.support import ReactorProcess, databricks_delivery, mlflow_delivery, write_config

LIMIT = 4096
ENVELOPE = {
    "entity": "model_version",
    "action": "created",
    "timestamp": "2025-01-01T00:00:00Z",
    "data": {"name": "edge-model", "version": "1"},
}


@pytest.fixture
def app(tmp_path: Path) -> tuple[TestClient, SqliteLedger]:
    client, reactor = make_app(tmp_path, max_body_bytes=LIMIT)
    assert isinstance(reactor.ledger, SqliteLedger)
    return client, reactor.ledger


def _recorded(ledger: SqliteLedger) -> int:
    return len(ledger.list_events(limit=1000))


def _signed_raw(body: bytes, **headers: str) -> dict[str, str]:
    """MLflow signature headers over raw bytes (the signature covers exactly what is sent)."""
    from shared.ingest.signatures import sign_mlflow

    ts = str(int(time.time()))
    return {
        "X-MLflow-Delivery-Id": "d-1",
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Signature": sign_mlflow(MLFLOW_SECRET, "d-1", ts, body),
        **headers,
    }


HOSTILE_BODIES: dict[str, tuple[bytes, str]] = {
    "duplicate keys": (
        b'{"entity": "model_version", "entity": "registered_model", "action": "created", "data": {}}',
        "duplicate JSON key 'entity'",
    ),
    "deep nesting": (b'{"entity": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested deeper than 64"),
    "not UTF-8": (b'{"entity": "\xff\xfe"}', "not UTF-8"),
    "NaN": (
        b'{"entity": "model_version", "action": "created", "data": {"name": "m", "version": NaN}}',
        "NaN is not JSON",
    ),
    "huge float": (
        b'{"entity": "model_version", "action": "created", "data": {"name": "m", "version": 1e999}}',
        "out of range",
    ),
    "huge integer": (
        b'{"entity": "model_version", "action": "created", "data": {"name": "m", "version": ' + b"9" * 5000 + b"}}",
        "4300 digits",
    ),
    "lone surrogate": (
        b'{"entity": "model_version", "action": "created", "data": {"name": "\\ud800", "version": 1}}',
        "surrogate",
    ),
    "empty": (b"", "empty body"),
    "not JSON": (b"entity=model_version", "not valid JSON"),
    "array": (b"[1, 2]", "body must be a JSON object"),
    "wrong types": (b'{"entity": 1, "action": "created", "data": {}}', "body.entity must be str"),
}


class TestMalformedSignedBodies:
    @pytest.mark.parametrize("case", HOSTILE_BODIES, ids=list(HOSTILE_BODIES))
    def test_mlflow_route_answers_400_naming_the_problem(
        self, app: tuple[TestClient, SqliteLedger], tmp_path: Path, case: str
    ) -> None:
        client, ledger = app
        body, problem = HOSTILE_BODIES[case]
        if len(body) > LIMIT:  # the nesting case is bigger than the test limit: give it room
            client, reactor = make_app(tmp_path / "big", max_body_bytes=len(body) + 1)
            ledger = reactor.ledger  # type: ignore[assignment]
        response = client.post("/api/hooks/mlflow", content=body, headers=_signed_raw(body))
        assert response.status_code == 400, response.text
        assert problem in response.json()["error"]
        assert _recorded(ledger) == 0

    @pytest.mark.parametrize("case", HOSTILE_BODIES, ids=list(HOSTILE_BODIES))
    def test_unauthenticated_eventgrid_route_answers_400(self, app: tuple[TestClient, SqliteLedger], case: str) -> None:
        client, ledger = app
        body, _ = HOSTILE_BODIES[case]
        response = client.post("/api/hooks/eventgrid", content=body[:LIMIT])
        assert response.status_code == 400, response.text
        assert response.json()["error"]
        assert _recorded(ledger) == 0


class TestHeaders:
    def test_unsigned_and_tampered_mlflow_deliveries_are_401(self, app: tuple[TestClient, SqliteLedger]) -> None:
        client, ledger = app
        body, headers = mlflow_delivery(MLFLOW_SECRET, ENVELOPE)
        assert (
            client.post("/api/hooks/mlflow", content=body, headers={"Content-Type": "application/json"}).status_code
            == 401
        )
        tampered = body.replace(b"edge-model", b"edge-modem")
        assert client.post("/api/hooks/mlflow", content=tampered, headers=headers).status_code == 401
        stale = mlflow_delivery(MLFLOW_SECRET, ENVELOPE, timestamp=int(time.time()) - 301)
        answer = client.post("/api/hooks/mlflow", content=stale[0], headers=stale[1])
        assert answer.status_code == 401 and "replay refused" in answer.json()["error"]
        assert _recorded(ledger) == 0

    def test_signature_is_checked_before_the_body_is_parsed(self, app: tuple[TestClient, SqliteLedger]) -> None:
        client, _ = app
        body = b'{"entity": "x", "entity": "y"}'  # malformed, but unsigned: the 401 comes first
        assert client.post("/api/hooks/mlflow", content=body).status_code == 401
        assert client.post("/api/hooks/databricks", content=body).status_code == 401

    def test_content_type_is_not_what_authenticates(self, app: tuple[TestClient, SqliteLedger]) -> None:
        """The signature covers the raw body; senders' content types vary (Databricks job
        notifications), so a signed JSON body is taken whatever it is labelled."""
        client, ledger = app
        body, headers = mlflow_delivery(MLFLOW_SECRET, ENVELOPE)
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1"):
            response = client.post("/api/hooks/mlflow", content=body, headers={**headers, "Content-Type": content_type})
            assert response.status_code in (200, 202), response.text
        assert _recorded(ledger) == 1  # one delivery, acknowledged three times

    def test_header_casing_and_duplicates(self, app: tuple[TestClient, SqliteLedger]) -> None:
        client, _ = app
        body, headers = mlflow_delivery(MLFLOW_SECRET, ENVELOPE)
        lowered = {k.lower(): v for k, v in headers.items()}
        assert client.post("/api/hooks/mlflow", content=body, headers=lowered).status_code == 202
        # repeated signature headers: the first one is the one checked, whatever follows it
        good = [(k.encode(), v.encode()) for k, v in headers.items()]
        forged = (b"x-mlflow-signature", b"v1,AAAA")
        assert client.post("/api/hooks/mlflow", content=body, headers=[*good, forged]).status_code == 200  # duplicate
        second = {**ENVELOPE, "data": {"name": "edge-model", "version": "2"}}
        other, other_headers = mlflow_delivery(MLFLOW_SECRET, second)
        raw = [forged, *[(k.encode(), v.encode()) for k, v in other_headers.items()]]
        assert client.post("/api/hooks/mlflow", content=other, headers=raw).status_code == 401

    def test_databricks_bad_signature_and_basic_auth(self, app: tuple[TestClient, SqliteLedger]) -> None:
        client, ledger = app
        payload = {"event": "MODEL_VERSION_CREATED", "model_name": "edge-model", "version": "1"}
        body, headers = databricks_delivery(DATABRICKS_SECRET, payload)
        assert client.post("/api/hooks/databricks", content=body + b" ", headers=headers).status_code == 401
        assert (
            client.post(
                "/api/hooks/databricks", content=body, headers={"Authorization": "Basic !!not-base64!!"}
            ).status_code
            == 401
        )
        assert _recorded(ledger) == 0
        assert client.post("/api/hooks/databricks", content=body, headers=headers).status_code == 202

    def test_eventgrid_options_handshake_requires_origin(self, app: tuple[TestClient, SqliteLedger]) -> None:
        client, _ = app
        assert client.options("/api/hooks/eventgrid").status_code == 400
        ok = client.options("/api/hooks/eventgrid", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
        assert ok.status_code == 200 and ok.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"


class TestBodyLimit:
    @pytest.mark.parametrize("route", ["/api/hooks/mlflow", "/api/hooks/databricks", "/api/hooks/eventgrid"])
    def test_oversized_with_and_without_content_length(self, app: tuple[TestClient, SqliteLedger], route: str) -> None:
        client, ledger = app
        body = json.dumps({"pad": "x" * LIMIT}).encode()
        declared = client.post(route, content=body)
        assert declared.status_code == 413 and str(LIMIT) in declared.json()["error"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            for start in range(0, len(body), 512):
                yield body[start : start + 512]

        streamed = client.post(route, content=chunks())
        assert streamed.status_code == 413
        assert _recorded(ledger) == 0


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReactorProcess]:
    tmp = tmp_path_factory.mktemp("live")
    config = write_config(tmp / "modelops.yaml", 'sources:\n  mlflow: {tracking_uri: "http://127.0.0.1:9"}\n')
    with ReactorProcess(
        tmp / "state", config, env={"MLFLOW_WEBHOOK_SECRET": MLFLOW_SECRET}, extra=["--no-worker"]
    ) as server:
        yield server


def _exchange(port: int, head: bytes, body_parts: list[bytes]) -> tuple[bytes, int]:
    """Send a request head, then body parts only while the server has not answered; returns
    (first response bytes, number of body parts sent)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head)
        sent = 0
        for part in body_parts:
            sock.settimeout(0.05)
            try:
                answer = sock.recv(65536)
                if answer:
                    return answer, sent
            except TimeoutError:
                pass
            sock.settimeout(10)
            try:
                sock.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += 1
        sock.settimeout(10)
        return sock.recv(65536), sent


@pytest.mark.slow
class TestEarlyRefusalOverTheWire:
    """A real uvicorn: the 413 comes before the client has sent the body."""

    def test_declared_length_over_the_limit_is_refused_before_any_body(self, live_server: ReactorProcess) -> None:
        head = (
            b"POST /api/hooks/mlflow HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 104857600\r\n\r\n"
        )
        answer, sent = _exchange(live_server.port, head, [b"x" * 65536] * 1600)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 16, f"server read {sent} x 64 KiB before refusing"

    def test_chunked_body_is_cut_off_once_past_the_limit(self, live_server: ReactorProcess) -> None:
        head = b"POST /api/hooks/eventgrid HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunk = b"%x\r\n%s\r\n" % (65536, b" " * 65536)
        answer, sent = _exchange(live_server.port, head, [chunk] * 1600)  # 100 MiB offered
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
        assert sent < 64, f"server read {sent} x 64 KiB (limit 1 MiB) before refusing"
        assert _health(live_server)["ledger"]["events"] == {}  # nothing recorded


def _health(server: ReactorProcess) -> dict[str, Any]:
    import requests

    return dict(requests.get(f"{server.url}/api/health", timeout=10).json())
