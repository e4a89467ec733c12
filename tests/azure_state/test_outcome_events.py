"""Outcome events reach an Event Grid topic (a contract server over real HTTPS) as CloudEvents."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from shared.adapters.outcome_events import OutcomePublisher, OutcomeTopic
from shared.domain.actions import Action
from shared.domain.outputs import BatchScoreOutputs
from shared.domain.params import ActionParams
from shared.settings import Settings
from tests.contract.credentials import CONTRACT_TOKEN, StaticTokenCredential
from tests.contract.eventgrid_topic_server import EventGridTopic
from tests.contract.https import HttpsServer, TestCA

KEY = "topic-access-key-0123456789"


def finished(status: str = "succeeded", **outputs: Any) -> Action:
    now = datetime.now(UTC)
    return Action(
        id="act_1",
        key="batch_score:nightly:churn:3",
        kind="batch_score",
        target="nightly",
        model_name="churn",
        model_version="3",
        event_id="evt_1",
        status=status,
        params=ActionParams(source="mlflow", source_tracking_uri="https://x?sig=abc"),
        outputs=BatchScoreOutputs(**outputs),
        attempts=1,
        started_at=now,
        finished_at=now,
        duration_ms=12,
        error="RetryableError: 503" if status == "failed" else None,
    )


def publisher(server: HttpsServer, key: str | None = KEY, **options: object) -> OutcomePublisher:
    topic = OutcomeTopic(endpoint=f"{server.url}/api/events", key=key, backoff_seconds=0.01, **options)  # type: ignore[arg-type]
    return OutcomePublisher(topic, credential=None if key else StaticTokenCredential())


class TestOutcomeEvents:
    def test_a_succeeded_action_is_published_as_a_cloudevent_with_the_key(self, trust_test_ca: TestCA) -> None:
        topic = EventGridTopic(key=KEY)
        with HttpsServer(topic.app, trust_test_ca) as server:
            secret = {"input": "dbfs:/in", "sas_token": "t0ps3cret"}
            publisher(server).publish(finished(model_version="7", job_parameters=secret, run_page_url="https://e"))
        [event] = topic.received
        assert event["type"] == "modelops.action.succeeded" and event["source"] == "/modelops-reactor"
        assert event["subject"] == "models/churn/versions/3" and event["specversion"] == "1.0"
        data = event["data"]
        assert data["action_id"] == "act_1" and data["status"] == "succeeded"
        # no secret-named output, at any depth
        assert data["outputs"] == {
            "model_version": "7",
            "job_parameters": {"input": "dbfs:/in"},
            "run_page_url": "https://e",
        }
        assert "params" not in data

    def test_a_superseded_deploy_is_its_own_type_not_a_failure(self, trust_test_ca: TestCA) -> None:
        topic = EventGridTopic(key=KEY)
        with HttpsServer(topic.app, trust_test_ca) as server:
            publisher(server).publish(finished("superseded"))
        [event] = topic.received
        assert event["type"] == "modelops.action.superseded" and event["data"]["status"] == "superseded"

    def test_entra_auth_sends_a_bearer_token_for_event_grid(self, trust_test_ca: TestCA) -> None:
        topic = EventGridTopic(token=CONTRACT_TOKEN)
        with HttpsServer(topic.app, trust_test_ca) as server:
            credential = StaticTokenCredential()
            topic_settings = OutcomeTopic(endpoint=f"{server.url}/api/events")
            OutcomePublisher(topic_settings, credential=credential).publish(finished("failed"))
        assert [e["type"] for e in topic.received] == ["modelops.action.failed"]
        assert credential.scopes == [("https://eventgrid.azure.net/.default",)]

    def test_server_errors_are_retried_then_delivered(self, trust_test_ca: TestCA) -> None:
        topic = EventGridTopic(key=KEY)
        topic.fail_next(503, 500)
        with HttpsServer(topic.app, trust_test_ca) as server:
            publisher(server).publish(finished())
        assert topic.attempts == 3 and len(topic.received) == 1

    def test_a_throttled_publish_waits_the_retry_after_then_delivers(self, trust_test_ca: TestCA) -> None:
        topic = EventGridTopic(key=KEY)
        topic.fail_next(429, retry_after="2")
        with HttpsServer(topic.app, trust_test_ca) as server:
            publisher(server).publish(finished())  # backoff 0.01 s: only the Retry-After makes it wait
        assert topic.attempts == 2 and len(topic.received) == 1
        assert topic.at[1] - topic.at[0] >= 1.95

    def test_retries_are_bounded(self, trust_test_ca: TestCA) -> None:
        topic = EventGridTopic(key=KEY)
        topic.fail_next(503, 503, 503, 503)
        with HttpsServer(topic.app, trust_test_ca) as server, pytest.raises(HttpResponseError):
            publisher(server, retries=2).publish(finished())
        assert topic.attempts == 3 and topic.received == []

    def test_a_wrong_key_is_refused_and_not_retried(self, trust_test_ca: TestCA) -> None:
        topic = EventGridTopic(key=KEY)
        with HttpsServer(topic.app, trust_test_ca) as server, pytest.raises(ClientAuthenticationError):
            publisher(server, key="wrong-key-0000").publish(finished())
        assert topic.attempts == 1 and topic.received == []

    def test_settings_select_the_topic(self) -> None:
        assert OutcomeTopic.from_settings(Settings.from_env({}).outcome_topic) is None
        settings = Settings.from_env({"MODELOPS_OUTCOME_TOPIC_ENDPOINT": "https://t/api/events"})
        topic = OutcomeTopic.from_settings(settings.outcome_topic)
        assert topic is not None and topic.key is None and topic.retries == 3


class TestApprovalEvents:
    def test_an_approval_is_published_when_it_starts_waiting_and_when_it_is_decided(
        self, trust_test_ca: TestCA
    ) -> None:
        from dataclasses import replace

        from shared.domain.outputs import ApproveOutputs

        asked = ApproveOutputs(approval="owners", requested_at="2026-01-01T00:00:00+00:00", tag="approval.owners")
        waiting = replace(
            finished(), kind="approve", target="owners", status="waiting", outputs=asked, finished_at=None
        )
        decision = ApproveOutputs(decision="reject", decided_by="ana (object id 42)", comment="too early", via="ui")
        decided = replace(waiting, status="failed", outputs=asked.merged(decision), error="PermanentError: rejected")
        topic = EventGridTopic(key=KEY)
        with HttpsServer(topic.app, trust_test_ca) as server:
            publisher(server).publish(waiting)
            publisher(server).publish(decided)
        types = [e["type"] for e in topic.received]
        assert types == ["modelops.approval.requested", "modelops.action.failed", "modelops.approval.decided"]
        assert topic.received[0]["data"]["outputs"]["tag"] == "approval.owners"
        assert topic.received[2]["data"]["outputs"]["decided_by"] == "ana (object id 42)"
