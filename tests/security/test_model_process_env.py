"""A deployed model's process holds none of the reactor's secrets: deployed through `modelops serve`'s
API, its environment read from /proc/<pid>/environ, as the model's own code could read it."""

from __future__ import annotations

from pathlib import Path

import mlflow
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

CONFIG = """
sources:
  mlflow: {{kind: mlflow, tracking_uri: "sqlite:///{tmp}/source.db"}}
  team-a: {{kind: mlflow, tracking_uri: "sqlite:///{tmp}/team-a.db", secret_setting: TEAM_A_SECRET}}
deployments:
  local: {{kind: local, startup_timeout_s: 120}}
rules: []
"""


def environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(entry.split("=", 1) for entry in raw.decode().split("\0") if "=" in entry)


def test_the_deployed_model_process_holds_none_of_the_reactor_secrets(tmp_path: Path) -> None:
    source = f"sqlite:///{tmp_path}/source.db"
    mlflow.MlflowClient(tracking_uri=source).create_experiment("tests", artifact_location=str(tmp_path / "art"))
    model = unique("env-model")
    version, _ = train_and_register(source, model, pip_requirements=["scikit-learn"])
    config = write_config(tmp_path / "modelops.yaml", CONFIG.format(tmp=tmp_path))
    state = tmp_path / "state"
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with ReactorProcess(state, config, env={**SECRETS, "LC_ALL": "C.UTF-8"}) as reactor:
        body = {"kind": "deploy", "target": "local", "model_name": model, "model_version": int(version)}
        answer = requests.post(f"{reactor.url}/api/actions", json=body, headers=headers, timeout=30)
        assert answer.status_code == 202, answer.text
        action_id = answer.json()["action_id"]

        def finished() -> dict | None:
            action = requests.get(f"{reactor.url}/api/actions/{action_id}", headers=headers, timeout=10).json()
            return action if action["status"] in ("succeeded", "failed") else None

        action = wait_for(finished, timeout=240, what="the local deploy to finish")
        assert action["status"] == "succeeded", action
    record = LocalDeploymentStore(state).get("local")
    assert record is not None
    try:
        env = environ_of(record.pid)
        leaked = sorted(name for name, value in SECRETS.items() if name in env or value in env.values())
        assert leaked == []
        # what the server needs did reach it
        assert env["MLFLOW_TRACKING_URI"] == source and env["LC_ALL"] == "C.UTF-8" and "PATH" in env
        assert requests.get(f"{record.url}/ping", timeout=10).status_code == 200
    finally:
        stop_deployment(LocalDeploymentStore(state), record)


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
def test_a_target_naming_a_reactor_secret_is_refused_by_config_check(tmp_path: Path, named: str, says: str) -> None:
    from shared.config.loader import load_config
    from shared.errors import ConfigError

    path = write_config(
        tmp_path / "modelops.yaml",
        f"batch:\n  spark: {{kind: spark-local, input: in, output: out, env: [{named!r}]}}\n",
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path, env={})
    assert "batch.spark.env" in str(refused.value) and says in str(refused.value)
