"""Loop protection across sources: two real `mlflow server`s as two named sources, each sending its
webhooks to one `modelops serve`, and two rules copying each way (dev -> prod, prod -> dev). A version
is copied once each way; the copy's own event from the other server plans nothing, and `modelops plan`
says why, naming the source the copy came from. A rule that asks again on an event without tags (an
alias set on the copy) is refused by the register step itself."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mlflow
import pytest
import requests

from shared.cli.main import main
from shared.local.mlflow_server import MlflowServer
from tests.support import ReactorProcess, train_and_register, unique, wait_for, write_config

SECRETS = {"dev": "dev-secret", "prod": "prod-secret"}
CONFIG = """
sources:
  dev: {kind: mlflow, tracking_uri: "%(dev)s", secret_setting: DEV_SECRET}
  prod: {kind: mlflow, tracking_uri: "%(prod)s", secret_setting: PROD_SECRET}
  central: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/central.db"}
registries:
  dev-registry: {kind: mlflow, tracking_uri: "%(dev)s/"}
  prod-registry: {kind: mlflow, tracking_uri: "%(prod)s"}
rules:
  - name: dev-to-prod
    on: model_version.created
    source: dev
    do: [{register: prod-registry}]
  - name: prod-to-dev
    on: model_version.created
    source: prod
    do: [{register: dev-registry}]
  - name: champions-to-dev
    on: model_version.alias_set
    source: prod
    alias: champion
    do: [{register: dev-registry}]
  - name: central-to-dev
    on: model_version.created
    source: central
    do: [{register: dev-registry}]
worker: {poll_interval_seconds: 0.2, backoff_base_seconds: 0.2}
"""


@dataclass
class Loop:
    servers: dict[str, MlflowServer]
    reactor: ReactorProcess
    config: Path


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    """Two real `mlflow server`s (dev, prod), each with a webhook to one `modelops serve`."""
    root = tmp_path_factory.mktemp("loop")
    with MlflowServer(root / "dev") as dev, MlflowServer(root / "prod") as prod:
        # the dev registry entry's URI has a trailing slash: the same server, told apart by nothing
        config = write_config(root / "modelops.yaml", CONFIG % {"dev": dev.url, "prod": prod.url, "tmp": root})
        env = {"DEV_SECRET": SECRETS["dev"], "PROD_SECRET": SECRETS["prod"]}
        with ReactorProcess(root / "state", config, env=env) as reactor:
            hooks = []
            for source, server in (("dev", dev), ("prod", prod)):
                client = mlflow.MlflowClient(tracking_uri=server.url)
                hook = client.create_webhook(
                    name=unique("reactor"),
                    url=f"{reactor.url}/api/hooks/{source}",
                    events=["model_version.created", "model_version_alias.created"],
                    secret=SECRETS[source],
                )
                hooks.append((client, hook))
            try:
                yield Loop({"dev": dev, "prod": prod}, reactor, config)
            finally:
                for client, hook in hooks:
                    client.delete_webhook(hook.webhook_id)


def _versions(server: MlflowServer, name: str) -> list[mlflow.entities.model_registry.ModelVersion]:
    return list(mlflow.MlflowClient(tracking_uri=server.url).search_model_versions(f"name='{name}'"))


def _events(loop: Loop, name: str) -> list[dict]:
    answer = requests.get(f"{loop.reactor.url}/api/events", params={"limit": 500}, timeout=10).json()
    return [e for e in answer["events"] if e["model_name"] == name]


def _event_of(loop: Loop, name: str, source: str, kind: str = "model_version.created") -> dict | None:
    found = [e for e in _events(loop, name) if e["source"] == source and e["kind"] == kind]
    return found[0] if found else None


def _plan(loop: Loop, capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    capsys.readouterr()
    assert main(["plan", "--config", str(loop.config), "-o", "json", *args]) == 0
    [result] = json.loads(capsys.readouterr().out)
    return result


class TestTwoServersTwoRules:
    @pytest.mark.parametrize(
        ("origin", "other", "rule"), [("dev", "prod", "prod-to-dev"), ("prod", "dev", "dev-to-prod")]
    )
    def test_a_version_is_copied_once_and_its_copy_is_not_copied_back(
        self, loop: Loop, capsys: pytest.CaptureFixture[str], origin: str, other: str, rule: str
    ) -> None:
        name = unique(f"from-{origin}")
        train_and_register(loop.servers[origin].url, name, pip_requirements=["scikit-learn"])

        # the copy's own event comes back from the other server and is recorded as ignored
        back = wait_for(partial(_event_of, loop, name, other), what=f"the copy's event from {other}")
        assert back["status"] == "ignored", back
        assert f"{rule}: this version is a copy from source {origin}" in back["reason"]
        assert "loop protection" in back["reason"]

        [copy] = _versions(loop.servers[other], name)
        assert copy.tags["modelops.source"] == origin and copy.tags["modelops.origins"] == origin
        assert len(_versions(loop.servers[origin], name)) == 1  # nothing came back
        done = requests.get(f"{loop.reactor.url}/api/actions", params={"model": name}, timeout=10).json()
        assert [a["status"] for a in done["actions"]] == ["succeeded"]  # one copy, one way

        # `modelops plan` with the copy's real tags explains the verdict, naming the origin
        tags = [f"--tag={k}={v}" for k, v in copy.tags.items()]
        plan = _plan(
            loop,
            capsys,
            "--kind",
            "model_version.created",
            "--model",
            name,
            "--version",
            copy.version,
            "--source",
            other,
            *tags,
        )
        assert plan["actions"] == []
        verdict = {v["rule"]: v for v in plan["rules"]}[rule]
        assert verdict["failed"] == "loop" and f"copy from source {origin}" in verdict["reason"]
        assert f"back into {origin}'s registry" in verdict["reason"]

    def test_an_alias_event_without_tags_is_refused_by_the_register_step(self, loop: Loop) -> None:
        name = unique("champion")
        train_and_register(loop.servers["dev"].url, name, pip_requirements=["scikit-learn"])
        wait_for(partial(_event_of, loop, name, "prod"), what="the copy's event from prod")
        [copy] = _versions(loop.servers["prod"], name)

        # someone makes the copy prod's champion: MLflow's alias event carries no tags, so the rule plans
        mlflow.MlflowClient(tracking_uri=loop.servers["prod"].url).set_registered_model_alias(
            name, "champion", copy.version
        )
        alias = wait_for(partial(_event_of, loop, name, "prod", "model_version.alias_set"), what="alias event")
        assert alias["status"] == "accepted"

        def refused() -> list[dict]:
            actions = requests.get(f"{loop.reactor.url}/api/actions", params={"model": name}, timeout=10).json()
            return [a for a in actions["actions"] if a["rule"] == "champions-to-dev" and a["status"] == "failed"]

        [failed] = wait_for(refused, what="the champions-to-dev copy refused")
        assert "this version is a copy from source dev" in failed["error"] and "nothing was copied" in failed["error"]
        assert failed["attempts"] == 1  # permanent: not retried
        assert len(_versions(loop.servers["dev"], name)) == 1


class TestLineageChain:
    def test_a_copy_of_a_copy_is_not_copied_into_any_registry_along_its_lineage(
        self, loop: Loop, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # a version in central that came from dev through prod (modelops.origins=dev,prod)
        tags = ["--tag=modelops.source=prod", "--tag=modelops.origins=dev,prod", "--tag=modelops.rule=prod-to-central"]
        plan = _plan(
            loop,
            capsys,
            "--kind",
            "model_version.created",
            "--model",
            "m",
            "--version",
            "4",
            "--source",
            "central",
            *tags,
        )
        assert plan["actions"] == []
        verdict = {v["rule"]: v for v in plan["rules"]}["central-to-dev"]
        assert verdict["failed"] == "loop"
        assert "copy from source dev (lineage dev -> prod)" in verdict["reason"]
        assert "no rule matched" in plan["reason"] and "loop protection" in plan["reason"]

        # a version of central's own is copied to dev as the rule says
        own = _plan(
            loop, capsys, "--kind", "model_version.created", "--model", "m", "--version", "5", "--source", "central"
        )
        assert [(a["rule"], a["target"]) for a in own["actions"]] == [("central-to-dev", "dev-registry")]
