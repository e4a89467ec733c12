"""A source MLflow server, and an Azure ML workspace contract (ARM + discovery + MLflow + run artifacts)
over HTTPS, backed by a second real MLflow server and a real Azurite."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.config.loader import load_config
from shared.domain.actions import REGISTER, Action, action_key
from shared.domain.outputs import RegisterOutputs
from shared.domain.params import ActionParams
from shared.executors.base import ActionContext
from shared.local.mlflow_server import MlflowServer
from tests.contract.aml_workspace_server import AmlWorkspaceContract
from tests.contract.azurite import Azurite
from tests.contract.credentials import StaticTokenCredential
from tests.contract.https import HttpsServer, TestCA

SUB = "00000000-1111-2222-3333-444444444444"
TENANT = "72f988bf-0000-0000-0000-000000000001"
RG = "rg-modelops"
WS = "ws-modelops"


def entra_like_token(tenant: str = TENANT) -> str:
    """An unsigned JWT shaped like an Entra access token: azureml-core decodes `exp` and `tid` from it."""

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {
        "aud": "https://management.core.windows.net/",
        "tid": tenant,
        "oid": str(uuid.uuid4()),
        "exp": int(time.time()) + 3600,
    }
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


TOKEN = entra_like_token()


@dataclass
class AmlWorkspace:
    contract: AmlWorkspaceContract
    url: str
    mlflow: MlflowServer
    azurite: Azurite


@pytest.fixture(scope="session")
def source_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    with MlflowServer(tmp_path_factory.mktemp("source")) as server:
        yield server


@contextmanager
def aml_workspace(root: Path, test_ca: TestCA) -> Iterator[AmlWorkspace]:
    """The workspace contract over HTTPS, a real MLflow server and Azurite behind it (the `aml` fixture,
    tests/conftest.py: one per session, shared by tests/registries and tests/sources)."""
    with MlflowServer(root / "mlflow") as backing, Azurite(root / "azurite") as storage:
        contract = AmlWorkspaceContract(
            token=TOKEN, tenant_id=TENANT, subscription_id=SUB, mlflow_url=backing.url, azurite=storage
        )
        contract.add_workspace(RG, WS, str(uuid.uuid4()))
        contract.container()
        with HttpsServer(contract.app, test_ca) as server:
            contract.base_url = server.url
            yield AmlWorkspace(contract, server.url, backing, storage)


@pytest.fixture
def credential() -> StaticTokenCredential:
    return StaticTokenCredential(TOKEN)


def aml_registry_yaml(url: str, workspace: str = WS) -> str:
    return (
        f'  aml-prod:\n    kind: azureml\n    subscription_id: "{SUB}"\n    resource_group: {RG}\n'
        f"    workspace: {workspace}\n    arm_endpoint: {url}\n"
    )


def register_context(
    tmp_path: Path,
    config_yaml: str,
    name: str,
    version: str,
    params: dict[str, str],
    target: str = "aml-prod",
    event_id: str = "evt_registries",
) -> ActionContext:
    """An ActionContext as the worker builds one for a register step."""
    config_file = tmp_path / "modelops.yaml"
    config_file.write_text(config_yaml)
    config = load_config(config_file, env={})
    action = Action(
        id=f"act-{uuid.uuid4().hex[:6]}",
        key=action_key(REGISTER, target, name, version),
        kind=REGISTER,
        target=target,
        model_name=name,
        model_version=version,
        event_id=event_id,
        status="running",
        params=ActionParams.from_dict(params),
        outputs=RegisterOutputs(),
    )
    return ActionContext(
        action=action,
        config=config,
        state_dir=tmp_path / "state",
        upstream=(),
        log=logging.getLogger("tests.registries"),
    )
