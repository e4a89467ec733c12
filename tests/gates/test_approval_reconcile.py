"""A decision by tag nobody reported (no `model_version_tag.set` webhook: it was lost, or the source
sends none) is found by the next reconcile pass, not only at the approval's own `recheck`: real
`mlflow server`, the approval waiting in the ledger."""

from __future__ import annotations

import getpass
import socket
from pathlib import Path

import mlflow
import pytest

from shared.cli.main import main
from shared.domain.actions import Action
from shared.domain.outputs import ApproveOutputs
from shared.local.mlflow_server import MlflowServer
from shared.service.reactor import Reactor
from shared.service.reconcile import reconcile_sources
from tests.spine.apptest import make_app
from tests.support import unique

CONFIG = """
sources:
  mlflow: {tracking_uri: "%(server)s", poll_lookback_seconds: 0}
approvals:
  owners: {expires: PT1H, tag: approval.owners, recheck: PT1H}
rules:
  - name: tag-approval
    on: model_version.alias_set
    alias: candidate
    models: ["%(model)s"]
    do: [{approve: owners}]
"""


def _waiting(tmp_path: Path, server: MlflowServer) -> tuple[Reactor, mlflow.MlflowClient, str, str, Action]:
    """An approval waiting on a new version's `candidate` alias, planned by reconcile (no webhook)."""
    model = unique("tagged")
    config = CONFIG % {"server": server.url, "model": model}
    _, reactor = make_app(tmp_path, config=config.replace("%", "%%"), mlflow_webhook_secret=None)
    registry = mlflow.MlflowClient(tracking_uri=server.url)
    registry.create_registered_model(model)
    version = registry.create_model_version(model, source="s3://bucket/model").version
    registry.set_registered_model_alias(model, "candidate", version)
    assert reconcile_sources(reactor)["mlflow"]["aliases"] == 1  # the alias move: the approval is planned
    [approval] = reactor.ledger.list_actions(model=model, kind="approve")
    reactor.worker().run_once(approval.id)
    waiting = reactor.ledger.get_action(approval.id)
    assert waiting is not None and waiting.status == "waiting", waiting
    return reactor, registry, model, str(version), approval


def test_reconcile_wakes_an_approval_whose_tag_was_set_unreported(tmp_path: Path, mlflow_server: MlflowServer) -> None:
    reactor, registry, model, version, approval = _waiting(tmp_path, mlflow_server)

    quiet = reconcile_sources(reactor)["mlflow"]
    assert quiet["approvals"] == 0, quiet  # no decision in the tag yet: nothing woken
    registry.set_model_version_tag(model, version, "approval.owners", "approved")  # no webhook tells anyone
    found = reconcile_sources(reactor)["mlflow"]
    assert found["approvals"] == 1, found
    [done] = reactor.worker().run_until_done([approval.id], timeout=60)  # woken: due now, not in an hour
    assert done.status == "succeeded"
    assert isinstance(done.outputs, ApproveOutputs)
    assert (done.outputs.decision, done.outputs.via) == ("approve", "tag")
    lines = [entry["message"] for entry in reactor.ledger.action_log(approval.id)]
    assert any("tag approval.owners set on source mlflow: re-check now" in line for line in lines), lines


def test_approve_answers_tsv_and_json_for_a_program(
    tmp_path: Path, mlflow_server: MlflowServer, capsys: pytest.CaptureFixture[str]
) -> None:
    reactor, _, _, _, approval = _waiting(tmp_path, mlflow_server)
    where = ["--config", reactor.settings.config_path or "", "--state-dir", str(reactor.settings.state_dir)]
    capsys.readouterr()
    assert main(["approve", approval.id, "--comment", "ok", "-o", "tsv", *where]) == 0
    out = capsys.readouterr().out
    [row] = out.splitlines()
    assert row.split("\t")[:3] == [approval.id, "approved", f"{getpass.getuser()}@{socket.gethostname()} (CLI)"], out
    assert main(["approve", approval.id, "-o", "json", *where]) == 1  # the first decision stands
