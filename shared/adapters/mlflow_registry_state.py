"""What a source registry declares now, read-only: the holder of an alias or a stage, and the heads
(alias holders, and the newest version in each stage) of the models some globs match (for the
desired state and reconcile, shared/service/desired.py).

Setting an alias changes no timestamp a registry can be searched by (MLflow's SQL store
`set_registered_model_alias` only merges the alias row), so aliases are read from the models the
rules can match: one `get_registered_model` per literal name, or one search per glob prefix
(`name LIKE 'prefix%'`), paged by the server's maximum of 1,000 models
(mlflow.store.model_registry.SEARCH_REGISTERED_MODEL_MAX_RESULTS_THRESHOLD). The same answers
carry each model's `latest_versions`, the newest version per stage (MLflow's SQL store,
`SqlRegisteredModel.to_mlflow_entity`): stage holders cost no request more.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase

from mlflow.exceptions import MlflowException

from shared.adapters.mlflow_copy import client
from shared.adapters.mlflow_http import classify
from shared.adapters.uc_artifacts import is_unity_catalog
from shared.domain.desired import Heads

PAGE = 1000


class RegistryState:
    def __init__(self, tracking_uri: str, registry_uri: str | None) -> None:
        self._client = client(tracking_uri, registry_uri)
        self._uc = is_unity_catalog(registry_uri)
        self.requests = 0  # registry calls made (reconcile reports them)

    def alias_holder(self, model: str, alias: str) -> str | None:
        """The version ``alias`` names now, or None when it names none (or the model is gone)."""
        self.requests += 1
        try:
            return str(self._client.get_model_version_by_alias(model, alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
                return None
            raise classify(exc, f"reading alias {alias!r} of {model}") from exc

    def has_version(self, model: str, version: str) -> bool:
        self.requests += 1
        try:
            self._client.get_model_version(model, version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return False
            raise classify(exc, f"reading {model} v{version}") from exc
        return True

    def version_tags(self, model: str, version: str) -> dict[str, str]:
        """A version's tags ({} when the version is gone)."""
        self.requests += 1
        try:
            return dict(self._client.get_model_version(model, version).tags or {})
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"):
                return {}
            raise classify(exc, f"reading the tags of {model} v{version}") from exc

    def stage_holder(self, model: str, stage: str) -> str | None:
        """The newest version in ``stage`` (workspace registries with stages), or None."""
        self.requests += 1
        try:
            found = self._client.search_model_versions(f"name='{_quoted(model)}'")
        except MlflowException as exc:
            raise classify(exc, f"reading the versions of {model}") from exc
        versions = [int(mv.version) for mv in found if (mv.current_stage or "").lower() == stage.lower()]
        return str(max(versions)) if versions else None

    def heads(self, globs: Iterable[str]) -> Iterator[tuple[str, Heads]]:
        """(model, its heads) for every model one of ``globs`` matches, each model once."""
        seen: set[str] = set()
        for glob in dict.fromkeys(globs):
            for name, heads in self._matching(glob):
                if name not in seen and fnmatchcase(name, glob):
                    seen.add(name)
                    yield name, heads

    def _matching(self, glob: str) -> Iterator[tuple[str, Heads]]:
        if not any(c in glob for c in "*?[") and not self._uc:
            self.requests += 1
            try:
                model = self._client.get_registered_model(glob)
            except MlflowException as exc:
                if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                    return
                raise classify(exc, f"reading registered model {glob}") from exc
            yield model.name, _heads(model)
            return
        prefix = glob.split("*", 1)[0].split("?", 1)[0].split("[", 1)[0]
        where = f"name LIKE '{_quoted(prefix)}%'" if prefix and not self._uc else None
        token = None
        while True:
            self.requests += 1
            page = self._client.search_registered_models(filter_string=where, max_results=PAGE, page_token=token)
            for model in page:
                if self._uc:  # UC searches answer no aliases: read the model whole
                    self.requests += 1
                    model = self._client.get_registered_model(model.name)
                yield model.name, _heads(model)
            token = page.token
            if not token:
                return


def _heads(model: object) -> Heads:
    aliases = {alias: str(version) for alias, version in (getattr(model, "aliases", None) or {}).items()}
    latest = sorted(getattr(model, "latest_versions", None) or [], key=lambda mv: int(mv.version))
    stages = {mv.current_stage: str(mv.version) for mv in latest if (mv.current_stage or "none").lower() != "none"}
    return Heads(aliases, stages)  # the newest version per stage: sorted, so the newest is written last


def _quoted(text: str) -> str:
    """A name inside a filter's single quotes (LIKE's `_` and `%` may match more: callers filter again)."""
    return text.replace("'", "''")
