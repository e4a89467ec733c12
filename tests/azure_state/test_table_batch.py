"""The entity-group transaction written by shared/adapters/table_batch.py, against Azurite: all or
nothing, the refused operation named, ETags honoured, typed properties read back as the SDK wrote them."""

from __future__ import annotations

from azure.data.tables import EdmType, EntityProperty, UpdateMode

from shared.adapters import table_batch
from shared.adapters.azure_storage import StorageAccount


def test_a_batch_creates_all_or_nothing_and_names_the_operation_refused(
    account: StorageAccount, names: dict[str, str]
) -> None:
    client = account.table_client(names["table"])
    client.create_table()
    typed = {"PartitionKey": "p", "RowKey": "a", "n": EntityProperty(2**40, EdmType.INT64), "ok": True, "t": "é\n"}
    assert table_batch.submit(client, [typed, {"PartitionKey": "p", "RowKey": "b", "x": 1}]) is None
    back = client.get_entity("p", "a")
    assert back["n"].value == 2**40 and back["ok"] is True and back["t"] == "é\n"  # as the SDK reads its own
    refused = table_batch.submit(client, [{"PartitionKey": "p", "RowKey": "c"}, {"PartitionKey": "p", "RowKey": "b"}])
    assert refused is not None and refused.status == 409 and refused.code == "EntityAlreadyExists"
    assert refused.index == 1
    assert [e["RowKey"] for e in client.list_entities()] == ["a", "b"]  # "c" rolled back with the batch


def test_an_update_in_the_batch_is_refused_when_the_entity_changed_since_it_was_read(
    account: StorageAccount, names: dict[str, str]
) -> None:
    client = account.table_client(names["table"])
    client.create_table()
    client.create_entity({"PartitionKey": "p", "RowKey": "e", "count": 1})
    read = client.get_entity("p", "e")
    client.update_entity({"PartitionKey": "p", "RowKey": "e", "count": 5}, mode=UpdateMode.REPLACE)
    stale = ({"PartitionKey": "p", "RowKey": "e", "count": 2}, read.metadata["etag"])
    refused = table_batch.submit(client, [{"PartitionKey": "p", "RowKey": "d"}], stale)
    assert refused is not None and refused.status == 412
    fresh = client.get_entity("p", "e")
    assert (
        table_batch.submit(
            client, [{"PartitionKey": "p", "RowKey": "d"}], ({**fresh, "count": 6}, fresh.metadata["etag"])
        )
        is None
    )
    assert client.get_entity("p", "e")["count"] == 6 and client.get_entity("p", "d") is not None
