"""Deploy tests: a real MLflow sqlite registry with small models, and ActionContexts built by hand."""

from __future__ import annotations

import logging
import re
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.adapters.local_deployments import LocalDeploymentStore, stop_deployment
from shared.adapters.local_routers import LocalRouterStore, stop_router
from shared.config.loader import load_config
from shared.config.schema import ReactorConfig
from shared.domain.actions import Action, action_key
from shared.domain.outputs import DeployOutputs, RegisterOutputs
from shared.domain.params import ActionParams
from shared.executors.base import ActionContext
from tests.contract.aml_online_server import AmlOnlineContract
from tests.contract.https import HttpsServer, TestCA


@dataclass
class Registry:
    """A local MLflow registry in sqlite, plus helpers to log versions of one model into it."""

    tracking_uri: str
    artifacts: Path
    features: Any  # pandas DataFrame used for training and as input example

    def client(self) -> Any:
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri)

    def _experiment(self) -> str:
        client = self.client()
        found = client.get_experiment_by_name("deploy-tests")
        if found:
            return str(found.experiment_id)
        return str(client.create_experiment("deploy-tests", artifact_location=self.artifacts.as_uri()))

    def log_sklearn(self, name: str, *, with_example: bool = True, pip: list[str] | None = None) -> str:
        """Train a tiny classifier and register it; returns the new version. ``pip``: requirements given
        instead of inferred (mlflow's inference runs a subprocess that costs seconds per model)."""
        import mlflow
        from mlflow.models import infer_signature
        from sklearn.linear_model import LogisticRegression

        x = self.features
        y = (x["a"] + x["b"] > 1.0).astype(int)
        model = LogisticRegression().fit(x, y)
        with mlflow.start_run(experiment_id=self._experiment()):
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                input_example=x.head(3) if with_example else None,
                signature=infer_signature(x, y),
                registered_model_name=name,
                pip_requirements=pip,
            )
        return str(info.registered_model_version)

    def log_unloadable(self, name: str, *, pip: list[str] | None = None) -> str:
        """A pyfunc whose loading fails: a scoring container's init() crashes on it."""
        import mlflow
        from mlflow.models import infer_signature
        from mlflow.pyfunc import PythonModel

        class Unloadable(PythonModel):
            def load_context(self, context: Any) -> None:
                raise RuntimeError("this model cannot be loaded: its weights file is missing")

            def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
                return model_input

        x = self.features
        with mlflow.start_run(experiment_id=self._experiment()):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=Unloadable(),
                input_example=x.head(3),
                signature=infer_signature(x, x["a"]),
                registered_model_name=name,
                pip_requirements=pip,
            )
        return str(info.registered_model_version)

    def log_flaky(self, name: str, *, pip: list[str] | None = None) -> str:
        """A pyfunc that answers its own input example (so it passes the smoke test) and fails on
        every other input: a version only live traffic can judge."""
        import mlflow
        from mlflow.models import infer_signature
        from mlflow.pyfunc import PythonModel

        known = sorted(float(v) for v in self.features.head(3)["a"])

        class Flaky(PythonModel):
            def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
                if sorted(float(v) for v in model_input["a"]) != known:
                    raise ValueError("this version fails on any input but its own example")
                return model_input["a"]

        x = self.features
        with mlflow.start_run(experiment_id=self._experiment()):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=Flaky(),
                input_example=x.head(3),
                signature=infer_signature(x, x["a"]),
                registered_model_name=name,
                pip_requirements=pip,
            )
        return str(info.registered_model_version)

    def log_broken(self, name: str, *, pip: list[str] | None = None) -> str:
        """A pyfunc that loads and answers /ping but fails every prediction."""
        import mlflow
        from mlflow.models import infer_signature
        from mlflow.pyfunc import PythonModel

        class Broken(PythonModel):
            def predict(self, context: Any, model_input: Any, params: Any = None) -> Any:
                raise ValueError("column 'a' is out of range for this broken model")

        x = self.features
        with mlflow.start_run(experiment_id=self._experiment()):
            info = mlflow.pyfunc.log_model(
                name="model",
                python_model=Broken(),
                input_example=x.head(3),
                signature=infer_signature(x, x["a"]),
                registered_model_name=name,
                pip_requirements=pip,
            )
        return str(info.registered_model_version)


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A state dir for one module's local deployments; every server it recorded is stopped after."""
    path = tmp_path_factory.mktemp("state")
    yield path
    store = LocalDeploymentStore(path)
    for rec in store.list():  # never leave a server behind, whatever failed
        stop_deployment(store, rec)
    for router in LocalRouterStore(path).list():
        stop_router(path, router.target)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    import pandas as pd

    root = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    mp = pytest.MonkeyPatch()
    # mlflow.start_run/log_model read the tracking URI from the environment; scoped to this module
    mp.setenv("MLFLOW_TRACKING_URI", uri)
    mp.delenv("MLFLOW_REGISTRY_URI", raising=False)
    features = pd.DataFrame({"a": [0.1, 0.9, 0.4, 0.8, 0.2, 0.7], "b": [0.2, 0.5, 0.1, 0.9, 0.3, 0.6]})
    try:
        yield Registry(uri, root / "artifacts", features)
    finally:
        mp.undo()


def write_config(path: Path, deployments_yaml: str) -> ReactorConfig:
    path.write_text("deployments:\n" + textwrap.indent(textwrap.dedent(deployments_yaml), "  "))
    return load_config(path, env={})


def make_context(
    config: ReactorConfig,
    state_dir: Path,
    *,
    target: str,
    model_name: str,
    model_version: str,
    tracking_uri: str = "",
    upstream: dict[str, Any] | None = None,
    outputs: dict[str, Any] | None = None,
    source: str = "mlflow",
) -> ActionContext:
    action = Action(
        id=f"act-{model_name}-{model_version}" + ("" if source == "mlflow" else f"-{source}"),
        key=action_key("deploy", target, model_name, model_version, source),
        kind="deploy",
        target=target,
        model_name=model_name,
        model_version=model_version,
        event_id="evt-1",
        status="running",
        params=ActionParams(source=source, source_tracking_uri=tracking_uri),
        outputs=DeployOutputs.from_dict(outputs or {}),
        attempts=1,
    )
    return ActionContext(
        action=action,
        config=config,
        state_dir=state_dir,
        upstream=(RegisterOutputs.from_dict(upstream),) if upstream else (),
        log=logging.getLogger("tests.deploy"),
    )


ContextFactory = Callable[..., ActionContext]


def mlflow_scorer(model_id: str, payload: dict[str, Any]) -> tuple[int, Any]:
    """What Azure ML's MLflow server does with the deployed model: pyfunc predict on `input_data`."""
    import mlflow
    import pandas as pd

    name, version = re.search(r"/models/([^/]+)/versions/([^/]+)$", model_id).groups()  # type: ignore[union-attr]
    data = payload["input_data"]
    frame = pd.DataFrame(data["data"], columns=data["columns"], index=data["index"])
    try:
        predictions = mlflow.pyfunc.load_model(f"models:/{name}/{version}").predict(frame)
    except Exception as exc:  # noqa: BLE001 - the server answers the way Azure's does: 500 + message
        return 500, {"message": f"An unexpected error occurred in scoring script: {exc}"}
    return 200, [int(v) for v in predictions]


@pytest.fixture
def aml(trust_test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[AmlOnlineContract]:
    # MLClient records the cloud it used in this variable; undo it after the test
    monkeypatch.delenv("AZUREML_CURRENT_CLOUD", raising=False)
    contract = AmlOnlineContract(mlflow_scorer)
    with HttpsServer(contract.app, trust_test_ca) as server:
        contract.base_url = server.url
        yield contract


# the v1 Model Management Service contract of the ACI / AKS tests (it uses the helpers above)
from tests.deploy.mms import mms, mms_server  # noqa: E402, F401
