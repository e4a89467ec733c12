"""Schemathesis against the app's own OpenAPI document with every check (`--checks all`): no 5xx,
answers as documented, valid data accepted, auth enforced where declared."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import pytest
import schemathesis
import schemathesis.specs.openapi.checks  # noqa: F401 - registers the OpenAPI checks
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import CHECKS, CheckFunction
from schemathesis.core.result import Err

from shared.settings import OpsAuthSettings
from tests.spine.apptest import make_app

OPS_TOKEN = "fuzz-operator-token"
AUTH = {"Authorization": f"Bearer {OPS_TOKEN}"}
# every check schemathesis has (`--checks all`); the list is asserted so that none is dropped unnoticed
ALL_CHECKS = [cast(CheckFunction, c) for c in CHECKS.get_all() if not isinstance(c, type)]
# the public HTTP surface (DESIGN section 5); a route missing from the document fails its case
OPERATIONS = [
    ("POST", "/api/hooks/mlflow"),
    ("POST", "/api/hooks/databricks"),
    ("POST", "/api/hooks/eventgrid"),
    ("OPTIONS", "/api/hooks/eventgrid"),
    ("POST", "/api/hooks/{source}"),
    ("GET", "/api/health"),
    ("GET", "/api/events"),
    ("GET", "/api/events/{event_id}"),
    ("POST", "/api/events/{event_id}/replay"),
    ("GET", "/api/actions"),
    ("GET", "/api/actions/{action_id}"),
    ("POST", "/api/actions"),
    ("POST", "/api/cleanup"),
    ("GET", "/api/deployments"),
    ("POST", "/api/plan"),
    ("POST", "/api/deployments/{target}/rollback"),
    ("GET", "/api/status"),
    ("GET", "/api/approvals"),
    ("POST", "/api/actions/{action_id}/approve"),
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    # the real app over a real SQLite ledger; no worker runs, so requested actions stay queued
    client, _ = make_app(Path(tmp_path_factory.mktemp("fuzz")), ops_auth=OpsAuthSettings(token=OPS_TOKEN))
    return schemathesis.openapi.from_asgi("/api/openapi.json", client.app)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors_and_documented_answers(api_schema: schemathesis.BaseSchema, method: str, path: str) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=AUTH, checks=ALL_CHECKS)

    run()


def test_every_documented_operation_is_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    documented: set[tuple[str, str]] = set()
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):  # an operation the document describes but schemathesis cannot read
            raise result.err()
        documented.add((result.ok().method.upper(), result.ok().path))
    assert documented <= set(OPERATIONS), f"add to OPERATIONS: {sorted(documented - set(OPERATIONS))}"


def test_all_checks_run() -> None:
    names = {check.__name__ for check in ALL_CHECKS}
    assert {"positive_data_acceptance", "ignored_auth", "status_code_conformance", "unsupported_method"} <= names
    assert len(names) >= 14, names


def test_the_document_matches_the_answers(api_schema: schemathesis.BaseSchema) -> None:
    raw = api_schema.raw_schema
    for path, operations in raw["paths"].items():
        for method, operation in operations.items():
            codes = set(operation["responses"])
            assert "422" not in codes, (method, path)  # FastAPI's default; this app answers 400
            for code in codes - {"200", "202"}:
                content = operation["responses"][code]["content"]["application/json"]["schema"]
                assert content == {"$ref": "#/components/schemas/Error"}, (method, path, code)
            if not path.startswith("/api/hooks/") and path != "/api/health":
                assert {"401", "403"} <= codes and operation["security"], (method, path)
    for path in ("/api/hooks/mlflow", "/api/hooks/databricks", "/api/hooks/eventgrid"):
        assert raw["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
