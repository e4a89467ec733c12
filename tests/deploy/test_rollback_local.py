"""Rollback of a `local` target, end to end over the ledger: real MLflow models served by real
`mlflow models serve` processes. The replaced version is kept (stopped); a rollback starts it
again, smoke-tests it, and it takes over, once, however many times the request is repeated."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from fastapi.testclient import TestClient

from shared.adapters.local_deployments import RETIRED, SERVING, LocalDeploymentStore, is_alive
from shared.bootstrap import Container
from shared.cli.main import main
from shared.deployments import undeploy_local
from shared.service.dispatch import LocalDispatcher
from shared.service.reactor import Reactor
from shared.settings import Settings
from tests.deploy.conftest import Registry
from tests.support import doc

CONFIG = """
sources:
  mlflow: {tracking_uri: "%(uri)s"}
deployments:
  local: {kind: local, keep_previous: 1}
worker: {poll_interval_seconds: 0.05}
"""


@pytest.fixture(scope="module")
def stack(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Container, Path]]:
    tmp = tmp_path_factory.mktemp("rollback-local")
    config = tmp / "modelops.yaml"
    config.write_text(CONFIG % {"uri": registry.tracking_uri})
    settings = Settings.from_env({"MODELOPS_CONFIG": str(config), "MODELOPS_STATE_DIR": str(tmp / "state")})
    container = Container(settings, dispatcher=LocalDispatcher())
    try:
        yield container, tmp
    finally:
        undeploy_local(container.config, tmp / "state", "local")


def _deploy(reactor: Reactor, version: str) -> None:
    result = reactor.request_action(kind="deploy", target="local", model_name="churn-local", model_version=version)
    [done] = reactor.worker().run_until_done(result.action_ids)
    assert done.status == "succeeded", done.error


def _serving(tmp: Path) -> tuple[str, str]:
    current = LocalDeploymentStore(tmp / "state").get("local")
    assert current is not None and is_alive(current)
    requests.post(f"{current.url}/invocations", json={"inputs": [{"a": 0.1, "b": 0.2}]}, timeout=30).raise_for_status()
    return current.model_name, current.model_version


def test_rollback_returns_serving_to_the_kept_version_once_under_a_duplicate_request(
    stack: tuple[Container, Path], registry: Registry, capsys: pytest.CaptureFixture[str]
) -> None:
    container, tmp = stack
    reactor = container.reactor()
    v1, v2 = registry.log_sklearn("churn-local"), registry.log_sklearn("churn-local")
    _deploy(reactor, v1)
    _deploy(reactor, v2)
    assert _serving(tmp) == ("churn-local", v2)
    kept = LocalDeploymentStore(tmp / "state").find("local", "churn-local", v1)
    assert kept is not None and kept.status == RETIRED and not is_alive(kept)  # stopped, port freed, kept

    # docs/actions.md's commands, as written (the first queues; the API request is its duplicate)
    readme = doc("actions.md").split("## rollback", 1)[1]
    queue, forward = [
        shlex.split(line.split("#", 1)[0])[1:]
        for line in readme.split("```bash", 1)[1].split("```", 1)[0].splitlines()
        if line
    ]
    options = ["--config", str(tmp / "modelops.yaml"), "--state-dir", str(tmp / "state")]
    assert main([*queue, *options]) == 0
    [queued] = reactor.ledger.list_actions(kind="rollback")
    client = TestClient(container.http_app())
    again = client.post("/api/deployments/local/rollback", json={})
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert again.json()["action_id"] == queued.id
    [done] = reactor.worker().run_until_done([queued.id])
    assert done.status == "succeeded", done.error
    assert done.kind == "rollback" and done.attempts == 1
    assert done.outputs.to_dict()["from_version"] == v2 and done.outputs.to_dict()["smoke_test"] == "passed"
    assert _serving(tmp) == ("churn-local", v1)
    rolled_from = LocalDeploymentStore(tmp / "state").find("local", "churn-local", v2)
    assert rolled_from is not None and rolled_from.status == RETIRED and not is_alive(rolled_from)
    log = [line["message"] for line in reactor.ledger.action_log(done.id)]
    assert any("succeeded" in m for m in log), log

    # the same request once it ran: nothing earlier is left; the answer says what happened
    third = client.post("/api/deployments/local/rollback")
    assert third.status_code == 409 and "already moved it back from v" + v2 in third.json()["error"]
    assert len(reactor.ledger.list_actions(kind="rollback")) == 1

    # forward again, by version, from the CLI
    assert forward == ["rollback", "local", "--to", v2]
    args = [*forward, *options]
    assert main(args) == 0, capsys.readouterr()
    assert _serving(tmp) == ("churn-local", v2)
    assert main(args) == 0 and "already serves" in capsys.readouterr().out
    assert main(["rollback", "nope", "--config", str(tmp / "modelops.yaml"), "--state-dir", str(tmp / "state")]) == 2
    assert LocalDeploymentStore(tmp / "state").get("local") is not None
    assert [r.status for r in LocalDeploymentStore(tmp / "state").list() if r.model_version == v1] == [RETIRED]
    assert [r.status for r in LocalDeploymentStore(tmp / "state").list() if r.model_version == v2] == [SERVING]

    # `undeploy` stops and forgets both servers: the history knows, so a rollback says nothing serves
    # (it used to answer 409 "churn-local v2 serves": the ledger still had the stopped version on top)
    assert main(["undeploy", "local", *options]) == 0
    assert LocalDeploymentStore(tmp / "state").list() == []
    after = client.post("/api/deployments/local/rollback")
    assert after.status_code == 409, after.text
    error = after.json()["error"]
    assert error.startswith(
        f"nothing serves on local: `modelops undeploy` stopped churn-local v{v2}, churn-local v{v1} at "
    )
    assert error.endswith(f"Deploy the version you want: modelops deploy churn-local {v2} --target local --force")
    assert len(reactor.ledger.list_actions(kind="rollback")) == 2  # nothing planned
