"""Local targets keep two named sources' same-named versions apart (one server each), and a store
written before deployments were keyed by source opens with its rows intact."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from shared.adapters.local_deployments import SERVING, LocalDeploymentStore
from shared.cleanup.local_provider import group_name
from shared.config.schema import ReactorConfig
from shared.executors.registry import ExecutorRegistry
from tests.deploy.conftest import Registry, make_context, write_config

MODEL = "churn-two-sources"

OLD_SCHEMA = """
CREATE TABLE local_deployments (
    target TEXT NOT NULL, model_name TEXT NOT NULL, model_version TEXT NOT NULL, status TEXT NOT NULL,
    pid INTEGER NOT NULL, create_time REAL NOT NULL, host TEXT NOT NULL, port INTEGER NOT NULL,
    url TEXT NOT NULL, model_uri TEXT NOT NULL, tracking_uri TEXT NOT NULL, registry_uri TEXT,
    log_file TEXT NOT NULL, action_key TEXT, started_at REAL NOT NULL,
    PRIMARY KEY (target, model_name, model_version)
)
"""


def test_a_store_from_before_sources_opens_with_its_rows_and_takes_a_second_source(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "deployments.db")
    db.execute(OLD_SCHEMA)
    db.execute(
        "INSERT INTO local_deployments VALUES ('local', 'churn', '3', 'serving', 999999, 1.0, '127.0.0.1', 5001, "
        "'http://127.0.0.1:5001', 'models:/churn/3', 'sqlite:///a.db', NULL, 'a.log', 'deploy:local:churn:3', 2.0)"
    )
    db.commit()
    db.close()

    store = LocalDeploymentStore(tmp_path)
    old = store.find("local", "churn", "3")
    assert old is not None and old.source == "" and old.status == SERVING and old.port == 5001
    assert group_name(old) == "local/churn/3"  # cleanup marks written before stay valid

    from dataclasses import replace

    prod = replace(old, source="prod", port=5002, url="http://127.0.0.1:5002", tracking_uri="sqlite:///b.db")
    store.record(prod)
    assert store.find("local", "churn", "3") == old
    assert store.find("local", "churn", "3", "prod") == prod
    assert group_name(prod) == "local/prod/churn/3"
    assert [r.port for r in store.promote(prod)] == [5001]  # the other source's version is what it replaces
    LocalDeploymentStore(tmp_path)  # opening again: already keyed, nothing rebuilt
    assert len(store.list()) == 2


@pytest.mark.slow
def test_two_sources_same_named_version_get_a_server_each(registry: Registry, state_dir: Path, tmp_path: Path) -> None:
    config: ReactorConfig = write_config(tmp_path / "modelops.yaml", "local:\n  kind: local\n  startup_timeout_s: 90\n")
    version = registry.log_sklearn(MODEL, pip=["mlflow", "scikit-learn"])
    executor = ExecutorRegistry().get("deploy", config.deployments["local"])

    def deploy(source: str) -> dict:
        ctx = make_context(
            config,
            state_dir,
            target="local",
            model_name=MODEL,
            model_version=version,
            tracking_uri=registry.tracking_uri,
            source=source,
        )
        return executor.execute(ctx).outputs.to_dict()

    dev = deploy("dev")
    prod = deploy("prod")
    # before deployments were keyed by source, prod's deploy found dev's server and answered "reused"
    assert prod["reused"] is False and prod["pid"] != dev["pid"]
    assert prod["replaced"] == [f"{MODEL}/{version}"]
    store = LocalDeploymentStore(state_dir)
    serving = store.get("local")
    assert serving is not None and serving.source == "prod" and serving.pid == prod["pid"]
    kept = store.find("local", MODEL, version, "dev")
    assert kept is not None and kept.status == "retired"  # kept for a rollback, its process stopped
    assert deploy("prod")["reused"] is True  # a duplicate of prod's deploy is prod's server
