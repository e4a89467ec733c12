"""Azure's 409 Conflict on an online endpoint, through the worker and the ledger: "an operation is
already running on it" is retried after the delay Azure asks for; "the name is taken" stays permanent."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.config.deployments import ManagedOnlineDeployment
from shared.domain.actions import DEPLOY, REGISTER, PlannedAction
from shared.domain.clock import now_utc
from shared.domain.events import MODEL_VERSION_CREATED, ModelEvent
from shared.domain.outputs import RegisterOutputs
from shared.domain.params import ActionParams
from shared.errors import PermanentError
from shared.executors.aml_targets import deployment_name
from shared.executors.deploy_online import OnlineDeployExecutor
from shared.executors.registry import ExecutorRegistry
from shared.ledger.base import Ledger
from shared.ledger.sqlite import SqliteLedger
from shared.service.dispatch import LocalDispatcher
from shared.service.worker import Worker
from tests.contract.aml_online_server import AmlOnlineContract
from tests.contract.credentials import StaticTokenCredential
from tests.deploy.conftest import Registry
from tests.deploy.test_deploy_online import ENDPOINT, online_config, run, upstream
from tests.ledger.support import ManualClock, must


def deploy_after_register(ledger: Ledger, registry: Registry, name: str, version: str) -> str:
    """Record register -> deploy for the version, and finish the register step as its copy did."""
    event = ModelEvent(
        source="mlflow",
        kind=MODEL_VERSION_CREATED,
        source_type=MODEL_VERSION_CREATED,
        model_name=name,
        model_version=version,
    )
    params = ActionParams(source="mlflow", source_tracking_uri=registry.tracking_uri)
    steps = [
        PlannedAction(REGISTER, "aml-prod", name, version, params=params, rule="ship"),
        PlannedAction(DEPLOY, "online", name, version, params=params, rule="ship", after_index=0),
    ]
    register_id, deploy_id = ledger.record_event(event, steps, reason=None, max_attempts=5).action_ids
    assert must(ledger.claim("copier", 60, action_id=register_id)).id == register_id
    ledger.complete(register_id, "copier", RegisterOutputs.from_dict(upstream(registry, name, version)))
    return deploy_id


def test_a_409_ongoing_operation_on_the_traffic_update_is_retried_and_the_deploy_succeeds(
    aml: AmlOnlineContract, registry: Registry, tmp_path: Path
) -> None:
    config = online_config(tmp_path, aml)
    v1, v2 = registry.log_sklearn("churn-busy"), registry.log_sklearn("churn-busy")
    d1, d2 = (deployment_name("online", "churn-busy", v) for v in (v1, v2))
    run(config, tmp_path, registry, "churn-busy", v1)
    clock = ManualClock(now_utc())
    ledger = SqliteLedger(str(tmp_path / "ledger.db"), clock=clock)
    executors = ExecutorRegistry(
        {(DEPLOY, ManagedOnlineDeployment): lambda: OnlineDeployExecutor(credential=StaticTokenCredential())}
    )
    worker = Worker(ledger, config, tmp_path, LocalDispatcher(), executors, worker_id="w1", clock=clock)
    action_id = deploy_after_register(ledger, registry, "churn-busy", v2)
    aml.endpoint_conflicts.append("ongoing")  # the next endpoint PUT is the traffic update

    busy = must(worker.run_once(action_id))

    assert busy.status == "queued" and busy.attempts == 1 and busy.error is not None
    assert "ongoing operation on endpoint" in busy.error and aml.traffic(ENDPOINT) == {d1: 100}
    assert busy.not_before is not None and (busy.not_before - clock()).total_seconds() >= 20  # its Retry-After
    clock.advance(20)
    done = must(worker.run_once(action_id))
    assert done.status == "succeeded" and done.attempts == 2
    assert aml.traffic(ENDPOINT) == {d2: 100} and done.outputs.to_dict()["traffic"] == {d2: 100}
    assert sum(1 for method, path in aml.log if method == "PUT" and path.endswith(f"/deployments/{d2}")) == 1
    ledger.close()


def test_a_409_for_a_name_in_use_stays_permanent_with_azures_message(
    aml: AmlOnlineContract, registry: Registry, tmp_path: Path
) -> None:
    config = online_config(tmp_path, aml)
    aml.endpoint_conflicts.append("taken")
    with pytest.raises(PermanentError, match="already in use"):
        run(config, tmp_path, registry, "churn-taken", registry.log_sklearn("churn-taken"))
    assert ENDPOINT not in aml.endpoints
