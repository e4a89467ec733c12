"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from shared.local.mlflow_server import MlflowServer
from tests.contract.azurite import Azurite
from tests.contract.https import TestCA

if TYPE_CHECKING:
    from tests.registries.conftest import AmlWorkspace


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """One real `mlflow server` (SQL backend, webhooks to loopback allowed) for the whole session."""
    with MlflowServer(tmp_path_factory.mktemp("mlflow-source")) as server:
        yield server


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One real Azurite for the session; tests take fresh table and queue names in it."""
    with Azurite(tmp_path_factory.mktemp("azurite")) as server:
        yield server


@pytest.fixture(scope="session")
def test_ca() -> TestCA:
    return TestCA()


@pytest.fixture(scope="session")
def aml(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA) -> Iterator[AmlWorkspace]:
    """One Azure ML workspace contract for the session (register target and source in tests/registries,
    the Unity Catalog copy's target and storage in tests/sources)."""
    from tests.registries.conftest import aml_workspace

    with aml_workspace(tmp_path_factory.mktemp("aml"), test_ca) as workspace:
        yield workspace


@pytest.fixture
def trust_test_ca(test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestCA]:
    """Make requests/azure-core/databricks-sdk trust the contract servers' certificates."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(test_ca.bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(test_ca.bundle))
    yield test_ca


@pytest.fixture(scope="session", autouse=True)
def _stop_local_routers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """A local target's router outlives the reactor by design: stop those this session's tests left."""
    yield
    import psutil

    from shared.adapters.local_deployments import kill_process_group

    base = str(tmp_path_factory.getbasetemp())
    for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
        command = proc.info["cmdline"] or []
        if "shared.local.router" in command and any(part.startswith(base) for part in command):
            kill_process_group(proc.info["pid"], proc.info["create_time"])
