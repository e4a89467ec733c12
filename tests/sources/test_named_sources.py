"""Named sources of a kind: two real MLflow servers as two sources with their own secrets, and
Azure ML workspaces told apart by the Event Grid event's workspace."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import mlflow
import pytest
import requests

from shared.bootstrap import Container
from shared.cli.main import main
from shared.config.loader import load_config
from shared.domain.events import event_from_payload
from shared.errors import ConfigError
from shared.local.mlflow_server import MlflowServer
from shared.service.reconcile import reconcile_sources as poll_sources
from shared.settings import Settings
from tests.spine.apptest import make_app
from tests.spine.test_eventgrid import REGISTERED, cloud_event, grid_event, native_trigger
from tests.support import ReactorProcess, doc, mlflow_delivery, train_and_register, unique, wait_for, write_config

SECRETS = {"team-a": "team-a-secret", "team-b": "team-b-secret"}
TWO_SERVERS = """
sources:
  team-a: {kind: mlflow, tracking_uri: "%(a)s", secret_setting: TEAM_A_SECRET}
  team-b: {kind: mlflow, tracking_uri: "%(b)s", secret_setting: TEAM_B_SECRET}
registries:
  central: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/central.db", artifact_location: "%(tmp)s/central-art"}
rules:
  - name: from-a
    on: model_version.created
    source: team-a
    do: [{register: central, name: "%(model)s-a"}]
  - name: from-b
    on: model_version.created
    source: [team-b]
    do: [{register: central, name: "%(model)s-b"}]
worker: {poll_interval_seconds: 0.2, backoff_base_seconds: 0.2}
"""


@dataclass
class Teams:
    a: MlflowServer
    b: MlflowServer
    reactor: ReactorProcess
    central: str  # tracking URI of the target registry
    config: Path
    model: str  # the model name both servers register


@pytest.fixture(scope="module")
def teams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Teams]:
    """Two real `mlflow server`s (team-a, team-b) and one `modelops serve` naming both."""
    root = tmp_path_factory.mktemp("named-sources")
    model = unique("shared-name")
    with MlflowServer(root / "a") as a, MlflowServer(root / "b") as b:
        config = write_config(
            root / "modelops.yaml", TWO_SERVERS % {"a": a.url, "b": b.url, "tmp": root, "model": model}
        )
        env = {"TEAM_A_SECRET": SECRETS["team-a"], "TEAM_B_SECRET": SECRETS["team-b"]}
        with ReactorProcess(root / "state", config, env=env) as reactor:
            yield Teams(a, b, reactor, f"sqlite:///{root}/central.db", config, model)


def _events(base: str) -> list[dict]:
    return list(requests.get(f"{base}/api/events", params={"limit": 500}, timeout=10).json()["events"])


def _envelope(name: str, version: str) -> dict:
    return {
        "entity": "model_version",
        "action": "created",
        "data": {"name": name, "version": version, "source": "s", "run_id": None, "tags": {}},
    }


class TestTwoMlflowServers:
    def test_each_source_is_copied_from_its_own_server_by_its_own_rule(self, teams: Teams) -> None:
        versions = {}
        hooks = []
        for source, server in (("team-a", teams.a), ("team-b", teams.b)):
            client = mlflow.MlflowClient(tracking_uri=server.url)
            hooks.append(
                (
                    client,
                    client.create_webhook(
                        name=unique("reactor"),
                        url=f"{teams.reactor.url}/api/hooks/{source}",
                        events=["model_version.created"],
                        secret=SECRETS[source],
                    ),
                )
            )
        try:
            # the same model name on both servers: only the source name tells them apart
            for source, server in (("team-a", teams.a), ("team-b", teams.b)):
                versions[source], _ = train_and_register(server.url, teams.model)
            for suffix in ("a", "b"):
                target = f"{teams.model}-{suffix}"
                wait_for(partial(_succeeded, teams, target), what=f"copy into {target}")
        finally:
            for client, hook in hooks:
                client.delete_webhook(hook.webhook_id)

        central = mlflow.MlflowClient(tracking_uri=teams.central, registry_uri=teams.central)
        for source, server, suffix in (("team-a", teams.a, "a"), ("team-b", teams.b, "b")):
            [copy] = central.search_model_versions(f"name='{teams.model}-{suffix}'")
            original = mlflow.MlflowClient(tracking_uri=server.url).get_model_version(teams.model, versions[source])
            assert copy.tags["modelops.source"] == source
            assert copy.tags["modelops.source_registry"] == server.url
            assert copy.tags["modelops.source_run_id"] == original.run_id
            assert copy.tags["modelops.rule"] == f"from-{suffix}"
        by_source = {e["source"]: e for e in _events(teams.reactor.url) if e["model_name"] == teams.model}
        assert set(by_source) == {"team-a", "team-b"}
        assert {e["summary"]["via"] for e in by_source.values()} == {"webhook"}

        # the poller, over the same ledger, sees each server's version under that source's own name:
        # the same change as its webhook, so one event each
        env = {"MODELOPS_CONFIG": str(teams.config), "MODELOPS_STATE_DIR": str(teams.reactor.state_dir)}
        polling = Container(Settings.from_env(env)).reactor()
        for source in ("team-a", "team-b"):
            counts = poll_sources(polling, only=source)[source]
            assert counts["versions"] >= 1 and counts["accepted"] == 0, counts
        assert len([e for e in _events(teams.reactor.url) if e["model_name"] == teams.model]) == 2

    def test_a_delivery_signed_with_the_other_sources_secret_is_refused(self, teams: Teams) -> None:
        before = len(_events(teams.reactor.url))
        body, headers = mlflow_delivery(SECRETS["team-b"], _envelope(unique("forged"), "1"))
        response = requests.post(f"{teams.reactor.url}/api/hooks/team-a", data=body, headers=headers, timeout=10)
        assert response.status_code == 401
        assert "X-MLflow-Signature does not match" in response.json()["error"]
        # the same bytes under their own source's secret are fine: the refusal was the secret
        body_b, headers_b = mlflow_delivery(SECRETS["team-b"], _envelope(unique("ok"), "1"))
        assert requests.post(f"{teams.reactor.url}/api/hooks/team-b", data=body_b, headers=headers_b, timeout=10).ok
        assert len(_events(teams.reactor.url)) == before + 1

    def test_unknown_source_is_404_and_the_kind_route_names_the_choices(self, teams: Teams) -> None:
        body, headers = mlflow_delivery(SECRETS["team-a"], _envelope("m", "1"))
        unknown = requests.post(f"{teams.reactor.url}/api/hooks/team-c", data=body, headers=headers, timeout=10)
        assert unknown.status_code == 404
        assert unknown.json()["problems"][0]["field"] == "source" and "team-a, team-b" in unknown.json()["error"]
        ambiguous = requests.post(f"{teams.reactor.url}/api/hooks/mlflow", data=body, headers=headers, timeout=10)
        assert ambiguous.status_code == 400
        assert "/api/hooks/team-a" in ambiguous.json()["error"] and "/api/hooks/team-b" in ambiguous.json()["error"]


def _succeeded(teams: Teams, target_name: str) -> list[dict]:
    actions = requests.get(f"{teams.reactor.url}/api/actions", params={"model": teams.model}, timeout=10).json()
    return [
        a
        for a in actions["actions"]
        if a["status"] == "succeeded" and (a.get("outputs") or {}).get("model_name") == target_name
    ]


DEV = "/subscriptions/s1/resourceGroups/rg-dev/providers/Microsoft.MachineLearningServices/workspaces/ml-dev"
PROD = "/subscriptions/s1/resourceGroups/rg-prod/providers/Microsoft.MachineLearningServices/workspaces/ml-prod"
OTHER = "/subscriptions/s1/resourceGroups/rg-x/providers/Microsoft.MachineLearningServices/workspaces/ml-other"
WORKSPACES = """
sources:
  aml-dev: {kind: azureml, tracking_uri: "sqlite:///%(tmp)s/dev.db", workspace_id: "%(dev)s"}
  aml-prod:
    kind: azureml
    tracking_uri: "sqlite:///%(tmp)s/prod.db"
    subscription_id: s1
    resource_group: rg-prod
    workspace: ml-prod
registries:
  local-aml: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/aml.db"}
rules:
  - name: dev-models
    on: model.registered
    source: aml-dev
    do: [{register: local-aml}]
  - name: prod-models
    on: model.registered
    source: aml-prod
    do: [{register: local-aml, name: promoted}]
"""


def _workspace_config(tmp: Path) -> str:
    return WORKSPACES.replace("%(dev)s", DEV) % {"tmp": tmp}


class TestWorkspacesThroughEventGrid:
    def test_webhook_events_of_two_workspaces_reach_their_sources_and_a_third_is_ignored(self, tmp_path: Path) -> None:
        client, reactor = make_app(tmp_path, config=_workspace_config(tmp_path).replace("%", "%%"))
        data = {"modelName": "churn", "modelVersion": 3}
        dev = grid_event(REGISTERED, "models/churn:3", data, "g-dev") | {"topic": DEV.lower()}
        prod = cloud_event(REGISTERED, "models/churn:3", data, "c-prod") | {"source": PROD.upper()}
        other = grid_event(REGISTERED, "models/churn:3", data, "g-other") | {"topic": OTHER}
        assert client.post("/api/hooks/eventgrid", json=[dev, other]).status_code == 202
        assert client.post("/api/hooks/eventgrid", json=prod).status_code == 202

        events = {e["summary"]["source"]: e for e in reactor.ledger.list_events()}
        assert set(events) == {"aml-dev", "aml-prod", "eventgrid"}
        assert events["aml-dev"]["status"] == "accepted" and events["aml-prod"]["status"] == "accepted"
        ignored = events["eventgrid"]
        assert ignored["status"] == "ignored"
        assert f"no azureml source has workspace {OTHER}" in ignored["reason"]
        actions = {a.params.source: a for a in reactor.ledger.list_actions()}
        assert set(actions) == {"aml-dev", "aml-prod"}
        assert actions["aml-dev"].rule == "dev-models" and actions["aml-prod"].rule == "prod-models"
        assert actions["aml-prod"].params.source_tracking_uri == f"sqlite:///{tmp_path}/prod.db"

    def test_the_native_trigger_routes_by_workspace_too(self, tmp_path: Path) -> None:
        import azure.functions as func

        container, trigger = native_trigger(tmp_path, _workspace_config(tmp_path).replace("%", "%%"))
        for event_id, topic in (("n-prod", PROD), ("n-other", OTHER)):
            trigger(
                func.EventGridEvent(
                    id=event_id,
                    data={"modelName": "churn", "modelVersion": 4},
                    topic=topic,
                    subject="models/churn:4",
                    event_type=REGISTERED,
                    event_time=None,
                    data_version="2",
                )
            )
        events = {e["summary"]["source"]: e for e in container.reactor().ledger.list_events()}
        assert set(events) == {"aml-prod", "eventgrid"}
        assert events["aml-prod"]["summary"]["via"] == "eventgrid"
        assert "no azureml source has workspace" in events["eventgrid"]["reason"]


class TestConfigOfSources:
    def test_the_old_names_without_kind_still_validate_with_a_notice(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = write_config(tmp_path / "old.yaml", 'sources:\n  mlflow: {tracking_uri: "http://127.0.0.1:5000"}\n')
        assert main(["config", "check", "--config", str(path)]) == 0
        out = capsys.readouterr().out
        assert "mlflow (mlflow)" in out and "notice: sources.mlflow: no `kind:` given" in out

    def test_a_rule_naming_an_unknown_source_names_the_choices(self, tmp_path: Path) -> None:
        text = _workspace_config(tmp_path).replace("source: aml-prod", "source: [aml-prod, aml-stage]")
        path = write_config(tmp_path / "bad.yaml", text)
        with pytest.raises(ConfigError, match=r"rules\[1\]\.source: unknown source 'aml-stage'.*aml-dev, aml-prod"):
            load_config(path, env={})

    def test_a_stored_poller_event_replays_under_its_source_name(self) -> None:
        stored = {
            "source": "poller:team-a",
            "kind": "model_version.created",
            "source_type": "poll.model_version.created",
            "model_name": "m",
            "model_version": "2",
            "occurred_at": "2026-11-28T04:00:00+00:00",
        }
        event = event_from_payload(stored)
        assert (event.source, event.via) == ("team-a", "poller")
        assert event.dedupe_key == "team-a|model_version.created|m|2"

    def test_the_docs_promotion_example_validates(self, tmp_path: Path) -> None:
        text = doc("sources.md")
        block = text.split("**Dev -> prod promotion**", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
        config = load_config(write_config(tmp_path / "promote.yaml", block.replace("<sub>", "s1")), env={})
        assert [r.source for r in config.rules] == [["aml-dev"], ["aml-prod"]]
        assert [s.target for s in config.rules[0].do] == ["shared", "aml-prod"]
        assert config.workspace_ids()["aml-prod"] == (
            "/subscriptions/s1/resourcegroups/rg-ml-prod/providers/microsoft.machinelearningservices/workspaces/ml-prod"
        )

    def test_a_source_whose_own_secret_setting_is_unset_is_never_accepted_unsigned(self, tmp_path: Path) -> None:
        config = 'sources:\n  team-x: {kind: mlflow, tracking_uri: "sqlite:///%(tmp)s/x.db", secret_setting: TEAM_X}\n'
        client, reactor = make_app(tmp_path, config=config)
        response = client.post("/api/hooks/team-x", json=_envelope("m", "1"))
        assert response.status_code == 401 and "TEAM_X, which is not set" in response.json()["error"]
        assert reactor.ledger.list_events() == []

    def test_a_unity_catalog_source_has_no_webhook(self, tmp_path: Path) -> None:
        config = 'sources:\n  uc: {kind: databricks-uc, tracking_uri: "sqlite:///%(tmp)s/uc.db", poll: true}\n'
        client, reactor = make_app(tmp_path, config=config)
        response = client.post("/api/hooks/uc", json={"event": "MODEL_VERSION_CREATED"})
        assert response.status_code == 400 and "sends no webhooks" in response.json()["error"]
        assert reactor.ledger.list_events() == []
