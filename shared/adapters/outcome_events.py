"""Publish every finished action as a CloudEvent to an Event Grid custom topic.

Event type ``modelops.action.succeeded`` / ``modelops.action.failed`` /
``modelops.action.superseded`` (a deploy no longer desired when it ran: terminal, not a failure,
so an alert on failures does not fire for it; skipped actions are never run, so never published).
An approval also publishes ``modelops.approval.requested`` when it starts waiting and
``modelops.approval.decided`` beside its outcome once someone decided, so that a team can route
both to chat. Source ``/modelops-reactor``, subject ``models/<name>/versions/<version>``; data is
the action's summary: no params (they hold connection details) and outputs with secret-looking
values removed.
Auth: the topic access key (``aeg-sas-key``) from MODELOPS_OUTCOME_TOPIC_KEY, else Entra ID
with DefaultAzureCredential (the identity needs "EventGrid Data Sender" on the topic).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from shared import telemetry
from shared.adapters.credentials import azure_credential
from shared.domain.actions import APPROVE, SUCCEEDED, SUPERSEDED, WAITING, Action
from shared.settings import OutcomeTopicSettings

log = logging.getLogger("modelops.outcomes")
SOURCE = "/modelops-reactor"
_SECRET_KEY = re.compile(r"(secret|password|token|key|sas|signature|credential)", re.IGNORECASE)


@dataclass(frozen=True)
class OutcomeTopic:
    endpoint: str
    key: str | None = None
    retries: int = 3
    backoff_seconds: float = 0.8

    @classmethod
    def from_settings(cls, settings: OutcomeTopicSettings | None) -> OutcomeTopic | None:
        if settings is None:
            return None
        return cls(endpoint=settings.endpoint, key=settings.key, retries=settings.retries)


def action_summary(action: Action) -> dict[str, Any]:
    return {
        "action_id": action.id,
        "key": action.key,
        "kind": action.kind,
        "target": action.target,
        "model_name": action.model_name,
        "model_version": action.model_version,
        "event_id": action.event_id,
        "rule": action.rule,
        "status": action.status,
        "attempts": action.attempts,
        "error": telemetry.redact(action.error) if action.error else None,
        "outputs": _clean(action.outputs.to_dict()),
        "started_at": action.started_at.isoformat() if action.started_at else None,
        "finished_at": action.finished_at.isoformat() if action.finished_at else None,
        "duration_ms": action.duration_ms,
    }


def event_types(action: Action) -> list[str]:
    """The CloudEvent types an action's state is published as."""
    if action.kind == APPROVE and action.status == WAITING:
        return ["modelops.approval.requested"]
    ended = action.status if action.status in (SUCCEEDED, SUPERSEDED) else "failed"
    types = [f"modelops.action.{ended}"]
    if action.kind == APPROVE and getattr(action.outputs, "decision", None):
        types.append("modelops.approval.decided")
    return types


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if not _SECRET_KEY.search(str(k))}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return telemetry.redact(value) if isinstance(value, str) else value


class OutcomePublisher:
    """The ``Reactor.on_finished`` sink. Raises after the bounded retries; the worker logs it and
    the action's own outcome stands."""

    def __init__(self, topic: OutcomeTopic, *, credential: Any = None) -> None:
        from azure.core.credentials import AzureKeyCredential
        from azure.eventgrid import EventGridPublisherClient

        telemetry.register_secret(topic.key)
        if credential is None:
            credential = AzureKeyCredential(topic.key) if topic.key else azure_credential()
        self._client = EventGridPublisherClient(topic.endpoint, credential)
        # per request: for basic topics the client drops constructor options. azure-core's
        # RetryPolicy retries 408/429/5xx and connection errors with exponential backoff;
        # 401/403 are not retried (a wrong key stays wrong)
        self._options: dict[str, Any] = {
            "retry_total": topic.retries,
            "retry_backoff_factor": topic.backoff_seconds,
            "retry_backoff_max": 30,
            "connection_timeout": 10,
            "read_timeout": 30,
        }
        self.topic = topic

    def __call__(self, action: Action) -> None:
        self.publish(action)

    def publish(self, action: Action) -> None:
        from azure.core.messaging import CloudEvent

        subject = f"models/{action.model_name}/versions/{action.model_version}"
        data = action_summary(action)
        events = [CloudEvent(source=SOURCE, type=kind, subject=subject, data=data) for kind in event_types(action)]
        self._client.send(events, **self._options)
        for event in events:
            log.info(
                "published %s for %s",
                event.type,
                action.id,
                extra={"action_id": action.id, "event_id": action.event_id},
            )

    def close(self) -> None:
        self._client.close()
