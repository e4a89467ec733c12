"""Azure state tests: fresh table and queue names in the session's Azurite (tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.adapters.azure_storage import StorageAccount
from shared.bootstrap import Container
from shared.ledger.azure_tables import TableLedger
from shared.settings import Settings
from tests.contract.azurite import Azurite
from tests.contract.eventgrid_topic_server import EventGridTopic
from tests.contract.https import HttpsServer, TestCA
from tests.spine.apptest import CONFIG
from tests.support import write_config

TOPIC_KEY = "outcome-topic-key-5f1e2d3c4b5a"


@pytest.fixture
def account(azurite: Azurite) -> StorageAccount:
    return StorageAccount(connection_string=azurite.connection_string)


@pytest.fixture
def names() -> dict[str, str]:
    """Fresh table/queue names (tables: alphanumeric; queues: lowercase and dashes)."""
    suffix = uuid.uuid4().hex[:10]
    return {"table": f"ledger{suffix}", "queue": f"actions-{suffix}"}


@pytest.fixture
def ledger(account: StorageAccount, names: dict[str, str]) -> Iterator[TableLedger]:
    table = TableLedger(account.table_client(names["table"]))
    yield table
    table.close()


@pytest.fixture
def topic(trust_test_ca: TestCA) -> Iterator[tuple[EventGridTopic, str]]:
    server = EventGridTopic(key=TOPIC_KEY)
    with HttpsServer(server.app, trust_test_ca) as https:
        yield server, f"{https.url}/api/events"


@pytest.fixture
def azure_env(
    tmp_path: Path,
    account: StorageAccount,
    names: dict[str, str],
    topic: tuple[EventGridTopic, str],
    monkeypatch: pytest.MonkeyPatch,
) -> dict[str, str]:
    """App settings as in Azure (Table ledger, queue, outcome topic), also set in the environment."""
    config = write_config(tmp_path / "modelops.yaml", CONFIG % {"tmp": tmp_path} + "worker: {lease_seconds: 5}\n")
    env = {
        "MODELOPS_CONFIG": str(config),
        "MODELOPS_STATE_DIR": str(tmp_path / "state"),
        "MODELOPS_STATE_BACKEND": "azure",
        "AzureWebJobsStorage": str(account.connection_string),
        "MODELOPS_LEDGER_TABLE": names["table"],
        "MODELOPS_ACTIONS_QUEUE": names["queue"],
        "MODELOPS_OUTCOME_TOPIC_ENDPOINT": topic[1],
        "MODELOPS_OUTCOME_TOPIC_KEY": TOPIC_KEY,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def container(azure_env: dict[str, str]) -> Container:
    """What `function_app` builds in a host process with these app settings."""
    return Container(Settings.from_env(azure_env))
