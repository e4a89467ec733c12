"""A run-less source version (an MLflow 3 logged model, source ``models:/m-...``) copied as a logged model of the
target's own, where the target has them: its files, params and metrics are the source model's, the version is
registered from it, and the copy's run is its source run (the action key and lineage stay findable there).

Targets without MLflow 3 logged models get them on the copy's run instead: an Azure ML workspace (its registered
models come from runs' artifacts, `azureml://experiments/.../runs/.../artifacts`), a Databricks workspace or Unity
Catalog (not reached this way yet), and an MLflow 2 tracking server (it answers 404 to the logged-model API).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from shared.adapters import artifact_transfer
from shared.adapters.mlflow_http import classify
from shared.errors import RetryableError

log = logging.getLogger("modelops.register")

NOT_THERE = ("ENDPOINT_NOT_FOUND", "NOT_IMPLEMENTED")  # a server without the logged-model API


def supported(tracking_uri: str) -> bool:
    """Whether the copy of a run-less version goes into a logged model of the target's own."""
    return not tracking_uri.startswith(("azureml:", "databricks"))


def ensure(dst: MlflowClient, experiment_id: str, run_id: str, *, name: str, tags: dict[str, str]) -> str | None:
    """The id of the copy's logged model (found by its source run, the copy's; else created), or None when the
    target has no logged models."""
    try:
        found = dst.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'", max_results=1)
        if found:
            return str(found[0].model_id)
        return str(dst.create_logged_model(experiment_id, name=name, source_run_id=run_id, tags=tags).model_id)
    except MlflowException as exc:
        if exc.error_code in NOT_THERE:
            log.info("the target has no MLflow 3 logged models (%s); the copy's run holds the model", exc.error_code)
            return None
        raise classify(exc, "cannot create the copy's logged model in the target") from exc


def find(dst: MlflowClient, experiment_id: str, run_id: str) -> str | None:
    """The copy's logged model made for this run by an earlier attempt, if any."""
    try:
        found = dst.search_logged_models([experiment_id], filter_string=f"source_run_id = '{run_id}'", max_results=1)
    except MlflowException as exc:
        if exc.error_code in NOT_THERE:
            return None
        raise classify(exc, "cannot search the target's logged models") from exc
    return str(found[0].model_id) if found else None


def fill(dst: MlflowClient, model_id: str, local: Path) -> None:
    """The model's files into the copy's logged model, which is then READY (a retry writes them again)."""
    try:
        artifact_transfer.upload_to_model(dst, model_id, local)
        if dst.get_logged_model(model_id).status != LoggedModelStatus.READY:
            dst.finalize_logged_model(model_id, LoggedModelStatus.READY)
    except MlflowException as exc:
        raise classify(exc, f"cannot upload the model's files to the copy's logged model {model_id}") from exc
    except OSError as exc:
        raise RetryableError(f"uploading artifacts failed: {exc}") from exc
