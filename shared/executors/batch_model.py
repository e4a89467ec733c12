"""Load a registered model as pyfunc from an explicit registry, never MLflow's global URIs."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow.artifacts
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel

from shared.errors import PermanentError, RetryableError
from shared.executors.base import ModelRef

_MISSING = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


@contextmanager
def loaded_pyfunc(model: ModelRef) -> Iterator[PyFuncModel]:
    """Download the version's artifacts to a temp dir (removed afterwards) and load them."""
    with tempfile.TemporaryDirectory(prefix="modelops-batch-model-") as tmp:
        try:
            path = _download(model, tmp)
            loaded = mlflow.pyfunc.load_model(path)
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                raise PermanentError(
                    f"cannot load {model.uri} from {model.tracking_uri}: {exc.message}; "
                    "check the model name and version exist in that registry"
                ) from exc
            raise RetryableError(f"cannot load {model.uri} from {model.tracking_uri}: {exc}") from exc
        except (ConnectionError, TimeoutError, OSError) as exc:
            raise RetryableError(f"cannot download {model.uri}: {exc}") from exc
        yield loaded


def _download(model: ModelRef, dst: str) -> str:
    """Resolve models:/name/version through an explicit client: mlflow.artifacts resolves a
    models:/ URI with the *global* registry URI, which would race between concurrent actions."""
    registry_uri = model.registry_uri or model.tracking_uri
    if registry_uri.startswith("databricks"):
        # the Databricks / Unity Catalog repositories take the registry URI explicitly
        return mlflow.artifacts.download_artifacts(
            artifact_uri=model.uri,
            dst_path=dst,
            tracking_uri=model.tracking_uri,
            registry_uri=registry_uri,
        )
    client = MlflowClient(tracking_uri=model.tracking_uri, registry_uri=registry_uri)
    location = client.get_model_version_download_uri(model.name, model.version)
    if location.startswith("models:/"):
        # a logged-model URI (MLflow 3); its artifacts live at the logged model's location
        location = client.get_logged_model(location.removeprefix("models:/")).artifact_location
    return mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=dst, tracking_uri=model.tracking_uri)


def signature_inputs(model: PyFuncModel) -> list[str] | None:
    """Named input columns of the model's signature; None when it has none (all columns go in)."""
    schema = model.metadata.get_input_schema()
    if schema is None or not schema.has_input_names():
        return None
    return list(schema.input_names())
