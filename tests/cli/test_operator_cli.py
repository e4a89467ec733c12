"""The CLI never misleads (issue #26): a template is not OK until filled, a rule that cannot fire is
said so, read commands refuse a state dir without a ledger, `-o` is honoured everywhere, a cut
listing says so, and usage errors say what was meant."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from shared.cli.main import main
from shared.config.loader import AZURE_TEMPLATE, DEFAULT_CONFIG
from shared.ledger.sqlite import SqliteLedger
from tests.cli.test_config_init import PLACEHOLDERS, filled
from tests.cli.test_conventions import queue_deploy


@pytest.fixture(autouse=True)
def clean_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("MODELOPS_CONFIG", "MODELOPS_STATE_DIR", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--quiet"])
    out, err = capsys.readouterr()
    return code, out, err


def azure_template(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    target = tmp_path / "azure.yaml"
    assert run(capsys, "config", "init", "--azure", "--path", str(target))[0] == 0
    return target


class TestTemplate:
    def test_every_placeholder_left_fails_named_by_its_key(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        template = azure_template(tmp_path, capsys)
        # the three values the schema alone used to flag, filled: the rest must still fail
        text = template.read_text()
        for placeholder in ("<online-endpoint-name>", "<databricks-job-id>"):
            text = text.replace(placeholder, PLACEHOLDERS[placeholder])
        template.write_text(text.replace('subscriptions: ["<subscription-id>"]', 'subscriptions: ["0-0"]'))
        code, out, err = run(capsys, "config", "check", str(template))
        assert code == 2 and "config OK" not in out
        flagged = dict(re.findall(r"^  - (\S+): still holds the template's placeholder (<[a-z-]+>)", err, re.M))
        assert flagged == {
            "registries.aml.subscription_id": "<subscription-id>",
            "registries.aml.resource_group": "<aml-resource-group>",
            "registries.aml.workspace": "<aml-workspace-name>",
            "deployments.online.subscription_id": "<subscription-id>",
            "deployments.online.resource_group": "<aml-resource-group>",
            "deployments.online.workspace": "<aml-workspace-name>",
            "batch.nightly.host": "<databricks-workspace-url>",
            "batch.nightly.input": "<input-table>",
            "batch.nightly.output": "<output-table>",
            "rules[0].models[0]": "<model-name>",
        }
        assert "fix: replace <model-name> with the real value" in err

    def test_the_filled_template_checks_clean_and_its_rule_fires_on_model_registered(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        ready = tmp_path / "ready.yaml"
        ready.write_text(filled(AZURE_TEMPLATE.read_text()))
        code, out, _ = run(capsys, "config", "check", str(ready))
        assert code == 0 and f"config OK: {ready}" in out and "never fires" not in out
        # what Event Grid delivers when a model is registered in the workspace (Event Grid schema,
        # the example of learn.microsoft.com/azure/event-grid/event-schema-machine-learning)
        workspace = (
            "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-ml/providers/"
            "Microsoft.MachineLearningServices/workspaces/ws-ml"
        )
        delivery = [
            {
                "topic": workspace,
                "eventType": "Microsoft.MachineLearningServices.ModelRegistered",
                "subject": "models/churn:3",
                "eventTime": "2026-12-07T10:00:00Z",
                "id": "c5c6ee8b-0ad2-4cc1-bfa0-0b94f1fc9ac2",
                "data": {"ModelName": "churn", "ModelVersion": 3, "ModelTags": {}, "ModelProperties": {}},
                "dataVersion": "2",
                "metadataVersion": "1",
            }
        ]
        payload = tmp_path / "registered.json"
        payload.write_text(json.dumps(delivery))
        code, out, _ = run(capsys, "plan", str(payload), "--config", str(ready), "-o", "json")
        [result] = json.loads(out)
        assert code == 0 and result["event"]["kind"] == "model.registered"
        assert [(a["kind"], a["target"]) for a in result["actions"]] == [
            ("deploy", "online"),
            ("batch_score", "nightly"),
        ]

    def test_a_rule_no_source_can_trigger_is_warned_and_explain_invents_no_event(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        # the template as it was (model_version.created from an Azure ML source), with reconcile off:
        # Event Grid never sends that kind, so nothing can trigger the rule
        template = filled(AZURE_TEMPLATE.read_text())
        old = tmp_path / "old.yaml"
        old.write_text(
            template.replace("on: [model.registered, model_version.created]", "on: model_version.created").replace(
                "registry: aml  #", "registry: aml\n    reconcile: false  #"
            )
        )
        code, out, _ = run(capsys, "config", "check", str(old), "--explain")
        assert code == 0
        assert (
            "warning: rules[0] (serve-and-score-new-versions) listens to model_version.created, which no source "
            "it hears from sends (azureml (azureml)), so it never fires on it; those sources send: "
            "model.deployed, model.registered, run.completed, run.status_changed"
        ) in out
        example = out.split("example for serve-and-score-new-versions / model_version.created:")[1]
        assert example.lstrip().startswith("none: no source this rule hears from (azureml) sends")
        assert "deploy       online" not in example  # no invented event that matches
        # reconciled (the default), the source records the versions no event reported: the rule can fire
        reconciled = tmp_path / "reconciled.yaml"
        reconciled.write_text(old.read_text().replace("    reconcile: false  #", "    #"))
        code, out, _ = run(capsys, "config", "check", str(reconciled), "--explain")
        assert code == 0 and "never fires" not in out and "deploy       online" in out
        # a kind neither Event Grid nor reconcile ever sends is warned about either way
        staged = tmp_path / "staged.yaml"
        staged.write_text(reconciled.read_text().replace("model_version.created", "model_version.stage_changed"))
        code, out, _ = run(capsys, "config", "check", str(staged))
        assert code == 0 and "listens to model_version.stage_changed, which no source it hears from sends" in out


class TestConfigRefusals:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("", "(document): the file is empty"),
            ("# only a comment\n", "(document): the file is empty"),
            (
                'sources:\n  mlflow: {kind: mlflow, tracking_uri: "${NOT_SET_HERE}"}\n',
                "sources.mlflow.tracking_uri: ${NOT_SET_HERE} is referenced but not set",
            ),
            (
                "rules:\n  - {on: model_version.created, models: ['churn-[ab'], do: [{register: r}]}\n",
                "rules[0].models: glob 'churn-[ab' opens a set '[' that never closes",
            ),
            (
                "rules:\n  - {on: model_version.created, models: ['churn]'], do: [{register: r}]}\n",
                "rules[0].models: glob 'churn]' has a ']' without its '['",
            ),
            ("cleanup: {protected_patterns: ['prod-[']}\n", "cleanup.protected_patterns: glob 'prod-['"),
            # each fix says what to change, not that something must be fixed
            (
                "sources:\n\tmlflow: {}\n",
                "line 2, column 1: not valid YAML: found character '\\t' that cannot start any token (fix: indent "
                "with spaces: YAML does not allow tabs)",
            ),
            (
                "sources:\n  a: {}\nsources:\n  b: {}\n",
                "line 3, column 1: not valid YAML: duplicate key 'sources' (fix: keep one 'sources' key and move "
                "what is under this one into it",
            ),
            (
                "rules:\n  - on: model_version.created\n     do: []\n",
                "line 3, column 8: not valid YAML: mapping values are not allowed here (fix: line this key up with "
                "the keys above it",
            ),
            (
                'sources:\n  mlflow:\n    tracking_uri: "x\n',
                "line 4, column 1: not valid YAML: found unexpected end of stream (fix: close the quote or bracket",
            ),
            (
                "sources:\n  mlflow: {trackin_uri: x}\n",
                "sources.mlflow.trackin_uri: unknown key (fix: did you mean 'tracking_uri'? fix the spelling or remove",
            ),
            (
                "rules:\n  - {on: model_version.creatd, do: [{register: r}]}\n",
                "rules[0].on: unknown event kind 'model_version.creatd'; did you mean 'model_version.created'?",
            ),
            (
                "rules:\n  - {on: model_version.created, do: [{deploy: local}]}\n",
                "rules[0].do[0].deploy: no deployments entry named 'local' (fix: define it under deployments: "
                "(none is defined yet))",
            ),
            (
                "batch:\n  b: {kind: databricks, host: 'https://adb-1.2.azuredatabricks.net', job_id: many}\n",
                "batch.b.job_id: Input should be a valid integer, unable to parse string as an integer "
                "(fix: write a whole number, e.g. 42; it is the id of the job",
            ),
        ],
    )
    def test_refused_naming_the_key(
        self, text: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        path = tmp_path / "c.yaml"
        path.write_text(text)
        code, out, err = run(capsys, "config", "check", str(path))
        assert code == 2 and "config OK" not in out
        assert f"  - {expected}" in err

    def test_a_file_that_cannot_be_read_says_how_to_point_at_one(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.chdir(tmp_path)
        code, _, err = run(capsys, "config", "check", "nope.yaml")
        assert (
            code == 2
            and (
                f"(file): file not found (fix: check the path (relative paths start at {tmp_path}), or write a config "
                "there with `modelops config init --path nope.yaml`)"
            )
            in err
        )
        code, _, err = run(capsys, "config", "check", str(tmp_path))
        assert code == 2 and f"Is a directory: '{tmp_path}' (fix: name the YAML file inside {tmp_path}" in err

    def test_config_file_given_twice_differently_is_refused(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        code, _, err = run(capsys, "config", "check", str(DEFAULT_CONFIG), "--config", str(tmp_path / "other.yaml"))
        assert code == 2 and "two config files given" in err


class TestReadCommandsNeedALedger:
    @pytest.mark.parametrize(
        "argv",
        [
            ["actions"],
            ["actions", "act_x"],
            ["events"],
            ["events", "evt_x"],
            ["replay", "evt_x"],
            ["deployments"],
            ["rollback", "local"],
            ["status"],
            ["approvals"],
            ["approve", "act_x"],
            ["prune"],
            ["undeploy", "local"],
            ["cleanup"],  # the local provider cleans what this state dir deployed
        ],
    )
    def test_refused_with_the_path_and_how_to_point_elsewhere_and_nothing_created(
        self, argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        monkeypatch.chdir(tmp_path)
        code, out, err = run(capsys, *argv, "--state-dir", "typo-dir")
        assert code == 2 and out == ""
        assert f"no ledger at {tmp_path / 'typo-dir' / 'ledger.db'}" in err
        assert "--state-dir DIR or MODELOPS_STATE_DIR=DIR" in err
        assert list(tmp_path.iterdir()) == []  # no ledger, no state dir, nothing
        monkeypatch.setenv("MODELOPS_STATE_DIR", "elsewhere")
        assert run(capsys, *argv)[0] == 2 and list(tmp_path.iterdir()) == []


def fail_one(state: Path) -> str:
    """A failed action in the ledger: the worker's own path, claimed and failed for good."""
    ledger = SqliteLedger(state / "ledger.db")
    try:
        action = ledger.claim("w1", 30)
        assert action is not None
        ledger.fail(action.id, "w1", "permanent error: the registry refused it", retry_at=None)
        return action.event_id
    finally:
        ledger.close()


class TestOutputs:
    def test_every_report_honours_tsv_and_json(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        state = ["--state-dir", str(tmp_path)]
        queue_deploy(tmp_path)
        event_id = fail_one(tmp_path)
        capsys.readouterr()
        reports: list[list[str]] = [
            ["config", "check"],
            ["config", "check", "--explain"],
            ["cleanup", *state],
            ["plan", "--kind", "model_version.alias_set", "--model", "m", "--version", "1", "--alias", "champion"],
            ["events", event_id, *state],
            ["actions", *state],
            ["events", *state],
            ["deployments", *state],
            ["config", "init", "--path", str(tmp_path / "new.yaml"), "--force"],
            ["prune", *state],
        ]
        for argv in reports:
            code, out, _ = run(capsys, *argv, "-o", "tsv")
            assert code == 0, argv
            lines = out.splitlines()
            assert lines or argv[0] in ("cleanup", "deployments"), argv  # nothing deployed here: no rows
            assert all("\t" in line for line in lines), (argv, out)
            assert not any(re.match(r"^[A-Z ]+\t[A-Z ]+", line) for line in lines), (argv, "a header row")
            assert not any(line.startswith("---") for line in lines), argv
            code, out, _ = run(capsys, *argv, "-o", "json")
            assert code == 0 and json.loads(out) is not None, argv
        code, out, _ = run(capsys, "config", "check", "-o", "tsv")
        rules = [line.split("\t") for line in out.splitlines() if line.startswith("rule\t")]
        assert rules[1][:3] == ["rule", "serve-and-score-the-champion", "model_version.alias_set"]
        code, out, _ = run(capsys, "events", event_id, *state, "-o", "tsv")
        assert f"action\tid\t{event_id}".replace("action\tid", "event\tid") in out
        assert any(line.startswith("actions\tact_") and "\tfailed\t" in line for line in out.splitlines())
        code, out, _ = run(capsys, "prune", "--older-than", "PT0S", *state, "-o", "tsv")
        figures = dict(line.split("\t") for line in out.splitlines() if not line.startswith("event\t"))
        assert figures.pop("applied") == "false" and figures.pop("cutoff").startswith("20")
        counts = {key: int(value) for key, value in figures.items()}
        assert set(counts) == {"events", "actions", "deliveries", "kept_in_flight", "kept_for_rollback"}
        assert counts["events"] + counts["kept_in_flight"] + counts["kept_for_rollback"] == 1  # the one event
        code, out, err = run(capsys, "replay", event_id, *state, "-o", "tsv")  # the failed action runs again
        assert out.split("\t")[1:] == ["requeued\n"] and "planned 0 new, requeued 1" in err
        code, out, _ = run(capsys, "replay", event_id, *state, "-o", "json")
        assert json.loads(out)["requeued"] == [] and out.count("act_") == 1

    def test_a_cut_listing_says_how_many_more_and_how_to_see_them(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        for version in ("1", "2", "3", "4"):
            queue_deploy(tmp_path, version)
        capsys.readouterr()
        for command in ("actions", "events"):
            code, out, err = run(capsys, command, "--state-dir", str(tmp_path), "--limit", "3", "-o", "json")
            assert code == 0 and len(json.loads(out)) == 3
            assert f"showing the newest 3 {command}; 1 more not shown: raise --limit (e.g. --limit 4)" in err
            code, out, err = run(capsys, command, "--state-dir", str(tmp_path), "--limit", "4")
            assert code == 0 and "not shown" not in err
        assert "--limit" in main_help(capsys, "actions") and "a cut listing says how many more" in main_help(
            capsys, "events"
        )

    def test_events_lists_failed_events_as_the_audit_page_does(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        queue_deploy(tmp_path, "1")
        queue_deploy(tmp_path, "2")
        failed = fail_one(tmp_path)
        capsys.readouterr()
        state = ["--state-dir", str(tmp_path), "-o", "json"]
        code, out, _ = run(capsys, "events", "--status", "failed", *state)
        assert code == 0 and [e["id"] for e in json.loads(out)] == [failed]
        code, out, _ = run(capsys, "events", "--status", "in-progress", *state)
        assert code == 0 and len(json.loads(out)) == 1 and json.loads(out)[0]["id"] != failed
        code, out, _ = run(capsys, "events", "--version", "2", *state)
        assert [e["model_version"] for e in json.loads(out)] == ["2"]


class TestStatus:
    def test_a_source_registry_that_cannot_be_read_is_said_in_words_on_the_cli_api_and_page(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        from fastapi.testclient import TestClient

        from shared.bootstrap import Container
        from shared.local.processes import free_port
        from shared.settings import Settings

        down = f"http://127.0.0.1:{free_port()}"  # nothing listens there: the MLflow server is down
        monkeypatch.setenv("MLFLOW_TRACKING_URI", down)
        monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        queue_deploy(tmp_path)
        capsys.readouterr()
        code, out, err = run(capsys, "status", "--state-dir", str(tmp_path))
        assert code == 1 and out == "" and "Traceback" not in err
        assert err.startswith(f"error: the desired state cannot be read now: API request to {down}/api/2.0/mlflow/")
        assert "Exception" not in err.splitlines()[0]  # no class name, the words of what failed

        settings = Settings.from_env({"MODELOPS_STATE_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": down})
        client = TestClient(Container(settings).http_app())
        answer = client.get("/api/status")
        assert answer.status_code == 503
        assert answer.json()["error"].startswith("the desired state cannot be read now: API request to ")
        page = client.get("/api/ui/status")
        assert page.status_code == 200 and "the desired state cannot be read now: API request to " in page.text
        assert "MlflowException" not in page.text and "MlflowException" not in answer.text

        # `modelops poll` over the same source: exit 1, the words in its ERROR column, no class name
        code, out, err = run(capsys, "poll", "--state-dir", str(tmp_path), "-o", "json")
        assert code == 1, err
        reported = json.loads(out)["mlflow"]["error"]
        assert reported.startswith(f"the registry cannot be read now: API request to {down}/api/2.0/mlflow/")
        assert "Exception" not in reported


def main_help(capsys: pytest.CaptureFixture[str], command: str) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


class TestUsage:
    def test_a_bad_option_prints_the_commands_own_usage(self, capsys: pytest.CaptureFixture[str]) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(["actions", "--bogus"])
        err = capsys.readouterr().err
        assert exit_.value.code == 2
        assert (
            err.startswith("usage: modelops actions ")
            and "modelops actions: error: unrecognized arguments: --bogus" in err
        )
        with pytest.raises(SystemExit):
            main(["config", "check", "--bogus"])
        assert "modelops config check: error: unrecognized arguments: --bogus" in capsys.readouterr().err
        with pytest.raises(SystemExit):  # a mistyped option of the command gets "did you mean" too
            main(["events", "--stauts", "failed"])
        assert "unrecognized arguments: --stauts; did you mean '--status'?" in capsys.readouterr().err

    def test_actions_lists_every_kind_an_action_can_be(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        queue_deploy(tmp_path)
        capsys.readouterr()
        for kind in ("validate", "approve", "rollback", "deploy"):  # the gates' kinds too, as GET /api/actions
            code, out, _ = run(capsys, "actions", "--kind", kind, "--state-dir", str(tmp_path), "-o", "json")
            assert code == 0 and len(json.loads(out)) == (kind == "deploy"), kind

    @pytest.mark.parametrize(
        ("argv", "meant"), [(["actoins"], "actions"), (["deploymnets"], "deployments"), (["config", "chek"], "check")]
    )
    def test_a_mistyped_command_gets_did_you_mean(
        self, argv: list[str], meant: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2
        assert f"did you mean {meant!r}?" in capsys.readouterr().err

    def test_poll_with_nothing_to_poll_says_so_with_its_documented_code(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        config = tmp_path / "quiet.yaml"
        quiet = DEFAULT_CONFIG.read_text().replace("    kind: mlflow\n", "    kind: mlflow\n    reconcile: false\n", 1)
        config.write_text(quiet)
        code, out, err = run(capsys, "poll", "--config", str(config), "--state-dir", str(tmp_path / "state"))
        assert code == 2 and out == ""
        assert "nothing to reconcile: every source has `reconcile: false`; name one with --source (mlflow)" in err
        assert not (tmp_path / "state").exists()
        assert "2: nothing to reconcile" in main_help(capsys, "poll")

    def test_serve_documents_its_exit_codes(self, capsys: pytest.CaptureFixture[str]) -> None:
        assert "3 the address cannot be bound (the port is in use, or not permitted)" in main_help(capsys, "serve")
