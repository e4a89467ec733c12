"""Schemathesis against the app's own OpenAPI document: no 5xx, answers as documented."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from tests.spine.apptest import make_app

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance, response_headers_conformance]
# the public HTTP surface (DESIGN section 5); a route missing from the document fails its case
OPERATIONS = [
    ("POST", "/api/hooks/mlflow"),
    ("POST", "/api/hooks/databricks"),
    ("POST", "/api/hooks/eventgrid"),
    ("OPTIONS", "/api/hooks/eventgrid"),
    ("GET", "/api/health"),
    ("GET", "/api/events"),
    ("GET", "/api/events/{event_id}"),
    ("POST", "/api/events/{event_id}/replay"),
    ("GET", "/api/actions"),
    ("GET", "/api/actions/{action_id}"),
    ("POST", "/api/actions"),
    ("POST", "/api/cleanup"),
    ("GET", "/api/deployments"),
]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> schemathesis.BaseSchema:
    # the real app over a real SQLite ledger; no worker runs, so requested actions stay queued
    client, _ = make_app(Path(tmp_path_factory.mktemp("fuzz")))
    return schemathesis.openapi.from_asgi("/api/openapi.json", client.app)


@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_errors_and_documented_answers(api_schema: schemathesis.BaseSchema, method: str, path: str) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy())
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def run(case: schemathesis.Case) -> None:
        case.call_and_validate(checks=CHECKS)

    run()


def test_every_documented_operation_is_fuzzed(api_schema: schemathesis.BaseSchema) -> None:
    documented: set[tuple[str, str]] = set()
    for result in api_schema.get_all_operations():
        if isinstance(result, Err):  # an operation the document describes but schemathesis cannot read
            raise result.err()
        documented.add((result.ok().method.upper(), result.ok().path))
    assert documented <= set(OPERATIONS), f"add to OPERATIONS: {sorted(documented - set(OPERATIONS))}"
