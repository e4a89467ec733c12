"""The copy's places in the target: the experiment its run goes in and the registered model its version
joins, each created if missing (a concurrent copy creating it first is no error), and the version an earlier
attempt registered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.adapters.mlflow_http import classify
from shared.lineage import KEY_TAG


def experiment(dst: MlflowClient, name: str, artifact_location: str | None) -> str:
    """The id of the experiment the copies' runs go in, created (or restored) if need be."""
    found = dst.get_experiment_by_name(name)
    if found is not None:
        if found.lifecycle_stage == "deleted":
            dst.restore_experiment(found.experiment_id)
        return str(found.experiment_id)
    location = artifact_location
    if location and "://" not in location:
        location = Path(location).resolve().as_uri()
    try:
        return str(dst.create_experiment(name, artifact_location=location))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_ALREADY_EXISTS":
            again = dst.get_experiment_by_name(name)
            if again is not None:
                return str(again.experiment_id)
        raise classify(exc, f"cannot create experiment {name}") from exc


def ensure_registered_model(dst: MlflowClient, src: MlflowClient, dst_name: str, src_name: str | None) -> None:
    """The target model exists, made with the source model's description and tags if it did not."""
    try:
        dst.get_registered_model(dst_name)
        return
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise classify(exc, f"cannot read target model {dst_name}") from exc
    description, tags = None, {}
    if src_name:
        try:
            source_model = src.get_registered_model(src_name)
            description, tags = source_model.description, dict(source_model.tags)
        except MlflowException:
            pass  # description and tags are a courtesy; the copy does not depend on them
    try:
        dst.create_registered_model(dst_name, tags=tags, description=description)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":  # a concurrent copy created it first
            raise classify(exc, f"cannot create target model {dst_name}") from exc


def find_copy(dst: MlflowClient, model_name: str, action_key: str) -> ModelVersion | None:
    """The version an earlier attempt registered for this action, if any."""
    for mv in _versions(dst, model_name):
        if mv.tags.get(KEY_TAG) == action_key:
            return mv
    return None


def _versions(dst: MlflowClient, model_name: str) -> Iterator[ModelVersion]:
    quote = '"' if "'" in model_name else "'"
    token = None
    while True:
        try:
            page = dst.search_model_versions(f"name={quote}{model_name}{quote}", max_results=200, page_token=token)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return
            raise classify(exc, f"cannot list versions of {model_name}") from exc
        yield from page
        token = page.token
        if not token:
            return
