"""Arbitrary JSON into every parser: a model event or BadRequest, never another exception."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.domain.events import ModelEvent, event_from_payload, event_to_payload
from shared.errors import BadRequest
from shared.ingest.databricks_hooks import parse_databricks
from shared.ingest.eventgrid import parse_delivery, parse_one, to_model_event
from shared.ingest.jsonbody import parse_json
from shared.ingest.mlflow_hooks import parse_mlflow

FAST = settings(max_examples=200, deadline=None)

scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
# values a parser reads, mixed with anything: keeps examples near the paths that matter
versions = st.integers() | st.text(max_size=6) | st.none() | st.booleans() | json_values


def _accepts(parse: Any, *args: Any) -> ModelEvent | None:
    try:
        event = parse(*args)
    except BadRequest:
        return None
    assert isinstance(event, ModelEvent)
    # whatever is accepted must be recordable: a dedupe key, a summary, a replayable payload
    assert event.dedupe_key
    json.dumps(event.summary())
    assert event_from_payload(json.loads(json.dumps(event_to_payload(event), default=str))).dedupe_key == (
        event.dedupe_key
    )
    return event


mlflow_envelopes = st.fixed_dictionaries(
    {
        "entity": st.sampled_from(["model_version", "registered_model", "model_version_tag", "model_version_alias"])
        | json_values,
        "action": st.sampled_from(["created", "set", "deleted"]) | json_values,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=10) | json_values,
                "version": versions,
                "alias": json_values,
                "key": json_values,
                "value": json_values,
                "tags": json_values,
                "run_id": json_values,
            },
        )
        | json_values,
    },
    optional={"timestamp": st.sampled_from(["2025-01-01T00:00:00Z", "2025-13-01", ""]) | json_values},
)


mlflow_shaped = st.fixed_dictionaries(
    {
        "entity": st.sampled_from(["model_version", "registered_model", "model_version_tag", "model_version_alias"]),
        "action": st.sampled_from(["created", "set", "deleted"]),
        "data": st.fixed_dictionaries(
            {"name": st.text(min_size=1, max_size=8), "version": st.integers(min_value=1) | st.text(max_size=4)},
            optional={"alias": json_values, "key": json_values, "value": json_values, "tags": json_values},
        ),
    },
    optional={"timestamp": json_values},
)


@FAST
@given(payload=mlflow_shaped | mlflow_envelopes | json_values, delivery=st.none() | st.text(max_size=10))
def test_mlflow_parser(payload: Any, delivery: str | None) -> None:
    _accepts(partial(parse_mlflow, source="team-a"), payload, delivery)


databricks_events = [
    "MODEL_VERSION_CREATED",
    "MODEL_VERSION_TRANSITIONED_STAGE",
    "MODEL_VERSION_TRANSITIONED_TO_PRODUCTION",
    "TRANSITION_REQUEST_CREATED",
    "TRANSITION_REQUEST_TO_STAGING_CREATED",
    "MODEL_VERSION_TAG_SET",
    "REGISTERED_MODEL_CREATED",
    "COMMENT_CREATED",
]
databricks_payloads = st.fixed_dictionaries(
    {},
    optional={
        "event": st.sampled_from(databricks_events) | json_values,
        "event_type": st.sampled_from(["jobs.on_success", "jobs.on_failure", "jobs.on_start"]) | json_values,
        "webhook_id": json_values,
        "event_timestamp": st.integers() | st.floats() | json_values,
        "model_name": st.text(max_size=8) | json_values,
        "version": versions,
        "to_stage": json_values,
        "from_stage": json_values,
        "tags": st.lists(st.fixed_dictionaries({"key": json_values}, optional={"value": json_values})) | json_values,
        "run": st.fixed_dictionaries({}, optional={"run_id": json_values}) | json_values,
        "job": json_values,
    },
)


# well formed where the parser must get far (a known event about a named version), anything elsewhere
databricks_shaped = st.fixed_dictionaries(
    {
        "event": st.sampled_from(databricks_events),
        "model_name": st.text(min_size=1, max_size=8),
        "version": st.integers(min_value=1) | st.text(min_size=1, max_size=4),
        "tags": json_values,
    },
    optional={"to_stage": json_values, "from_stage": json_values, "event_timestamp": json_values},
)


@FAST
@given(payload=databricks_shaped | databricks_payloads | json_values)
def test_databricks_parser(payload: Any) -> None:
    _accepts(partial(parse_databricks, source="dbx-prod"), payload)


aml_types = [
    "Microsoft.MachineLearningServices.ModelRegistered",
    "Microsoft.MachineLearningServices.ModelDeployed",
    "Microsoft.MachineLearningServices.RunCompleted",
    "Microsoft.MachineLearningServices.RunStatusChanged",
    "Microsoft.EventGrid.SubscriptionValidationEvent",
]
aml_data = st.fixed_dictionaries(
    {},
    optional={
        key: versions
        for key in (
            "modelName",
            "ModelName",
            "modelVersion",
            "ModelVersion",
            "modelIds",
            "runId",
            "RunId",
            "runStatus",
            "experimentName",
            "runTags",
            "modelTags",
            "serviceTags",
            "validationCode",
        )
    },
)
grid_events = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=6) | json_values, "eventType": st.sampled_from(aml_types) | json_values},
    optional={
        "subject": st.sampled_from(["models/m:1", "models/m", "models/:", ""]) | json_values,
        "eventTime": st.sampled_from(["2025-01-01T00:00:00.1234567Z", "yesterday"]) | json_values,
        "data": aml_data | json_values,
        "topic": json_values,
    },
)
cloud_events = st.fixed_dictionaries(
    {
        "specversion": st.sampled_from(["1.0", "0.3"]) | json_values,
        "id": st.text(min_size=1, max_size=6) | json_values,
        "type": st.sampled_from(aml_types) | json_values,
    },
    optional={"subject": json_values, "time": json_values, "data": aml_data | json_values, "source": json_values},
)
deliveries = st.lists(grid_events | cloud_events, max_size=3) | cloud_events | grid_events | json_values


@FAST
@given(payload=deliveries)
def test_eventgrid_delivery_and_normalization(payload: Any) -> None:
    try:
        delivery = parse_delivery(payload)
    except BadRequest:
        return
    for grid in delivery.events:
        _accepts(partial(to_model_event, source="aml-dev"), grid)


@FAST
@given(item=grid_events | cloud_events | json_values)
def test_eventgrid_single_event(item: Any) -> None:
    try:
        grid = parse_one(item)
    except BadRequest:
        return
    _accepts(partial(to_model_event, source="aml-dev"), grid)


@FAST
@given(value=json_values)
def test_parse_json_round_trips_what_json_would_accept(value: Any) -> None:
    body = json.dumps(value).encode()
    try:
        assert parse_json(body) == value
    except BadRequest as exc:
        # only strictness beyond the JSON spec may refuse a document json.loads takes
        assert "duplicate JSON key" in str(exc) or "nested deeper" in str(exc), exc


@pytest.mark.parametrize("body", [b'{"v": NaN}', b"[1, Infinity]", b'{"a": {"b": -Infinity}}', b"1e400"])
def test_parse_json_refuses_what_is_not_json_numbers(body: bytes) -> None:
    """json.dumps writes NaN/Infinity (and json.loads reads 1e400 as inf), but they are not JSON."""
    with pytest.raises(BadRequest, match="not JSON|out of range"):
        parse_json(body)


@FAST
@given(body=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_parse_json_arbitrary_bytes(body: bytes) -> None:
    try:
        parse_json(body)
    except BadRequest:
        pass
