"""Azure ML events through Event Grid: both handshakes, both schemas, both key casings."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import azure.functions as func
import pytest

from shared.bootstrap import Container
from shared.settings import Settings
from tests.spine.apptest import make_app
from tests.support import indexed_functions, write_config


def grid_event(event_type: str, subject: str, data: dict, event_id: str = "e1") -> dict:
    return {
        "id": event_id,
        "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws",
        "subject": subject,
        "eventType": event_type,
        "eventTime": "2026-11-28T04:00:00.1234567Z",
        "data": data,
        "dataVersion": "2",
        "metadataVersion": "1",
    }


def cloud_event(event_type: str, subject: str, data: dict, event_id: str = "c1") -> dict:
    return {
        "specversion": "1.0",
        "id": event_id,
        "type": event_type,
        "subject": subject,
        "source": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws",
        "time": "2026-11-28T04:00:00Z",
        "data": data,
    }


REGISTERED = "Microsoft.MachineLearningServices.ModelRegistered"


def native_trigger(tmp_path: Path, config_text: str) -> tuple[Container, Callable[[func.EventGridEvent], None]]:
    """The app's container and the native Event Grid function, as the Functions host indexes it."""
    config = write_config(tmp_path / "c.yaml", config_text % {"tmp": tmp_path})
    env = {"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp_path / "state")}
    container = Container(Settings.from_env(env))
    return container, indexed_functions(container)["aml_events"].get_user_function()


def native_event(event_id: str, event_type: str, subject: str, data: dict[str, object]) -> func.EventGridEvent:
    return func.EventGridEvent(
        id=event_id,
        data=data,
        topic="/subscriptions/s/x",
        subject=subject,
        event_type=event_type,
        event_time=None,
        data_version="2",
    )


class TestHandshakes:
    def test_subscription_validation_is_answered_with_the_code(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path)
        body = [
            grid_event(
                "Microsoft.EventGrid.SubscriptionValidationEvent",
                "",
                {
                    "validationCode": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6",
                    "validationUrl": "https://rp-eastus2.eventgrid.azure.net/x",
                },
            )
        ]
        response = client.post("/api/hooks/eventgrid", json=body)
        assert response.status_code == 200
        assert response.json() == {"validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"}
        assert reactor.ledger.list_events() == []

    def test_cloudevents_abuse_protection_echoes_the_origin(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        response = client.options("/api/hooks/eventgrid", headers={"WebHook-Request-Origin": "eventgrid.azure.net"})
        assert response.status_code == 200
        assert response.headers["WebHook-Allowed-Origin"] == "eventgrid.azure.net"

    def test_options_without_origin_is_a_bad_request(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        assert client.options("/api/hooks/eventgrid").status_code == 400


class TestAzureMLEvents:
    @pytest.mark.parametrize(
        "data",
        [
            {"ModelName": "churn", "ModelVersion": 3, "ModelTags": {}, "ModelProperties": {}},
            {"modelName": "churn", "modelVersion": "3", "modelTags": {}, "modelProperties": {}},
            {},  # name and version from the subject alone
        ],
    )
    def test_model_registered_in_either_casing_plans_one_action(self, tmp_path: Path, data: dict) -> None:
        client, reactor = make_app(tmp_path)
        response = client.post("/api/hooks/eventgrid", json=[grid_event(REGISTERED, "models/churn:3", data)])
        assert response.status_code == 202, response.text
        [action] = reactor.ledger.list_actions()
        assert (action.model_name, action.model_version, action.kind) == ("churn", "3", "register")

    def test_cloudevents_single_and_batch(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path)
        one = cloud_event(REGISTERED, "models/churn:1", {"modelName": "churn", "modelVersion": 1}, "c1")
        response = client.post(
            "/api/hooks/eventgrid", json=one, headers={"Content-Type": "application/cloudevents+json"}
        )
        assert response.status_code == 202
        batch = [
            cloud_event(REGISTERED, f"models/churn:{v}", {"modelName": "churn", "modelVersion": v}, f"c{v}")
            for v in (1, 2, 3)
        ]
        response = client.post(
            "/api/hooks/eventgrid",
            content=json.dumps(batch),
            headers={"Content-Type": "application/cloudevents-batch+json"},
        )
        assert response.status_code == 202
        results = response.json()["results"]
        assert [r.get("duplicate", False) for r in results] == [True, False, False]
        assert sorted(a.model_version for a in reactor.ledger.list_actions()) == ["1", "2", "3"]

    def test_redelivered_events_are_duplicates(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path)
        body = [grid_event(REGISTERED, "models/churn:3", {"ModelName": "churn", "ModelVersion": 3})]
        assert client.post("/api/hooks/eventgrid", json=body).status_code == 202
        again = client.post("/api/hooks/eventgrid", json=body)
        assert again.status_code == 200 and again.json()["duplicate"] is True
        assert len(reactor.ledger.list_actions()) == 1

    def test_non_terminal_run_status_is_ignored(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        body = [
            grid_event(
                "Microsoft.MachineLearningServices.RunStatusChanged",
                "experiments/x/runs/r1",
                {
                    "experimentId": "x",
                    "experimentName": "exp",
                    "runId": "r1",
                    "runType": "azureml.scriptrun",
                    "runTags": {},
                    "runProperties": {},
                    "runStatus": "Running",
                },
            )
        ]
        response = client.post("/api/hooks/eventgrid", json=body)
        assert response.status_code == 200 and response.json()["ignored"] is True
        assert "not terminal" in response.json()["reason"]

    def test_other_event_types_are_acknowledged_as_ignored(self, tmp_path: Path) -> None:
        client, _ = make_app(tmp_path)
        body = [
            grid_event(
                "Microsoft.Storage.BlobCreated", "/blobServices/default/containers/c/blobs/b", {"api": "PutBlob"}
            )
        ]
        response = client.post("/api/hooks/eventgrid", json=body)
        assert response.status_code == 200 and response.json()["ignored"] is True

    @pytest.mark.parametrize(
        ("body", "needle"),
        [
            ([], "empty event batch"),
            ([{"subject": "x"}], "body[0].id is required"),
            ([grid_event(REGISTERED, "models/churn", {})], "data.modelVersion"),
            ([{**grid_event(REGISTERED, "models/c:1", {}), "eventTime": "yesterday"}], "RFC 3339"),
            ({"specversion": "0.3", "id": "x", "type": "t"}, "specversion"),
            ([grid_event("Microsoft.EventGrid.SubscriptionValidationEvent", "", {})], "validationCode"),
        ],
    )
    def test_malformed_deliveries_are_400(self, tmp_path: Path, body: object, needle: str) -> None:
        client, reactor = make_app(tmp_path)
        response = client.post("/api/hooks/eventgrid", json=body)
        assert response.status_code == 400
        assert needle in response.json()["error"]
        assert reactor.ledger.list_events() == []


class TestNativeEventGridTrigger:
    def test_the_trigger_function_records_the_event(self, tmp_path: Path) -> None:
        from tests.spine.apptest import CONFIG

        container, user_function = native_trigger(tmp_path, CONFIG)
        event = native_event("n1", REGISTERED, "models/churn:7", {"ModelName": "churn", "ModelVersion": 7})
        user_function(event)
        [action] = container.reactor().ledger.list_actions()
        assert (action.model_name, action.model_version) == ("churn", "7")
        user_function(event)  # at-least-once: the same event again
        assert len(container.reactor().ledger.list_actions()) == 1


class TestAzureMLRules:
    CONFIG = """
sources:
  azureml: {tracking_uri: "sqlite:///%(tmp)s/aml-source.db"}
deployments:
  online: {kind: local}
rules:
  - name: deploy-when-tagged
    on: model.registered
    tags: {deploy: online}
    do: [{deploy: online}]
"""

    def test_a_model_registered_with_the_tag_is_deployed_and_others_are_ignored(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path, config=self.CONFIG)
        tagged = grid_event(
            REGISTERED,
            "models/churn:5",
            {"ModelName": "churn", "ModelVersion": 5, "ModelTags": {"deploy": "online"}},
            "t1",
        )
        untagged = grid_event(REGISTERED, "models/churn:6", {"ModelName": "churn", "ModelVersion": 6}, "t2")
        assert client.post("/api/hooks/eventgrid", json=[tagged]).status_code == 202
        ignored = client.post("/api/hooks/eventgrid", json=[untagged])
        assert ignored.status_code == 200 and "tag deploy=online missing" in ignored.json()["reason"]
        [action] = reactor.ledger.list_actions()
        assert (action.kind, action.model_version, action.params.source) == ("deploy", "5", "azureml")


DEPLOYED = "Microsoft.MachineLearningServices.ModelDeployed"


class TestMultiModelDeployed:
    """A ModelDeployed names every model of the service in `ModelIds` ("name:version,..."): one
    event per model, each with its own dedupe key, whatever the schema or the entry point."""

    CONFIG = """
sources:
  azureml: {tracking_uri: "sqlite:///%(tmp)s/aml-source.db"}
batch:
  nightly: {kind: local, input: "%(tmp)s/in.parquet", output: "%(tmp)s/out-{model_version}.parquet"}
rules:
  - name: score-what-is-deployed
    on: model.deployed
    models: ["churn*", "fraud"]
    do: [{batch_score: nightly}]
"""
    DATA: dict[str, object] = {
        "ServiceName": "svc",
        "ServiceComputeType": "ACI",
        "ModelIds": "churn:3,fraud:7",
        "ServiceTags": {},
    }

    @pytest.mark.parametrize("schema", ["eventgrid", "cloudevents"])
    def test_two_model_ids_are_two_events_and_two_actions(self, tmp_path: Path, schema: str) -> None:
        client, reactor = make_app(tmp_path, config=self.CONFIG)
        make = grid_event if schema == "eventgrid" else cloud_event
        body = [make(DEPLOYED, "endpoints/svc", self.DATA, "d1")]

        response = client.post("/api/hooks/eventgrid", json=body)

        assert response.status_code == 202, response.text
        results = response.json()["results"]
        assert len(results) == 2 and len({r["event_id"] for r in results}) == 2
        events = reactor.ledger.list_events()
        assert sorted((e["model_name"], e["model_version"]) for e in events) == [("churn", "3"), ("fraud", "7")]
        assert len({e["dedupe_key"] for e in events}) == 2
        actions = reactor.ledger.list_actions()
        assert sorted((a.kind, a.model_name, a.model_version) for a in actions) == [
            ("batch_score", "churn", "3"),
            ("batch_score", "fraud", "7"),
        ]
        again = client.post("/api/hooks/eventgrid", json=body)
        assert again.status_code == 200 and all(r["duplicate"] for r in again.json()["results"])
        assert len(reactor.ledger.list_actions()) == 2

    def test_a_rule_on_the_second_model_fires_once(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path, config=self.CONFIG.replace('["churn*", "fraud"]', '["fraud"]'))
        response = client.post("/api/hooks/eventgrid", json=[grid_event(DEPLOYED, "endpoints/svc", self.DATA)])
        assert response.status_code == 202, response.text
        [action] = reactor.ledger.list_actions()
        assert (action.model_name, action.model_version) == ("fraud", "7")

    def test_the_native_trigger_records_one_event_per_model(self, tmp_path: Path) -> None:
        container, user_function = native_trigger(tmp_path, self.CONFIG)
        event = native_event("n2", DEPLOYED, "endpoints/svc", self.DATA)
        user_function(event)
        user_function(event)  # at-least-once: the same delivery again
        actions = container.reactor().ledger.list_actions()
        assert sorted((a.model_name, a.model_version) for a in actions) == [("churn", "3"), ("fraud", "7")]
