"""What-if: `POST /api/plan` and `modelops plan` show what the current rules would plan for a
payload of every source kind (or an event's fields), the rule behind each action and, for a rule
that does not match, the first filter that failed; nothing is recorded or dispatched."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shared.cli.main import main
from shared.service.reactor import Reactor
from shared.settings import OpsAuthSettings
from tests.spine.apptest import make_app
from tests.spine.test_eventgrid import REGISTERED, cloud_event, grid_event
from tests.support import doc

TOKEN = "plan-operator-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIG_EXTRA = """
  - name: gate
    on: run.completed
    when: {metric: accuracy, at_least: 0.9}
    do: [{register: local-aml, name: churn-run}]
"""
MLFLOW_ALIAS = {
    "entity": "model_version_alias",
    "action": "created",
    "timestamp": "2026-11-28T04:00:00Z",
    "data": {"name": "churn-eu", "version": "7", "alias": "champion"},
}
PAYLOADS: dict[str, tuple[Any, str]] = {
    # name -> (payload, the format it is read as)
    "mlflow webhook": (MLFLOW_ALIAS, "mlflow"),
    "databricks registry webhook": (
        {
            "event": "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
            "webhook_id": "w1",
            "event_timestamp": 1764300000000,
            "model_name": "churn-eu",
            "version": "7",
            "to_stage": "Production",
            "from_stage": "Staging",
        },
        "databricks",
    ),
    "databricks job notification": (
        {
            "event_type": "jobs.on_success",
            "workspace_id": "1",
            "run": {"run_id": 42},
            "job": {"job_id": 3, "name": "t"},
        },
        "databricks",
    ),
    "event grid schema": (
        [grid_event(REGISTERED, "models/churn-eu:7", {"modelName": "churn-eu", "modelVersion": 7})],
        "azureml",
    ),
    "cloudevents": (
        cloud_event(REGISTERED, "models/churn-eu:7", {"ModelName": "churn-eu", "ModelVersion": "7"}),
        "azureml",
    ),
}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestClient, Reactor, Path]:
    from tests.spine.apptest import CONFIG

    tmp = tmp_path_factory.mktemp("plan")
    client, reactor = make_app(tmp, config=CONFIG + CONFIG_EXTRA, ops_auth=OpsAuthSettings(token=TOKEN))
    return client, reactor, tmp


def _plan(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/plan", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


def _verdict(result: dict[str, Any], rule: str) -> dict[str, Any]:
    return next(v for v in result["rules"] if v["rule"] == rule)


class TestPlanPayloads:
    @pytest.mark.parametrize("name", list(PAYLOADS))
    def test_a_payload_of_every_source_kind_is_planned_and_nothing_is_recorded(
        self, app: tuple[TestClient, Reactor, Path], name: str
    ) -> None:
        client, reactor, _ = app
        payload, fmt = PAYLOADS[name]
        answer = _plan(client, {"payload": payload})
        assert answer["format"] == fmt
        [result] = answer["events"]
        keys = [a["key"] for a in result["actions"]]
        # a deploy asked for by an alias move or a stage transition is keyed by that move (the sender's time):
        # a move back to an earlier version deploys again
        expected = {
            "mlflow webhook": ["register:local-aml:churn-eu:7", "deploy:local:churn-eu:7:2026-11-28T04:00:00+00:00"],
            "databricks registry webhook": [
                "register:local-aml:churn-eu:7",
                "deploy:local:churn-eu:7:2025-11-28T03:20:00+00:00",
            ],
            "databricks job notification": ["resolve_run:databricks:t:42"],
            "event grid schema": ["register:local-aml:churn-eu:7"],
            "cloudevents": ["register:local-aml:churn-eu:7"],
        }[name]
        assert keys == expected
        for action in result["actions"]:
            if action["kind"] == "resolve_run":  # a run is read first; the rules that wait for it say so
                assert _verdict(result, "gate")["pending"] and action["key"] in _verdict(result, "gate")["actions"]
            else:
                assert _verdict(result, str(action["rule"]))["matched"]
        assert reactor.ledger.list_events() == [] and reactor.ledger.list_actions() == []

    def test_a_rule_that_does_not_match_says_which_filter_failed(self, app: tuple[TestClient, Reactor, Path]) -> None:
        client, _, _ = app
        other = {**MLFLOW_ALIAS, "data": {"name": "fraud", "version": "2", "alias": "champion"}}
        [result] = _plan(client, {"payload": other})["events"]
        assert result["actions"] == []
        champion = _verdict(result, "champion")
        assert champion["matched"] is False and champion["failed"] == "models"
        assert "'fraud' not in ['churn-*']" in champion["reason"]
        assert _verdict(result, "copy")["failed"] == "on"
        assert result["reason"].startswith("no rule matched (champion: model 'fraud'")
        [staging] = _plan(
            client,
            {
                "event": {
                    "kind": "model_version.stage_changed",
                    "model_name": "m",
                    "model_version": 1,
                    "stage": "Staging",
                }
            },
        )["events"]
        assert _verdict(staging, "promote")["failed"] == "stage"

    def test_a_chained_plan_names_the_rule_and_the_step_each_action_waits_for(
        self, app: tuple[TestClient, Reactor, Path]
    ) -> None:
        client, _, _ = app
        [result] = _plan(client, {"payload": MLFLOW_ALIAS})["events"]
        register, deploy = result["actions"]
        assert register["rule"] == deploy["rule"] == "champion"
        assert register["after"] is None and deploy["after"] == register["key"]

    def test_a_run_is_resolved_first_unless_its_metrics_are_given(self, app: tuple[TestClient, Reactor, Path]) -> None:
        client, _, _ = app
        [pending] = _plan(client, {"event": {"kind": "run.completed", "run_id": "r9"}})["events"]
        assert [a["kind"] for a in pending["actions"]] == ["resolve_run"] and _verdict(pending, "gate")["pending"]
        fields = {"kind": "run.completed", "run_id": "r9", "model_uri": "runs:/r9/model"}
        [low] = _plan(client, {"event": {**fields, "metrics": {"accuracy": 0.8}}})["events"]
        assert _verdict(low, "gate")["failed"] == "when" and "accuracy=0.8 < 0.9" in _verdict(low, "gate")["reason"]
        [high] = _plan(client, {"event": {**fields, "metrics": {"accuracy": 0.95}}})["events"]
        assert [a["key"] for a in high["actions"]] == ["register:local-aml:churn-run:run-r9"]

    @pytest.mark.parametrize(
        ("body", "needle"),
        [
            ({}, "either `payload`"),
            ({"payload": MLFLOW_ALIAS, "event": {"kind": "model_version.created"}}, "either `payload`"),
            ({"payload": {"hello": "world"}}, "not a format this app reads"),
            ({"payload": {**MLFLOW_ALIAS, "data": {"version": "1"}}}, "data.name is required"),
            ({"event": {"kind": "model_version.created", "source": "nope"}}, "no source named 'nope'"),
            ({"event": {"kind": "model_version.created", "tags": {"a": 1}}}, "tags"),
        ],
    )
    def test_bad_requests_are_400_in_the_one_error_shape(
        self, app: tuple[TestClient, Reactor, Path], body: dict[str, Any], needle: str
    ) -> None:
        client, reactor, _ = app
        response = client.post("/api/plan", json=body, headers=AUTH)
        assert response.status_code == 400, response.text
        assert needle in response.json()["error"] and response.json()["problems"]
        assert reactor.ledger.list_events() == []

    def test_the_route_takes_the_operator_credential(self, app: tuple[TestClient, Reactor, Path]) -> None:
        client, _, _ = app
        assert client.post("/api/plan", json={"payload": MLFLOW_ALIAS}).status_code == 401


class TestPlanCommand:
    def _run(self, tmp: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
        code = main([*args, "--config", str(tmp / "modelops.yaml"), "--state-dir", str(tmp / "state")])
        return code, capsys.readouterr().out

    @pytest.mark.parametrize("name", list(PAYLOADS))
    def test_plan_reads_a_payload_file_of_every_source_kind(
        self, app: tuple[TestClient, Reactor, Path], capsys: pytest.CaptureFixture[str], name: str, tmp_path: Path
    ) -> None:
        _, reactor, tmp = app
        file = tmp_path / "payload.json"
        file.write_text(json.dumps(PAYLOADS[name][0]))
        code, out = self._run(tmp, capsys, "plan", str(file), "-o", "json")
        api = _plan(app[0], {"payload": PAYLOADS[name][0]})["events"]
        assert code == 0 and json.loads(out) == api
        assert reactor.ledger.list_events() == []

    def test_plan_by_fields_explains_a_rule_that_does_not_match(
        self, app: tuple[TestClient, Reactor, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        _, _, tmp = app
        args = (
            "plan",
            "--kind",
            "model_version.alias_set",
            "--model",
            "fraud",
            "--version",
            "2",
            "--alias",
            "champion",
        )
        code, out = self._run(tmp, capsys, *args)
        assert code == 0
        assert "plans nothing: no rule matched" in out
        assert "champion" in out and "models" in out and "'fraud' not in ['churn-*']" in out

    def test_config_check_explain_shows_every_rule_against_example_events(
        self, app: tuple[TestClient, Reactor, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        _, _, tmp = app
        code, out = self._run(tmp, capsys, "config", "check", "--explain")
        assert code == 0
        for title in (
            "copy / model_version.created",
            "copy / model.registered",
            "promote / model_version.stage_changed",
            "champion / model_version.alias_set",
            "gate / run.completed",
        ):
            assert f"example for {title}:" in out
        assert "register  local-aml  churn-run/run-example-run" in out  # the gate's example passes its metric

    def test_a_payload_and_fields_together_are_a_usage_error(
        self, app: tuple[TestClient, Reactor, Path], capsys: pytest.CaptureFixture[str], tmp_path: Path
    ) -> None:
        _, _, tmp = app
        file = tmp_path / "p.json"
        file.write_text(json.dumps(MLFLOW_ALIAS))
        assert self._run(tmp, capsys, "plan", str(file), "--kind", "model_version.created")[0] == 2
        assert self._run(tmp, capsys, "plan")[0] == 2


def test_the_docs_what_if_commands_work_as_written(
    app: tuple[TestClient, Reactor, Path],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import shlex

    _, _, tmp = app
    block = doc("cli.md").split("## What-if", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith("modelops ")]
    assert len(lines) == 4
    (tmp_path / "payload.json").write_text(json.dumps(MLFLOW_ALIAS))
    monkeypatch.chdir(tmp_path)
    for line in lines:
        args = shlex.split(line)[1:]
        assert main([*args, "--config", str(tmp / "modelops.yaml"), "--state-dir", str(tmp / "state")]) == 0, line
        assert capsys.readouterr().out.strip(), line
