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

    def test_a_cut_listing_gives_the_request_for_the_next_page(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path, mlflow_webhook_secret=None)
        for version in ("1", "2", "3"):
            _post_created(client, "churn", version)
        first = client.get("/api/actions", params={"model": "churn", "limit": 2}).json()
        assert len(first["actions"]) == 2 and first["next"] == "/api/actions?model=churn&limit=2&offset=2"
        last = client.get(first["next"]).json()
        assert [a["model_version"] for a in last["actions"]] == ["1"] and "next" not in last
        events = client.get("/api/events", params={"limit": 3}).json()
        assert len(events["events"]) == 3 and "next" not in events  # all of them: nothing more to ask for
        events = client.get("/api/events", params={"limit": 1, "offset": 1}).json()
        assert events["next"] == "/api/events?limit=1&offset=2"

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

    def test_head_health_answers_like_get_without_a_body(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        response = client.head("/api/health")
        assert response.status_code == 200 and response.content == b""


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


class TestStrictBodies:
    def test_string_booleans_are_400_naming_the_field(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path)
        action = {"kind": "deploy", "target": "local", "model_name": "churn", "model_version": 3}
        for path, body, field in (
            ("/api/actions", {**action, "force": "yes"}, "force"),
            ("/api/actions", {**action, "force": 1}, "force"),
            ("/api/cleanup", {"dry_run": "no"}, "dry_run"),
            ("/api/cleanup", {"dry_run": 0}, "dry_run"),
            ("/api/events/evt_x/replay", {"force": "true"}, "force"),
        ):
            response = client.post(path, json=body)
            assert response.status_code == 400, (path, body)
            assert response.json()["problems"] == [{"field": field, "problem": "Input should be a valid boolean"}]
        assert reactor.ledger.list_reports("cleanup") == [] and reactor.ledger.list_actions() == []

    def test_duplicate_keys_and_non_json_are_refused_in_words(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path)
        cases = [
            ("/api/cleanup", b'{"dry_run": true, "dry_run": false}', "duplicate JSON key 'dry_run'"),
            ("/api/actions", b'{"kind": "deploy", "kind": "register"}', "duplicate JSON key 'kind'"),
            ("/api/events/evt_x/replay", b'{"force": true, "force": false}', "duplicate JSON key 'force'"),
            ("/api/cleanup", b"dry_run=false", "body is not valid JSON: Expecting value at line 1 column 1"),
            ("/api/actions", b"", "empty body; expected a JSON document"),
            ("/api/actions", b"[1]", "body must be a JSON object, not list"),
        ]
        for path, raw, needle in cases:
            response = client.post(path, content=raw, headers={"Content-Type": "application/json"})
            assert response.status_code == 400, (path, raw)
            assert needle in response.json()["error"], response.json()
            assert "JSON decode error" not in response.text
        assert reactor.ledger.list_reports("cleanup") == [] and reactor.ledger.list_actions() == []


class TestOneErrorShape:
    def test_404_405_and_validation_errors_answer_error_and_problems(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        answers = {
            "unknown route": (client.get("/api/nope"), 404, "no route /api/nope"),
            "unknown event": (client.get("/api/events/evt_nope"), 404, "no event evt_nope"),
            "unknown action": (client.get("/api/actions/act_nope"), 404, "no action act_nope"),
            "replay of nothing": (client.post("/api/events/evt_nope/replay"), 404, "no event evt_nope"),
            "wrong method": (client.delete("/api/cleanup"), 405, "DELETE is not allowed on /api/cleanup"),
            "bad query": (client.get("/api/actions", params={"limit": 0}), 400, "limit"),
        }
        for case, (response, status, needle) in answers.items():
            assert response.status_code == status, case
            body = response.json()
            assert set(body) == {"error", "problems"} and needle in body["error"], (case, body)
            assert body["problems"] and all(set(p) == {"field", "problem"} for p in body["problems"]), case
        assert answers["wrong method"][0].headers["Allow"] == "POST"

    def test_swagger_ui_is_served_by_the_app(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        page = client.get("/api/docs")
        assert page.status_code == 200 and "/api/docs/static/swagger-ui-bundle.js" in page.text
        assert "cdn" not in page.text.lower()
        assert client.get("/api/docs/static/swagger-ui-bundle.js").status_code == 200
        assert client.get("/api/docs/static/swagger-ui.css").status_code == 200
