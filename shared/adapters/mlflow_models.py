"""Reads of a registered model version's files: its serving example, its pip requirements, and the
model itself as pyfunc. Explicit clients and URIs, never MLflow's global tracking or registry URI."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from shared.adapters.mlflow_http import bound_retry_after
from shared.errors import PermanentError, RetryableError

if TYPE_CHECKING:
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import PyFuncModel

log = logging.getLogger("modelops.mlflow")
_MISSING = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


class ModelVersionAt(Protocol):
    """A model version and the registry it is in (shared.executors.base.ModelRef is one)."""

    @property
    def tracking_uri(self) -> str: ...
    @property
    def registry_uri(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def uri(self) -> str: ...


def serving_example(model: ModelVersionAt) -> dict[str, Any] | None:
    """The model's saved serving input (MLflow scoring-server JSON), or None if it has none."""
    from mlflow.artifacts import download_artifacts
    from mlflow.models import Model

    bound_retry_after()

    root = _version_root(model)
    with tempfile.TemporaryDirectory(prefix="modelops-smoke-") as tmp:
        # only the metadata and the example files: the model's weights may be gigabytes
        fetch = {"tracking_uri": model.tracking_uri, "registry_uri": model.registry_uri, "dst_path": tmp}
        mlmodel = Model.load(download_artifacts(artifact_uri=f"{root}/MLmodel", **fetch))
        info = mlmodel.saved_input_example_info or {}
        serving_path = info.get("serving_input_path")
        if not serving_path:
            return None
        local = download_artifacts(artifact_uri=f"{root}/{serving_path}", **fetch)
        with open(local, encoding="utf-8") as handle:
            return json.load(handle)  # type: ignore[no-any-return]


def pip_requirements(model: ModelVersionAt) -> list[str]:
    """The model's own requirements.txt without MLflow itself; [] for models that have none."""
    from mlflow.artifacts import download_artifacts

    bound_retry_after()

    root = _version_root(model)
    with tempfile.TemporaryDirectory(prefix="modelops-req-") as tmp:
        try:
            path = download_artifacts(
                artifact_uri=f"{root}/requirements.txt",
                dst_path=tmp,
                tracking_uri=model.tracking_uri,
                registry_uri=model.registry_uri,
            )
        except Exception as exc:  # noqa: BLE001 - old models have only conda.yaml
            log.info("%s has no requirements.txt (%s); using mlflow's defaults", model.uri, exc)
            return []
        lines = Path(path).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith(("#", "mlflow=="))]


def python_version(model: ModelVersionAt) -> str | None:
    """The Python the model was logged with (python_env.yaml `python: 3.11.7`), None when not recorded."""
    from mlflow.artifacts import download_artifacts

    with tempfile.TemporaryDirectory(prefix="modelops-pyenv-") as tmp:
        try:
            path = download_artifacts(
                artifact_uri=f"{_version_root(model)}/python_env.yaml",
                dst_path=tmp,
                tracking_uri=model.tracking_uri,
                registry_uri=model.registry_uri,
            )
        except Exception:  # noqa: BLE001 - older models record only conda.yaml
            return None
        for line in Path(path).read_text().splitlines():
            if line.startswith("python:"):
                return line.split(":", 1)[1].strip().strip("'\"") or None
    return None


@contextmanager
def downloaded_model(model: ModelVersionAt, *, workdir: Path | None = None) -> Iterator[Path]:
    """The version's files, downloaded to a temp dir in ``workdir`` (removed afterwards); nothing of
    the model runs here (the local batch engine loads it in a process of its own)."""
    from mlflow.exceptions import MlflowException

    bound_retry_after()

    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="modelops-batch-model-", dir=workdir) as tmp:
        try:
            path = _download(model, tmp)
        except MlflowException as exc:
            raise _load_error(model, exc) from exc
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise RetryableError(f"cannot download {model.uri}: {exc}") from exc
        yield Path(path)


@contextmanager
def loaded_pyfunc(model: ModelVersionAt, *, workdir: Path | None = None) -> Iterator[PyFuncModel]:
    """Download the version's artifacts to a temp dir in ``workdir`` (removed afterwards) and load them."""
    import mlflow.pyfunc
    from mlflow.exceptions import MlflowException

    with downloaded_model(model, workdir=workdir) as path:
        try:
            loaded = mlflow.pyfunc.load_model(str(path))
        except MlflowException as exc:
            raise _load_error(model, exc) from exc
        yield loaded


def _load_error(model: ModelVersionAt, exc: MlflowException) -> PermanentError | RetryableError:
    if exc.error_code in _MISSING:
        return PermanentError(
            f"cannot load {model.uri} from {model.tracking_uri}: {exc.message}; "
            "check the model name and version exist in that registry"
        )
    return RetryableError(f"cannot load {model.uri} from {model.tracking_uri}: {exc}")


def load_local_pyfunc(path: str | Path) -> PyFuncModel:
    """A model from files already on disk; its code runs in this process (the scoring process only)."""
    import mlflow.pyfunc

    return mlflow.pyfunc.load_model(str(path))


def signature_inputs(model: PyFuncModel) -> list[str] | None:
    """Named input columns of the model's signature; None when it has none (all columns go in)."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        return None
    return list(schema.input_names())


def require_version(model: ModelVersionAt) -> None:
    """Refuse at once, naming it, a model version its registry does not hold (before anything starts)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    bound_retry_after()

    client = MlflowClient(tracking_uri=model.tracking_uri, registry_uri=model.registry_uri)
    try:
        client.get_model_version(model.name, model.version)
    except MlflowException as exc:
        if exc.error_code in _MISSING:
            raise PermanentError(
                f"model {model.name}/{model.version} not found in {model.registry_uri or model.tracking_uri}"
                " (register it first, or check the name and version)"
            ) from None
        raise RetryableError(f"cannot read model {model.name}/{model.version}: {exc.message}") from exc


def _version_root(model: ModelVersionAt) -> str:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=model.tracking_uri, registry_uri=model.registry_uri)
    return str(client.get_model_version_download_uri(model.name, model.version)).rstrip("/")


def _download(model: ModelVersionAt, dst: str) -> str:
    """Resolve models:/name/version through an explicit client: mlflow.artifacts resolves a
    models:/ URI with the *global* registry URI, which would race between concurrent actions."""
    import mlflow.artifacts
    from mlflow import MlflowClient

    registry_uri = model.registry_uri or model.tracking_uri
    if registry_uri.startswith("databricks"):
        # the Databricks / Unity Catalog repositories take the registry URI explicitly
        return str(
            mlflow.artifacts.download_artifacts(
                artifact_uri=model.uri, dst_path=dst, tracking_uri=model.tracking_uri, registry_uri=registry_uri
            )
        )
    client = MlflowClient(tracking_uri=model.tracking_uri, registry_uri=registry_uri)
    location = client.get_model_version_download_uri(model.name, model.version)
    if location.startswith("models:/"):
        # a logged-model URI (MLflow 3); its artifacts live at the logged model's location
        location = client.get_logged_model(location.removeprefix("models:/")).artifact_location
    return str(
        mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=dst, tracking_uri=model.tracking_uri)
    )
