"""What changed in an MLflow registry since a point in time, for registries without webhooks.

Registered models come newest-updated first (creating a version updates its model), with their
aliases; versions come per model, created after the given moment. Timestamps are epoch ms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from shared.adapters.mlflow_copy import client


@dataclass(frozen=True)
class RegisteredModelState:
    name: str
    last_updated_ms: int  # 0 when the registry does not say
    aliases: dict[str, str]  # alias -> version


@dataclass(frozen=True)
class NewVersion:
    model: str
    version: str
    created_ms: int
    tags: dict[str, str]
    run_id: str | None


class RegistryChanges:
    def __init__(self, tracking_uri: str, registry_uri: str | None) -> None:
        self._client = client(tracking_uri, registry_uri)

    def models(self, page_size: int = 200) -> Iterator[RegisteredModelState]:
        """Every registered model, the most recently updated first, page by page."""
        token = None
        while True:
            page = self._client.search_registered_models(
                max_results=page_size, order_by=["last_updated_timestamp DESC"], page_token=token
            )
            for model in page:
                aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
                yield RegisteredModelState(model.name, model.last_updated_timestamp or 0, aliases)
            token = page.token
            if not token:
                return

    def versions_since(self, model: str, since_ms: int) -> list[NewVersion]:
        """Versions of ``model`` created after ``since_ms``."""
        return [
            NewVersion(model, str(mv.version), mv.creation_timestamp, dict(mv.tags), mv.run_id)
            for mv in self._client.search_model_versions(f"name='{model}'")
            if mv.creation_timestamp and mv.creation_timestamp > since_ms
        ]
