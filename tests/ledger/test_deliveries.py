"""Deliveries in the audit trail: every delivery of an event is kept with the sender's own id, when
it came and the answer it got, and events are found by that id (on SQLite and Table Storage)."""

from __future__ import annotations

import dataclasses

from shared.domain.events import ModelEvent
from shared.ledger.base import Ledger
from tests.ledger.support import event, plan, together


def _from(delivery_id: str, version: str = "1") -> ModelEvent:
    return dataclasses.replace(event(version), delivery_id=delivery_id)


class TestDeliveries:
    def test_each_delivery_is_kept_with_its_sender_id_and_answer_and_finds_its_event(self, ledger: Ledger) -> None:
        first = ledger.record_event(_from("d-1"), plan("1"), reason=None, max_attempts=3)
        again = ledger.record_event(_from("d-2"), plan("1"), reason=None, max_attempts=3)
        assert again.duplicate and again.event_id == first.event_id
        shown = ledger.get_event(first.event_id)
        assert shown is not None and shown["deliveries"] == 2
        log = shown["delivery_log"]
        assert [(d["delivery_id"], d["answer"], d["source"]) for d in log] == [
            ("d-1", "accepted", "mlflow"),
            ("d-2", "duplicate", "mlflow"),
        ]
        assert all(d["event_id"] == first.event_id and d["received_at"] for d in log)
        for delivery_id in ("d-1", "d-2"):
            assert [e["id"] for e in ledger.list_events(delivery_id=delivery_id)] == [first.event_id]
        assert ledger.list_events(delivery_id="d-unknown") == []

    def test_an_ignored_event_keeps_its_reason_and_a_sender_redelivering_one_id_finds_one_event(
        self, ledger: Ledger
    ) -> None:
        ignored = ledger.record_event(_from("grid-7"), [], reason="no rule listens", max_attempts=3)
        ledger.record_event(_from("grid-7"), [], reason="no rule listens", max_attempts=3)
        rows = ledger.deliveries(delivery_id="grid-7")
        assert [(d["answer"], d["reason"]) for d in rows] == [("ignored", "no rule listens"), ("duplicate", None)]
        assert [e["id"] for e in ledger.list_events(delivery_id="grid-7")] == [ignored.event_id]
        assert ledger.list_events(delivery_id="grid-7", status="accepted") == []

    def test_one_sender_id_that_made_several_events_finds_each(self, ledger: Ledger) -> None:
        # an Event Grid ModelDeployed naming two models is one event id and two events
        one = ledger.record_event(_from("grid-9", "1"), plan("1"), reason=None, max_attempts=3)
        two = ledger.record_event(_from("grid-9", "2"), plan("2"), reason=None, max_attempts=3)
        assert {e["id"] for e in ledger.list_events(delivery_id="grid-9")} == {one.event_id, two.event_id}

    def test_a_refused_delivery_is_kept_without_an_event_and_changes_nothing_else(self, ledger: Ledger) -> None:
        ledger.record_refusal("mlflow", "d-bad", "data.name is required")
        ledger.record_refusal("mlflow", None, "no id: nothing could find it")
        assert [(d["answer"], d["reason"], d["event_id"]) for d in ledger.deliveries(delivery_id="d-bad")] == [
            ("refused", "data.name is required", None)
        ]
        assert ledger.list_events() == [] and ledger.list_events(delivery_id="d-bad") == []
        assert ledger.list_actions() == []

    def test_concurrent_duplicates_record_every_delivery_once(self, ledger: Ledger) -> None:
        results = together(5, lambda i: ledger.record_event(_from(f"c-{i}"), plan("3"), reason=None, max_attempts=3))
        [event_id] = {r.event_id for r in results}
        log = ledger.deliveries(event_id=event_id)
        assert sorted(d["delivery_id"] for d in log) == [f"c-{i}" for i in range(5)]
        assert sorted(d["answer"] for d in log) == ["accepted"] + ["duplicate"] * 4
        shown = ledger.get_event(event_id)
        assert shown is not None and shown["deliveries"] == 5
