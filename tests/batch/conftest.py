"""A real MLflow registry (SQLite + file artifacts) holding a small sklearn model, and inputs."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from shared.config.loader import load_config
from shared.domain.actions import BATCH_SCORE, Action, action_key
from shared.domain.outputs import outputs_from_dict
from shared.domain.params import ActionParams
from shared.executors.base import ActionContext, ModelRef
from shared.settings import Settings
from tests.contract.databricks_jobs_server import DatabricksJobsContract
from tests.contract.https import HttpsServer, TestCA

FEATURES = ["f0", "f1", "f2", "f3"]
JOB_ID = 101
BUNDLE_JOB = Path(__file__).parents[2] / "databricks" / "resources" / "batch_score_job.yml"
# the scoring processes keep their bytecode, as an installed app's do (this machine's venv has none,
# and PYTHONDONTWRITEBYTECODE would have each process compile mlflow, pandas and sklearn again)
BYTECODE = Path(tempfile.gettempdir()) / f"modelops-tests-pycache-{os.getuid()}"


def child_settings(**extra: str) -> Settings:
    """This process's settings, with the scoring processes' bytecode kept, and ``extra``."""
    environ = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return Settings.from_env({**environ, "PYTHONPYCACHEPREFIX": str(BYTECODE), **extra})


@dataclass(frozen=True)
class Registered:
    tracking_uri: str
    name: str
    version: str

    @property
    def ref(self) -> ModelRef:
        return ModelRef(self.tracking_uri, None, self.name, self.version)


def make_frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)
    frame.insert(0, "row_id", np.arange(rows, dtype=np.int64))
    return frame


@pytest.fixture(scope="session")
def registered_model(tmp_path_factory: pytest.TempPathFactory) -> Registered:
    """Log and register a classifier in a throwaway store; global MLflow state is restored after."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    from mlflow.models import infer_signature
    from sklearn.linear_model import LogisticRegression

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("batch-tests", artifact_location=(root / "artifacts").as_uri())
    train = make_frame(500, seed=1)
    target = (train["f0"] + 0.5 * train["f1"] > 0).astype(int)
    model = LogisticRegression().fit(train[FEATURES], target)
    # log_model only writes to the "current" store; point it there through the environment
    # for this block only, so no test inherits a global tracking URI.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_EXPERIMENT_ID", experiment)
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            signature=infer_signature(train[FEATURES], model.predict(train[FEATURES])),
            registered_model_name="churn-batch",
        )
    version = client.get_model_version("churn-batch", str(info.registered_model_version))
    return Registered(uri, "churn-batch", str(version.version))


@pytest.fixture(scope="session")
def reference_predict(registered_model: Registered) -> Callable[[pd.DataFrame], np.ndarray]:
    """`pyfunc.load_model(uri).predict`, the ground truth every engine is compared with."""
    import mlflow.artifacts
    import mlflow.pyfunc
    from mlflow import MlflowClient

    # resolve through an explicit client: a models:/ URI would use the global registry URI
    client = MlflowClient(tracking_uri=registered_model.tracking_uri)
    location = client.get_model_version_download_uri(registered_model.name, registered_model.version)
    path = mlflow.artifacts.download_artifacts(artifact_uri=location)
    model = mlflow.pyfunc.load_model(path)
    return lambda frame: np.asarray(model.predict(frame[FEATURES]))


def batch_context(
    tmp_path: Path,
    target_yaml: str,
    model: Registered,
    *,
    outputs: dict[str, Any] | None = None,
    progress: Callable[[str], None] | None = None,
    settings: Settings | None = None,
    kind: str = BATCH_SCORE,
    section: str = "batch",
    target: str = "nightly",
) -> ActionContext:
    """An ActionContext exactly as the worker builds one, for `batch: {nightly: <target_yaml>}` (or
    the ``kind`` of step on ``section: {target: ...}``)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    config_file = tmp_path / "modelops.yaml"
    config_file.write_text(f"{section}:\n  {target}:\n" + "".join(f"    {line}\n" for line in target_yaml.splitlines()))
    config = load_config(config_file, env={})
    key = action_key(kind, target, model.name, model.version)
    action = Action(
        id="act-1",
        key=key,
        kind=kind,
        target=target,
        model_name=model.name,
        model_version=model.version,
        event_id="evt-1",
        status="running",
        params=ActionParams(source="mlflow", source_tracking_uri=model.tracking_uri),
        outputs=outputs_from_dict(kind, outputs or {}),
    )
    return ActionContext(
        action=action,
        config=config,
        state_dir=tmp_path / "state",
        upstream=(),
        log=logging.getLogger("tests.batch"),
        progress=progress or (lambda message: None),
        settings=settings or child_settings(),
    )


@pytest.fixture(scope="module")
def environ_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the `environ` version of behaving_model.py writes the environment it was loaded with."""
    return tmp_path_factory.mktemp("model-environ") / "environ.json"


@pytest.fixture(scope="module")
def behaving(registered_model: Registered, environ_file: Path) -> dict[str, Registered]:
    """Versions of one model logged from behaving_model.py, one per mode."""
    import mlflow
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=registered_model.tracking_uri)
    experiment = client.get_experiment_by_name("batch-tests")
    assert experiment is not None
    versions = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", registered_model.tracking_uri)
        patch.setenv("MLFLOW_EXPERIMENT_ID", experiment.experiment_id)
        for mode in ("slow", "broken", "environ"):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=str(Path(__file__).with_name("behaving_model.py")),
                model_config={"mode": mode, "to": str(environ_file)},
                pip_requirements=[],
                registered_model_name="behaving",
            )
            versions[mode] = Registered(registered_model.tracking_uri, "behaving", str(info.registered_model_version))
    return versions


def bundle_parameters() -> dict[str, str]:
    """The parameters the shipped bundle declares: the contract job is defined with exactly those."""
    job = yaml.safe_load(BUNDLE_JOB.read_text())["resources"]["jobs"]["batch_score"]
    return {p["name"]: str(p["default"]) for p in job["parameters"]}


@pytest.fixture
def workspace(trust_test_ca: TestCA) -> Iterator[tuple[DatabricksJobsContract, str]]:
    """A Databricks workspace (Jobs API contract server over HTTPS) with the bundle's job."""
    contract = DatabricksJobsContract()
    contract.add_job(JOB_ID, bundle_parameters())
    with HttpsServer(contract.app, trust_test_ca) as server:
        yield contract, server.url
