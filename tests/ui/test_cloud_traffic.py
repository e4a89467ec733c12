"""A cloud target's row on the deployments page: the version, traffic split and endpoint its last
successful deploy recorded in a real ledger (the browser test has no cloud deploy to show)."""

from __future__ import annotations

from pathlib import Path

from shared.domain.actions import PlannedAction
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent
from shared.domain.outputs import DeployOutputs
from tests.spine.apptest import CONFIG, make_app

ONLINE = """
  online:
    kind: managed-online
    subscription_id: "00000000-0000-0000-0000-000000000000"
    resource_group: rg-ml
    workspace: ws-ml
    endpoint: churn-online
rules:"""


def test_the_last_successful_deploy_gives_version_traffic_and_endpoint(tmp_path: Path) -> None:
    client, reactor = make_app(tmp_path, config=CONFIG.replace("\nrules:", ONLINE, 1))
    ledger = reactor.ledger
    for version, traffic in (("3", {"churn-3": 100}), ("4", {"churn-3": 0, "churn-4": 100})):
        event = ModelEvent("mlflow", MODEL_VERSION_CREATED, "model_version.created", "churn", version)
        intake = ledger.record_event(
            event, [PlannedAction("deploy", "online", "churn", version)], reason=None, max_attempts=3
        )
        action = intake.action_ids[0]
        assert ledger.claim("w1", 30, action_id=action) is not None
        outputs = DeployOutputs(
            endpoint="churn-online",
            deployment=f"churn-{version}",
            scoring_uri="https://churn-online.westeurope.inference.ml.azure.com/score",
            traffic=traffic,
            kept=["churn-3"] if version == "4" else None,
        )
        ledger.complete(action, "w1", outputs)

    page = client.get("/api/ui/deployments")
    assert page.status_code == 200
    row = page.text.split('data-target="online"', 1)[1].split("</tr>", 1)[0]
    assert "churn</a> v4" in row and "churn-3: 0%" in row and "churn-4: 100%" in row
    assert 'href="https://churn-online.westeurope.inference.ml.azure.com/score"' in row
    assert "kept for rollback" in row and "not probed" in row
