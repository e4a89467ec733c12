"""How the reactor reaches the storage account behind `AzureWebJobsStorage` (Tables and Queues).

Two forms, the same the Functions host accepts for its own connection:
- a connection string in ``AzureWebJobsStorage`` (Azurite, or account keys);
- identity-based: ``AzureWebJobsStorage__accountName`` (or ``__tableServiceUri`` and
  ``__queueServiceUri``), optionally ``__clientId`` for a user-assigned managed identity, with
  DefaultAzureCredential.
SDK clients are imported lazily: this module is reached from function_app's import path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.adapters.credentials import azure_credential
from shared.errors import ConfigError
from shared.settings import STORAGE as PREFIX
from shared.settings import AzureHttpSettings, StorageSettings


@dataclass(frozen=True)
class StorageAccount:
    connection_string: str | None = None
    table_uri: str | None = None
    queue_uri: str | None = None
    client_id: str | None = None
    http: AzureHttpSettings = field(default_factory=AzureHttpSettings)  # retries and timeouts per request

    @classmethod
    def from_settings(cls, storage: StorageSettings, http: AzureHttpSettings | None = None) -> StorageAccount:
        """The account behind ``AzureWebJobsStorage``: its connection string, else its identity-based settings."""
        http = http or AzureHttpSettings()
        if storage.connection:
            return cls(connection_string=storage.connection, http=http)
        account, suffix = storage.account_name, storage.endpoint_suffix
        table_uri = storage.table_uri or (f"https://{account}.table.{suffix}" if account else None)
        queue_uri = storage.queue_uri or (f"https://{account}.queue.{suffix}" if account else None)
        if not (table_uri and queue_uri):
            raise ConfigError.single(
                "environment",
                PREFIX,
                "MODELOPS_STATE_BACKEND=azure needs a storage account and none is set",
                f"set {PREFIX} to a connection string, or {PREFIX}__accountName for a managed identity "
                f"(or both {PREFIX}__tableServiceUri and {PREFIX}__queueServiceUri)",
            )
        return cls(table_uri=table_uri, queue_uri=queue_uri, client_id=storage.client_id, http=http)

    def credential(self) -> Any:
        return azure_credential(managed_identity_client_id=self.client_id)

    def table_client(self, table: str) -> Any:
        from azure.data.tables import TableClient

        options = self._pipeline_options()
        if self.connection_string:
            return TableClient.from_connection_string(self.connection_string, table_name=table, **options)
        return TableClient(endpoint=str(self.table_uri), table_name=table, credential=self.credential(), **options)

    def queue_client(self, queue: str) -> Any:
        """A QueueClient that writes base64 text, as the Functions queue trigger reads by default."""
        from azure.storage.queue import BinaryBase64DecodePolicy, QueueClient, TextBase64EncodePolicy

        options: dict[str, Any] = {
            "message_encode_policy": TextBase64EncodePolicy(),
            "message_decode_policy": BinaryBase64DecodePolicy(),
            **self._pipeline_options(),
        }
        if self.connection_string:
            return QueueClient.from_connection_string(self.connection_string, queue, **options)
        return QueueClient(str(self.queue_uri), queue, credential=self.credential(), **options)

    def _pipeline_options(self) -> dict[str, Any]:
        """The storage SDKs' own retry policies take ``retry_total``; the transport the timeouts."""
        return {
            "retry_total": self.http.retries,
            "connection_timeout": self.http.connection_timeout_seconds,
            "read_timeout": self.http.read_timeout_seconds,
        }
