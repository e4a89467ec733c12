"""What changed in an MLflow registry since a point in time, for registries without webhooks.

Registered models come newest-updated first (creating a version updates its model), with their
aliases; versions come per model, created after the given moment. Timestamps are epoch ms.

Unity Catalog's store refuses `order_by` on registered model search, and its searches answer neither
aliases nor tags (mlflow/store/_unity_catalog/registry/rest_store.py `search_registered_models`,
mlflow/utils/_unity_catalog_utils.py `registered_model_search_from_uc_proto`,
`model_version_search_from_uc_proto`). So there each model is read whole (`get_registered_model`,
for its aliases), its versions are listed (a single `name='...'` filter, what UC accepts), the model
counts as updated at its newest version's creation if that is later, and a new version is read
whole for its tags. That is two calls per model and poll, plus one per new version.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from mlflow.entities.model_registry import ModelVersion, RegisteredModel

from shared.adapters.mlflow_copy import client
from shared.adapters.uc_artifacts import is_unity_catalog


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
        self._uc = is_unity_catalog(registry_uri)
        self._listed: dict[str, list[ModelVersion]] = {}  # Unity Catalog: versions seen by models()
        self.requests = 0  # registry calls made (reconcile reports them: a quiet pass costs few)

    def models(self, page_size: int = 100, *, updated_after: int | None = None) -> Iterator[RegisteredModelState]:
        """Registered models, the most recently updated first (any order on Unity Catalog), page by page;
        with ``updated_after`` (epoch ms) only those updated later: listing stops at the first older one,
        so a quiet registry costs one page whatever its size (Unity Catalog cannot order: all of them)."""
        token = None
        order = None if self._uc else ["last_updated_timestamp DESC"]
        while True:
            self.requests += 1
            page = self._client.search_registered_models(max_results=page_size, order_by=order, page_token=token)
            for model in page:
                state = self._uc_state(model.name) if self._uc else _state(model)
                if updated_after is not None and state.last_updated_ms <= updated_after:
                    if self._uc:
                        continue
                    return
                yield state
            token = page.token
            if not token:
                return

    def versions_since(self, model: str, since_ms: int) -> list[NewVersion]:
        """Versions of ``model`` created after ``since_ms``."""
        listed = self._listed.pop(model, None) if self._uc else None
        found = [
            mv
            for mv in (listed if listed is not None else self._versions(model))
            if mv.creation_timestamp and mv.creation_timestamp > since_ms
        ]
        if self._uc:  # UC searches answer no tags: read each new version whole
            self.requests += len(found)
            found = [self._client.get_model_version(model, str(mv.version)) for mv in found]
        return [NewVersion(model, str(mv.version), mv.creation_timestamp, dict(mv.tags), mv.run_id) for mv in found]

    def _uc_state(self, name: str) -> RegisteredModelState:
        versions = self._versions(name)
        self._listed[name] = versions
        self.requests += 1
        state = _state(self._client.get_registered_model(name))
        newest = max((mv.creation_timestamp or 0 for mv in versions), default=0)
        return RegisteredModelState(state.name, max(state.last_updated_ms, newest), state.aliases)

    def _versions(self, model: str) -> list[ModelVersion]:
        found: list[ModelVersion] = []
        token = None
        while True:
            self.requests += 1
            page = self._client.search_model_versions(f"name='{model}'", page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found


def _state(model: RegisteredModel) -> RegisteredModelState:
    aliases = {alias: str(version) for alias, version in (model.aliases or {}).items()}
    return RegisteredModelState(model.name, model.last_updated_timestamp or 0, aliases)
