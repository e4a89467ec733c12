"""Queue dispatch on a real Azurite queue: base64 JSON messages, delayed visibility for retries."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

from azure.storage.queue import QueueClient

from shared.adapters.azure_storage import StorageAccount
from shared.ledger.azure_tables import TableLedger
from shared.service.queue_dispatch import QueueDispatcher, redispatch_if_early
from tests.ledger.support import event, plan
from tests.support import wait_for


class TestQueueDispatcher:
    def test_messages_are_base64_json_as_the_queue_trigger_reads_them(
        self, account: StorageAccount, names: dict[str, str]
    ) -> None:
        QueueDispatcher.open(account, names["queue"]).dispatch(["act_1", "act_2"])
        raw = QueueClient.from_connection_string(str(account.connection_string), names["queue"])  # no decoding
        bodies = [json.loads(base64.b64decode(m.content)) for m in raw.peek_messages(max_messages=5)]
        assert bodies == [{"action_id": "act_1"}, {"action_id": "act_2"}]
        assert account.queue_client(f"{names['queue']}-poison").get_queue_properties().name.endswith("-poison")

    def test_a_delayed_dispatch_stays_invisible_until_due(self, account: StorageAccount, names: dict[str, str]) -> None:
        QueueDispatcher.open(account, names["queue"]).dispatch(["act_later"], delay_seconds=2)
        queue = account.queue_client(names["queue"])
        assert queue.receive_message() is None
        message = wait_for(queue.receive_message, timeout=30, interval=0.5, what="the delayed message")
        assert json.loads(message.content) == {"action_id": "act_later"}

    def test_a_message_that_arrives_before_its_retry_is_due_is_sent_again(
        self, account: StorageAccount, names: dict[str, str], ledger: TableLedger
    ) -> None:
        [action_id] = ledger.record_event(event(), plan(), reason=None, max_attempts=3).action_ids
        ledger.claim("w", 60, action_id=action_id)
        ledger.fail(action_id, "w", "503", retry_at=datetime.now(UTC) + timedelta(hours=1))
        dispatcher = QueueDispatcher.open(account, names["queue"])
        action = ledger.get_action(action_id)
        assert action is not None
        delay = redispatch_if_early(action, dispatcher)
        assert delay is not None and 3500 < delay <= 3600
        assert account.queue_client(names["queue"]).peek_messages() == []  # invisible for the hour
        assert ledger.claim("w", 60, action_id=action_id) is None  # not due: refused
        action = ledger.get_action(action_id)
        assert action is not None
        assert redispatch_if_early(action, dispatcher, datetime.now(UTC) + timedelta(hours=2)) is None
