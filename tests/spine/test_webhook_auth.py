"""Signed webhooks: bad or missing signatures get 401 and change nothing."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from shared.service.reactor import Reactor
from tests.spine.apptest import DATABRICKS_SECRET, MLFLOW_SECRET, make_app
from tests.support import databricks_delivery, mlflow_delivery

ENVELOPE = {
    "entity": "model_version",
    "action": "created",
    "timestamp": "2026-11-28T04:00:00Z",
    "data": {"name": "churn", "version": "3", "source": "models:/m-1", "run_id": "r1", "tags": {}},
}
DATABRICKS = {
    "event": "MODEL_VERSION_CREATED",
    "webhook_id": "w1",
    "event_timestamp": 1764300000000,
    "model_name": "churn",
    "version": "3",
    "text": "",
    "tags": [],
}


@pytest.fixture
def app(tmp_path: Path) -> tuple[TestClient, Reactor]:
    return make_app(tmp_path)


def nothing_recorded(reactor: Reactor) -> bool:
    return reactor.ledger.list_events() == [] and reactor.ledger.list_actions() == []


class TestMlflowSignature:
    def test_valid_signature_is_accepted(self, app: tuple[TestClient, Reactor]) -> None:
        client, reactor = app
        body, headers = mlflow_delivery(MLFLOW_SECRET, ENVELOPE)
        response = client.post("/api/hooks/mlflow", content=body, headers=headers)
        assert response.status_code == 202, response.text
        assert len(response.json()["action_ids"]) == 1
        assert reactor.ledger.list_actions()[0].key == "register:local-aml:churn:3"

    @pytest.mark.parametrize(
        "case",
        [
            "tampered body",
            "wrong secret",
            "stale timestamp",
            "future timestamp",
            "missing signature",
            "missing timestamp",
            "missing delivery id",
            "other delivery id",
            "unknown scheme",
        ],
    )
    def test_bad_signatures_are_refused(self, app: tuple[TestClient, Reactor], case: str) -> None:
        client, reactor = app
        secret = "not-the-secret" if case == "wrong secret" else MLFLOW_SECRET
        ts = {"stale timestamp": int(time.time()) - 301, "future timestamp": int(time.time()) + 301}.get(case)
        body, headers = mlflow_delivery(secret, ENVELOPE, timestamp=ts)
        if case == "tampered body":
            body = body.replace(b'"3"', b'"4"')
        headers = {**headers}
        if case.startswith("missing"):
            headers.pop(
                {
                    "missing signature": "X-MLflow-Signature",
                    "missing timestamp": "X-MLflow-Timestamp",
                    "missing delivery id": "X-MLflow-Delivery-Id",
                }[case]
            )
        if case == "other delivery id":
            headers["X-MLflow-Delivery-Id"] = "someone-else"
        if case == "unknown scheme":
            headers["X-MLflow-Signature"] = headers["X-MLflow-Signature"].replace("v1,", "v2,")
        response = client.post("/api/hooks/mlflow", content=body, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]
        assert nothing_recorded(reactor)

    def test_without_a_secret_unsigned_deliveries_are_accepted(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path, mlflow_webhook_secret=None)
        response = client.post("/api/hooks/mlflow", json=ENVELOPE)
        assert response.status_code == 202


class TestDatabricksSignature:
    def test_valid_signature_is_accepted(self, app: tuple[TestClient, Reactor]) -> None:
        client, _ = app
        body, headers = databricks_delivery(DATABRICKS_SECRET, DATABRICKS)
        response = client.post("/api/hooks/databricks", content=body, headers=headers)
        assert response.status_code == 202, response.text

    @pytest.mark.parametrize("case", ["tampered body", "wrong secret", "missing header", "not hex"])
    def test_bad_signatures_are_refused(self, app: tuple[TestClient, Reactor], case: str) -> None:
        client, reactor = app
        body, headers = databricks_delivery("nope" if case == "wrong secret" else DATABRICKS_SECRET, DATABRICKS)
        if case == "tampered body":
            body = body.replace(b'"3"', b'"9"')
        if case == "missing header":
            headers.pop("X-Databricks-Signature")
        if case == "not hex":
            headers["X-Databricks-Signature"] = "zz" * 32
        response = client.post("/api/hooks/databricks", content=body, headers=headers)
        assert response.status_code == 401
        assert nothing_recorded(reactor)

    def test_signature_is_checked_before_the_body_is_parsed(self, app: tuple[TestClient, Reactor]) -> None:
        client, reactor = app
        response = client.post("/api/hooks/databricks", content=b"{not json", headers={"X-Databricks-Signature": "0"})
        assert response.status_code == 401
        assert nothing_recorded(reactor)


class TestMalformedBodies:
    @pytest.mark.parametrize(
        ("body", "needle"),
        [
            (b"", "empty body"),
            (b"{not json", "not valid JSON"),
            (b"[1, 2]", "must be a JSON object"),
            (b'{"entity": "model_version", "action": "created"}', "data is required"),
            (b'{"entity": "model_version", "action": "created", "data": {"version": "1"}}', "data.name is required"),
            (
                b'{"entity": "model_version", "action": "created", "data": {"name": "m", "version": true}}',
                "data.version",
            ),
            (b'{"entity": "model_version", "entity": "x", "action": "created", "data": {}}', "duplicate JSON key"),
            (b"[" * 100 + b"]" * 100, "nested deeper"),
        ],
    )
    def test_answered_400_naming_the_problem(self, tmp_path: Path, body: bytes, needle: str) -> None:
        client, reactor = make_app(tmp_path, mlflow_webhook_secret=None)
        response = client.post("/api/hooks/mlflow", content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 400
        assert needle in response.json()["error"]
        assert nothing_recorded(reactor)

    def test_oversized_bodies_are_refused_early(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path, mlflow_webhook_secret=None, max_body_bytes=1024)
        response = client.post("/api/hooks/mlflow", content=b"x" * 4096)
        assert response.status_code == 413
        assert nothing_recorded(reactor)


class TestIgnoredEvents:
    def test_unknown_mlflow_events_are_acknowledged_and_recorded_as_ignored(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path, mlflow_webhook_secret=None)
        response = client.post(
            "/api/hooks/mlflow", json={"entity": "prompt", "action": "created", "data": {"name": "p"}}
        )
        assert response.status_code == 200
        assert response.json()["ignored"] is True
        [event] = reactor.ledger.list_events()
        assert event["status"] == "ignored" and "prompt.created" in event["reason"]
        assert reactor.ledger.list_actions() == []

    def test_events_no_rule_matches_are_ignored_with_the_reason(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path, mlflow_webhook_secret=None)
        envelope = {
            "entity": "model_version_alias",
            "action": "created",
            "data": {"name": "fraud", "alias": "champion", "version": "2"},
        }
        response = client.post("/api/hooks/mlflow", json=envelope)
        assert response.status_code == 200 and response.json()["ignored"] is True
        assert "not in ['churn-*']" in response.json()["reason"]


class TestRefusalsAreLogged:
    def test_each_rejected_delivery_logs_source_reason_and_client_but_no_secret_or_body(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        client, _ = make_app(tmp_path, max_body_bytes=1024)
        body, headers = mlflow_delivery("a-forger-guess", ENVELOPE)
        big = b'{"pad": "' + b"s" * 2048 + b'"}'
        with caplog.at_level(logging.WARNING, logger="modelops.api"):
            assert client.post("/api/hooks/mlflow", content=body, headers=headers).status_code == 401
            forwarded = {**headers, "X-Forwarded-For": "203.0.113.7, 10.0.0.1"}
            assert client.post("/api/hooks/mlflow", content=body, headers=forwarded).status_code == 401
            assert client.post("/api/hooks/databricks", content=big).status_code == 413
            assert client.post("/api/hooks/eventgrid", content=b'{"id": 1, "id": 2}').status_code == 400
        lines = [r.getMessage() for r in caplog.records if r.name == "modelops.api"]
        assert len(lines) == 4, lines
        assert lines[0].startswith("webhook delivery refused: POST /api/hooks/mlflow -> 401: ")
        # X-Forwarded-For from a peer that is no trusted proxy (MODELOPS_TRUSTED_PROXIES) is ignored
        assert "client testclient" in lines[0] and lines[1].endswith("(client testclient)")
        assert "/api/hooks/databricks -> 413" in lines[2] and "/api/hooks/eventgrid -> 400: invalid body" in lines[3]
        for secret in (
            MLFLOW_SECRET,
            DATABRICKS_SECRET,
            "a-forger-guess",
            headers["X-MLflow-Signature"],
            "churn",
            "sss",
        ):
            assert secret not in caplog.text
