"""The operator surface: events, actions, filters, operator requests, replay, OpenAPI."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from tests.spine.apptest import make_app


def _post_created(client: TestClient, name: str, version: str) -> dict:
    envelope = {
        "entity": "model_version",
        "action": "created",
        "data": {"name": name, "version": version, "source": "s", "run_id": None, "tags": {}},
    }
    response = client.post("/api/hooks/mlflow", json=envelope)
    assert response.status_code == 202, response.text
    return response.json()


class TestOpsApi:
    def test_events_and_actions_are_listed_and_filtered(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path, mlflow_webhook_secret=None)
        first = _post_created(client, "churn", "1")
        _post_created(client, "churn", "2")
        _post_created(client, "fraud", "1")
        events = client.get("/api/events").json()["events"]
        assert len(events) == 3
        event = client.get(f"/api/events/{first['event_id']}").json()
        assert event["model_name"] == "churn" and [a["id"] for a in event["actions"]] == first["action_ids"]
        assert len(client.get("/api/actions", params={"model": "churn"}).json()["actions"]) == 2
        assert len(client.get("/api/actions", params={"model": "churn", "version": "2"}).json()["actions"]) == 1
        assert len(client.get("/api/actions", params={"kind": "deploy"}).json()["actions"]) == 0
        assert len(client.get("/api/actions", params={"status": "queued"}).json()["actions"]) == 3
        action = client.get(f"/api/actions/{first['action_ids'][0]}").json()
        assert action["status"] == "queued" and action["log"][0]["message"].startswith("planned by copy")

    def test_unknown_ids_are_404_and_bad_filters_400(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        assert client.get("/api/events/evt_nope").status_code == 404
        assert client.get("/api/actions/act_nope").status_code == 404
        assert client.post("/api/events/evt_nope/replay").status_code == 404
        response = client.get("/api/actions", params={"status": "exploded"})
        assert response.status_code == 400 and "status" in response.json()["error"]

    def test_operator_requests_an_action_once(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path)
        body = {"kind": "deploy", "target": "local", "model_name": "churn", "model_version": 3}
        first = client.post("/api/actions", json=body)
        assert first.status_code == 202
        action_id = first.json()["action_id"]
        again = client.post("/api/actions", json=body)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert again.json()["action_id"] == action_id
        action = reactor.ledger.get_action(action_id)
        assert action is not None
        assert action.key == "deploy:local:churn:3" and (action.params.source_tracking_uri or "").startswith("sqlite:")

    def test_operator_requests_are_validated(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path)
        cases = [
            ({"kind": "deploy", "target": "nowhere", "model_name": "m", "model_version": 1}, "no deploy target named"),
            ({"kind": "explode", "target": "local", "model_name": "m", "model_version": 1}, "kind"),
            ({"kind": "deploy", "target": "local", "model_version": 1}, "model_name"),
            ({"kind": "deploy", "target": "local", "model_name": "m", "model_version": 1, "extra": 1}, "extra"),
            ({"kind": "deploy", "target": "local", "model_name": "m", "model_version": 1, "source": "x"}, "source"),
        ]
        for body, needle in cases:
            response = client.post("/api/actions", json=body)
            assert response.status_code == 400, body
            assert needle in response.json()["error"], response.json()
        assert reactor.ledger.list_actions() == []

    def test_replay_plans_what_new_rules_ask_for(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path, mlflow_webhook_secret=None)
        envelope = {
            "entity": "model_version_alias",
            "action": "created",
            "data": {"name": "fraud", "alias": "champion", "version": "2"},
        }
        ignored = client.post("/api/hooks/mlflow", json=envelope).json()
        assert ignored["ignored"] is True
        # the operator widens the rule and replays the event
        reactor.config = reactor.config.model_copy(
            update={
                "rules": [
                    r.model_copy(update={"models": ["*"]}) if r.name == "champion" else r for r in reactor.config.rules
                ]
            }
        )
        replayed = client.post(f"/api/events/{ignored['event_id']}/replay", json={})
        assert replayed.status_code == 202
        assert len(replayed.json()["planned"]) == 1  # register; deploy waits for it
        kinds = sorted(a["kind"] for a in client.get("/api/events/" + ignored["event_id"]).json()["actions"])
        assert kinds == ["deploy", "register"]

    def test_openapi_documents_every_route(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        paths = client.get("/api/openapi.json").json()["paths"]
        for path in (
            "/api/hooks/mlflow",
            "/api/hooks/databricks",
            "/api/hooks/eventgrid",
            "/api/health",
            "/api/events",
            "/api/events/{event_id}",
            "/api/events/{event_id}/replay",
            "/api/actions",
            "/api/actions/{action_id}",
            "/api/cleanup",
        ):
            assert path in paths, path

    def test_health(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        body = client.get("/api/health").json()
        assert body["status"] == "ok" and body["ledger"]["backend"] == "sqlite"


class TestCleanupRoute:
    def test_dry_run_is_the_default_and_the_report_is_kept(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path)
        response = client.post("/api/cleanup")
        assert response.status_code == 200
        report = response.json()
        assert report["dry_run"] is True and report["provider"] == "local"
        assert reactor.ledger.list_reports("cleanup")[0]["id"] == report["report_id"]
        assert client.post("/api/cleanup", json={"dry_run": "maybe"}).status_code == 400


class TestDeploymentsRoute:
    def test_lists_configured_targets_and_local_servers(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        response = client.get("/api/deployments")
        assert response.status_code == 200
        assert response.json() == {"deployments": []}  # no local server started yet; no cloud targets
