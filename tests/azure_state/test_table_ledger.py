"""What only the Table ledger has to handle: no cross-partition transaction (a recording cut short
is finished by the redelivery) and the entity size limits. The ledger port's own guarantees run on
both backends in tests/ledger."""

from __future__ import annotations

from typing import Any

import pytest

from shared.adapters.azure_storage import StorageAccount
from shared.domain.events import ModelEvent
from shared.domain.outputs import RegisterOutputs
from shared.ledger.azure_tables import TableLedger
from tests.ledger.support import event, must, plan


class CrashBeforeLinking:
    """The real Azurite client; the first event update dies like a killed host."""

    def __init__(self, client: Any) -> None:
        self.client, self.crashed = client, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def update_entity(self, entity: Any, **kwargs: Any) -> Any:
        if not self.crashed and entity["PartitionKey"] == "event":
            self.crashed = True
            raise ConnectionError("host killed")
        return self.client.update_entity(entity, **kwargs)


class TestTableLedger:
    def test_a_recording_interrupted_after_the_dedupe_claim_is_finished_by_the_redelivery(
        self, account: StorageAccount, names: dict[str, str]
    ) -> None:
        crashing = TableLedger(CrashBeforeLinking(account.table_client(names["table"])))
        with pytest.raises(ConnectionError):
            crashing.record_event(event("3"), plan("3"), reason=None, max_attempts=3)
        ledger = TableLedger(account.table_client(names["table"]))
        redelivered = ledger.record_event(event("3"), plan("3"), reason=None, max_attempts=3)
        assert redelivered.duplicate and len(redelivered.action_ids) == 1
        assert redelivered.dispatch == redelivered.action_ids  # the crashed writer never dispatched it
        stored = ledger.get_event(redelivered.event_id)
        assert stored is not None and stored["actions"][0]["id"] == redelivered.action_ids[0]
        assert len(ledger.list_actions()) == 1

    def test_large_values_are_split_and_oversized_ones_truncated_with_a_note(self, ledger: TableLedger) -> None:
        big_event = ModelEvent(
            source="mlflow",
            kind="model_version.created",
            source_type="x",
            model_name="m",
            model_version="8",
            raw={"blob": "x" * 300_000},
        )
        result = ledger.record_event(big_event, plan("8"), reason=None, max_attempts=3)
        payload = ledger.event_payload(result.event_id)
        assert payload is not None and "_truncated" in payload["raw"]  # the event itself is kept
        [action_id] = result.action_ids
        ledger.claim("w", 60, action_id=action_id)
        big = RegisterOutputs(model_uri="models:/" + "é" * 40_000)  # > 64 KiB in UTF-16: split over properties
        ledger.complete(action_id, "w", big)
        assert must(ledger.get_action(action_id)).outputs == big
        report_id = ledger.record_report("cleanup", {"groups": ["g" * 100] * 2000})
        assert ledger.list_reports("cleanup")[0]["id"] == report_id
        assert len(ledger.list_reports("cleanup")[0]["groups"]) == 2000
