"""Ops routes take an operator credential that no webhook URL carries; webhooks keep their signatures."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from shared.domain.actions import PlannedAction
from shared.domain.events import MODEL_VERSION_ALIAS_SET, ModelEvent
from shared.domain.outputs import ApproveOutputs
from shared.domain.params import ActionParams
from shared.errors import ConfigError
from shared.service.reactor import Reactor
from shared.settings import OpsAuthSettings, Settings
from tests.contract.entra_server import APP_ID_URI, CLIENT_ID, EntraTenant
from tests.contract.https import HttpsServer, TestCA
from tests.spine.apptest import MLFLOW_SECRET, make_app
from tests.support import mlflow_delivery

OPS_TOKEN = "local-operator-token"
FUNCTION_KEY = "the-function-key-a-webhook-url-carries"
ENVELOPE = {"entity": "model_version", "action": "created", "data": {"name": "churn", "version": "1"}}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_refused(response: object, status: int, needle: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"error", "problems"} and needle in body["error"], body
    assert body["problems"][0]["field"] == "Authorization"


@pytest.fixture
def local(tmp_path: Path) -> tuple[TestClient, Reactor]:
    return make_app(tmp_path, ops_auth=OpsAuthSettings(token=OPS_TOKEN))


class TestLocalOperatorToken:
    def test_webhook_secret_and_function_key_alone_cannot_run_a_cleanup(
        self, local: tuple[TestClient, Reactor], caplog: pytest.LogCaptureFixture
    ) -> None:
        client, reactor = local
        body, signed = mlflow_delivery(MLFLOW_SECRET, {"dry_run": False})
        with caplog.at_level(logging.WARNING, logger="modelops.api"):
            for headers in (
                signed,
                {"x-functions-key": FUNCTION_KEY},
                bearer(MLFLOW_SECRET),
                bearer(FUNCTION_KEY),
                {"Authorization": f"Basic {MLFLOW_SECRET}"},
            ):
                response = client.post(f"/api/cleanup?code={FUNCTION_KEY}", content=body, headers=headers)
                assert_refused(response, 401, "operator")
        assert reactor.ledger.list_reports("cleanup") == []
        refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
        assert len(refusals) == 5 and all(
            "POST /api/cleanup -> 401" in m and "client testclient" in m for m in refusals
        )
        assert not any(secret in caplog.text for secret in (MLFLOW_SECRET, FUNCTION_KEY, OPS_TOKEN, "dry_run"))

    def test_the_operator_token_runs_a_real_cleanup(self, local: tuple[TestClient, Reactor]) -> None:
        client, reactor = local
        response = client.post("/api/cleanup", json={"dry_run": False}, headers=bearer(OPS_TOKEN))
        assert response.status_code == 200, response.text
        assert response.json()["dry_run"] is False
        assert len(reactor.ledger.list_reports("cleanup")) == 1

    def test_every_ops_route_needs_it_and_webhooks_do_not(self, local: tuple[TestClient, Reactor]) -> None:
        client, _ = local
        body = {"kind": "register", "target": "local-aml", "model_name": "churn", "model_version": 1}
        for method, path, payload in (
            ("POST", "/api/actions", body),
            ("POST", "/api/events/evt_x/replay", {}),
            ("GET", "/api/events", None),
            ("GET", "/api/events/evt_x", None),
            ("GET", "/api/actions", None),
            ("GET", "/api/actions/act_x", None),
            ("GET", "/api/deployments", None),
        ):
            assert_refused(client.request(method, path, json=payload), 401, "Authorization: Bearer")
            assert client.request(method, path, json=payload, headers=bearer(OPS_TOKEN)).status_code in (200, 202, 404)
        assert_refused(client.get("/api/events", headers=bearer("wrong")), 401, "not the operator token")
        delivery, headers = mlflow_delivery(MLFLOW_SECRET, ENVELOPE)
        assert client.post("/api/hooks/mlflow", content=delivery, headers=headers).status_code == 202
        assert client.get("/api/health").status_code == 200
        assert client.get("/api/openapi.json").status_code == 200

    def test_a_setting_opens_the_reads_only(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path, ops_auth=OpsAuthSettings(token=OPS_TOKEN, open_reads=True))
        assert client.get("/api/actions").status_code == 200
        assert_refused(client.post("/api/cleanup"), 401, "operator")

    def test_unset_locally_the_routes_are_open_and_the_app_warns(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.WARNING, logger="modelops.auth"):
            client, _ = make_app(tmp_path)
        assert "set MODELOPS_OPS_TOKEN" in caplog.text
        assert client.post("/api/cleanup").status_code == 200

    def test_unset_in_azure_the_routes_are_closed(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path, ops_auth=OpsAuthSettings(in_azure=True))
        assert_refused(client.post("/api/cleanup"), 401, "MODELOPS_OPS_TENANT_ID")
        assert_refused(client.get("/api/actions"), 401, "MODELOPS_OPS_TENANT_ID")


@pytest.fixture(scope="module")
def tenant(test_ca: TestCA) -> Iterator[EntraTenant]:
    entra = EntraTenant()
    with HttpsServer(entra.app, test_ca) as server:
        entra.authority = server.url
        yield entra


@pytest.fixture
def entra_app(tmp_path: Path, tenant: EntraTenant, trust_test_ca: TestCA) -> tuple[TestClient, Reactor]:
    settings = Settings.from_env(
        {
            "MODELOPS_OPS_TENANT_ID": tenant.tenant,
            "MODELOPS_OPS_AUDIENCE": f"{CLIENT_ID}, {APP_ID_URI}",
            "MODELOPS_OPS_AUTHORITY": tenant.authority + "/",
            "WEBSITE_INSTANCE_ID": "instance-1",
        }
    )
    return make_app(tmp_path, ops_auth=settings.ops_auth)


class TestEntraToken:
    def test_a_token_with_the_operator_role_runs_a_cleanup(
        self, entra_app: tuple[TestClient, Reactor], tenant: EntraTenant
    ) -> None:
        client, reactor = entra_app
        for audience in (CLIENT_ID, APP_ID_URI):
            token = tenant.token(roles=["ModelOps.Operator"], audience=audience)
            response = client.post("/api/cleanup", json={"dry_run": False}, headers=bearer(token))
            assert response.status_code == 200, response.text
        assert len(reactor.ledger.list_reports("cleanup")) == 2

    def test_a_token_without_the_role_is_403(self, entra_app: tuple[TestClient, Reactor], tenant: EntraTenant) -> None:
        client, reactor = entra_app
        for roles in (None, [], ["ModelOps.Reader"]):
            response = client.post("/api/cleanup", headers=bearer(tenant.token(roles=roles)))
            assert_refused(response, 403, "app role ModelOps.Operator")
        assert reactor.ledger.list_reports("cleanup") == []

    def test_invalid_tokens_are_401(self, entra_app: tuple[TestClient, Reactor], tenant: EntraTenant) -> None:
        client, _ = entra_app
        role = ["ModelOps.Operator"]
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cases = {
            "not a JWT": (MLFLOW_SECRET, "not a JWT"),
            "other audience": (tenant.token(roles=role, audience="api://someone-else"), "audience"),
            "other issuer": (tenant.token(roles=role, issuer="https://sts.example/evil/v2.0"), "issuer"),
            "expired": (tenant.token(roles=role, expires_in=-600), "expired"),
            "forged signature": (tenant.token(roles=role, key=other_key), "signature does not verify"),
            "unknown key": (tenant.token(roles=role, key=other_key, kid="forged"), "unknown key"),
        }
        for case, (token, needle) in cases.items():
            response = client.post("/api/cleanup", headers=bearer(token))
            assert response.status_code == 401, case
            assert needle in response.json()["error"], (case, response.json())
            assert response.headers["WWW-Authenticate"].startswith("Bearer")

    def test_the_keys_are_fetched_once(self, entra_app: tuple[TestClient, Reactor], tenant: EntraTenant) -> None:
        client, _ = entra_app
        before = tenant.metadata_requests
        for _ in range(3):
            assert (
                client.get("/api/actions", headers=bearer(tenant.token(roles=["ModelOps.Operator"]))).status_code == 200
            )
        assert tenant.metadata_requests == before + 1

    def test_the_document_says_which_routes_take_the_token(self, entra_app: tuple[TestClient, Reactor]) -> None:
        client, _ = entra_app
        doc = client.get("/api/openapi.json").json()
        assert doc["components"]["securitySchemes"]["operatorBearer"]["scheme"] == "bearer"
        cleanup = doc["paths"]["/api/cleanup"]["post"]
        assert cleanup["security"] == [{"operatorBearer": []}] and {"401", "403", "503"} <= set(cleanup["responses"])
        assert "security" not in doc["paths"]["/api/hooks/mlflow"]["post"]

    def test_an_approval_is_decided_only_with_the_approver_role_and_names_the_user(
        self, entra_app: tuple[TestClient, Reactor], tenant: EntraTenant
    ) -> None:
        client, reactor = entra_app
        planned = PlannedAction("approve", "owners", "m", "1", params=ActionParams(source="mlflow"), rule="gate")
        event = ModelEvent(
            source="mlflow", kind=MODEL_VERSION_ALIAS_SET, source_type="t", model_name="m", model_version="1"
        )
        [action_id] = reactor.ledger.record_event(event, [planned], reason=None, max_attempts=3).action_ids
        assert reactor.ledger.claim("w", 30) is not None
        asked = ApproveOutputs(approval="owners", requested_at="2026-01-01T00:00:00+00:00")
        assert reactor.ledger.wait(action_id, "w", asked, datetime.now(UTC) + timedelta(hours=1))
        decide = f"/api/actions/{action_id}/approve"

        operator = bearer(tenant.token(roles=["ModelOps.Operator"]))
        assert_refused(client.post(decide, json={"decision": "approve"}, headers=operator), 403, "ModelOps.Approve")
        assert client.get("/api/approvals", headers=operator).json()["approvals"][0]["action_id"] == action_id

        approver = bearer(tenant.token(roles=["ModelOps.Approve"]))
        decided = client.post(decide, json={"decision": "approve", "comment": "ok"}, headers=approver)
        assert decided.status_code == 200, decided.text
        outputs = decided.json()["outputs"]
        assert outputs["decided_by"] == "operator@contoso.example (object id 0f9c1e6e-6e0e-4a53-8c0e-5a1f0e7b2c11)"
        assert outputs["via"] == "api" and outputs["comment"] == "ok"


class TestSettings:
    def test_ops_settings_are_read_and_checked(self) -> None:
        settings = Settings.from_env(
            {"MODELOPS_OPS_TOKEN": "t", "MODELOPS_OPS_OPEN_READS": "true", "MODELOPS_OPS_ROLE": "Ops.Run"}
        ).ops_auth
        assert settings == OpsAuthSettings(token="t", open_reads=True, role="Ops.Run")
        with pytest.raises(ConfigError, match="MODELOPS_OPS_AUDIENCE"):
            Settings.from_env({"MODELOPS_OPS_TENANT_ID": "t"})
        with pytest.raises(ConfigError, match="MODELOPS_OPS_OPEN_READS"):
            Settings.from_env({"MODELOPS_OPS_OPEN_READS": "yes please"})
