"""A model's process holds none of the reactor's secrets: deployed through `modelops serve`'s API, its
environment read from /proc/<pid>/environ; batch-scored through that API by a model whose predictions
are its own /proc/self/environ, as any model's code could read it."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pyarrow.parquet as pq
import pytest
import requests

from shared.adapters.local_deployments import LocalDeploymentStore, stop_deployment
from shared.child_env import child_environment
from tests.support import ReactorProcess, train_and_register, unique, wait_for, write_config

pytestmark = pytest.mark.slow

TOKEN = "env-test-operator-token"
SECRETS = {
    "MODELOPS_OPS_TOKEN": TOKEN,
    "MODELOPS_APPROVER_TOKEN": "env-test-approver-token",
    "MLFLOW_WEBHOOK_SECRET": "env-test-mlflow-secret",
    "DATABRICKS_WEBHOOK_SECRET": "env-test-databricks-secret",
    "DATABRICKS_TOKEN": "dapi0123456789abcdef0123456789abcdef",
    "AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=x;AccountKey=c2VjcmV0",
    "MODELOPS_OUTCOME_TOPIC_KEY": "env-test-topic-key",
    "TEAM_A_SECRET": "env-test-team-a-secret",
    "MLFLOW_TRACKING_TOKEN": "env-test-mlflow-tracking-token",
}
# what the target names under `env:` (artifacts in Blob Storage), and a setting nothing names
NAMED = {"AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=models;AccountKey=bmFtZWQ="}
UNNAMED = {"SOME_OTHER_SETTING": "not-for-the-model"}
ENV_NAMED = "[AZURE_STORAGE_CONNECTION_STRING]"  # the targets' env:

CONFIG = """
sources:
  mlflow: {{kind: mlflow, tracking_uri: "sqlite:///{tmp}/source.db"}}
  team-a: {{kind: mlflow, tracking_uri: "sqlite:///{tmp}/team-a.db", secret_setting: TEAM_A_SECRET}}
deployments:
  local: {{kind: local, startup_timeout_s: 120, env: {env}}}
rules: []
"""


def environ_of(pid: int) -> dict[str, str]:
    return parse_environ(Path(f"/proc/{pid}/environ").read_bytes().decode())


def parse_environ(raw: str) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in raw.split("\0") if "=" in entry)


def run_action(reactor: ReactorProcess, body: dict[str, object]) -> dict:
    """POST /api/actions as the operator, then the action once it has finished."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    answer = requests.post(f"{reactor.url}/api/actions", json=body, headers=headers, timeout=30)
    assert answer.status_code == 202, answer.text
    action_id = answer.json()["action_id"]

    def finished() -> dict | None:
        action = requests.get(f"{reactor.url}/api/actions/{action_id}", headers=headers, timeout=10).json()
        return action if action["status"] in ("succeeded", "failed") else None

    return wait_for(finished, timeout=240, what=f"the {body['kind']} action to finish")  # type: ignore[no-any-return]


def test_the_deployed_model_process_holds_none_of_the_reactor_secrets(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path}/source.db"
    mlflow.MlflowClient(tracking_uri=source).create_experiment("tests", artifact_location=str(tmp_path / "art"))
    model = unique("env-model")
    version, _ = train_and_register(source, model, pip_requirements=["scikit-learn"])
    config = write_config(tmp_path / "modelops.yaml", CONFIG.format(tmp=tmp_path, env=ENV_NAMED))
    state = tmp_path / "state"
    with ReactorProcess(state, config, env={**SECRETS, **NAMED, **UNNAMED, "LC_ALL": "C.UTF-8"}) as reactor:
        body = {"kind": "deploy", "target": "local", "model_name": model, "model_version": int(version)}
        action = run_action(reactor, body)
        assert action["status"] == "succeeded", action
    record = LocalDeploymentStore(state).get("local")
    assert record is not None
    try:
        env = environ_of(record.pid)
        leaked = sorted(name for name, value in SECRETS.items() if name in env or value in env.values())
        assert leaked == []
        # what the server needs did reach it, with what its target names
        assert env["MLFLOW_TRACKING_URI"] == source and env["LC_ALL"] == "C.UTF-8" and "PATH" in env
        assert {name: env.get(name) for name in NAMED} == NAMED and "SOME_OTHER_SETTING" not in env
        assert requests.get(f"{record.url}/ping", timeout=10).status_code == 200
    finally:
        stop_deployment(LocalDeploymentStore(state), record)


def test_the_batch_scoring_process_holds_none_of_the_reactor_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = f"sqlite:///{tmp_path}/source.db"
    client = mlflow.MlflowClient(tracking_uri=source)
    experiment = client.create_experiment("tests", artifact_location=str(tmp_path / "art"))
    model = unique("env-batch")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", source)  # log_model writes to the "current" store only
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", experiment)
    logged = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(Path(__file__).with_name("environment_model.py")),
        pip_requirements=[],
        registered_model_name=model,
    )
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    (tmp_path / "in.csv").write_text("x\n1\n2\n3\n")
    output = tmp_path / "scored.parquet"
    batch = f'batch:\n  nightly: {{kind: local, input: "{tmp_path}/in.csv", output: "{output}", env: {ENV_NAMED}}}\n'
    config = write_config(tmp_path / "modelops.yaml", CONFIG.format(tmp=tmp_path, env=ENV_NAMED) + batch)
    with ReactorProcess(tmp_path / "state", config, env={**SECRETS, **NAMED, **UNNAMED}) as reactor:
        body = {"kind": "batch_score", "target": "nightly", "model_name": model}
        action = run_action(reactor, {**body, "model_version": int(logged.registered_model_version)})
        assert action["status"] == "succeeded", action
    predictions = pq.read_table(output)["prediction"].to_pylist()
    assert len(predictions) == 3
    env = parse_environ("\0".join(json.loads(predictions[0])))
    leaked = sorted(name for name, value in SECRETS.items() if name in env or value in env.values())
    assert leaked == []
    assert {name: env.get(name) for name in NAMED} == NAMED and "SOME_OTHER_SETTING" not in env
    assert "PATH" in env and "HOME" in env


def test_a_target_names_what_else_its_process_gets_and_never_a_reactor_secret() -> None:
    source = {**SECRETS, "PATH": "/bin", "AZURE_STORAGE_CONNECTION_STRING": "for-the-artifacts"}
    env = child_environment(
        source,
        named=["AZURE_STORAGE_CONNECTION_STRING", "MODELOPS_OPS_TOKEN", "TEAM_A_SECRET"],
        withheld={"TEAM_A_SECRET"},
    )
    assert env == {"PATH": "/bin", "AZURE_STORAGE_CONNECTION_STRING": "for-the-artifacts"}


@pytest.mark.parametrize(
    ("named", "says"),
    [
        ("MODELOPS_OPS_TOKEN", "never handed to a model"),
        ("AzureWebJobsStorage__accountName", "never handed"),
        ("NOT A NAME", "not an app setting name"),
    ],
)
@pytest.mark.parametrize(
    ("section", "target"),
    [
        ("batch.spark", "batch:\n  spark: {{kind: spark-local, input: in, output: out, env: [{named!r}]}}\n"),
        ("batch.nightly", "batch:\n  nightly: {{kind: local, input: in, output: out, env: [{named!r}]}}\n"),
        ("deployments.local", "deployments:\n  local: {{kind: local, env: [{named!r}]}}\n"),
    ],
)
def test_a_target_naming_a_reactor_secret_is_refused_by_config_check(
    tmp_path: Path, named: str, says: str, section: str, target: str
) -> None:
    from shared.config.loader import load_config
    from shared.errors import ConfigError

    path = write_config(tmp_path / "modelops.yaml", target.format(named=named))
    with pytest.raises(ConfigError) as refused:
        load_config(path, env={})
    assert f"{section}.env" in str(refused.value) and says in str(refused.value)


def test_a_target_naming_a_sources_secret_is_refused_by_config_check(tmp_path: Path) -> None:
    from shared.config.loader import load_config
    from shared.errors import ConfigError

    config = CONFIG.format(tmp=tmp_path, env="[AZURE_STORAGE_CONNECTION_STRING, TEAM_A_SECRET]")
    with pytest.raises(ConfigError) as refused:
        load_config(write_config(tmp_path / "modelops.yaml", config), env={})
    assert "deployments.local.env: TEAM_A_SECRET is the webhook secret of source 'team-a'" in str(refused.value)
