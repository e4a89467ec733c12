"""Wiring of the Azure state backend (Table ledger, queue dispatch) and the outcome topic.

The extra app settings are read here, once per reactor: MODELOPS_LEDGER_TABLE,
MODELOPS_ACTIONS_QUEUE, the identity-based AzureWebJobsStorage__* settings and the
MODELOPS_OUTCOME_TOPIC_* settings.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

from shared.adapters.azure_storage import StorageAccount
from shared.domain.actions import Action
from shared.ledger.azure_tables import TableLedger
from shared.service.queue_dispatch import QueueDispatcher
from shared.settings import Settings

DEFAULT_TABLE = "modelopsledger"
DEFAULT_QUEUE = "modelops-actions"


def _account(settings: Settings, env: Mapping[str, str]) -> StorageAccount:
    return StorageAccount.from_env(env, connection=settings.storage_connection)


def table_ledger(settings: Settings, env: Mapping[str, str] | None = None) -> TableLedger:
    env = os.environ if env is None else env
    table = env.get("MODELOPS_LEDGER_TABLE") or DEFAULT_TABLE
    return TableLedger(_account(settings, env).table_client(table))


def queue_dispatcher(settings: Settings, env: Mapping[str, str] | None = None) -> QueueDispatcher:
    env = os.environ if env is None else env
    return QueueDispatcher.open(_account(settings, env), env.get("MODELOPS_ACTIONS_QUEUE") or DEFAULT_QUEUE)


def outcome_sink(env: Mapping[str, str] | None = None) -> Callable[[Action], None] | None:
    """The Event Grid publisher when MODELOPS_OUTCOME_TOPIC_ENDPOINT is set, else None."""
    from shared.adapters.outcome_events import OutcomePublisher, OutcomeTopic

    topic = OutcomeTopic.from_env(os.environ if env is None else env)
    return OutcomePublisher(topic) if topic else None
