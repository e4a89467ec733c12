"""Signature verification under arbitrary input: valid verifies; any one-byte change is Unauthorized."""

from __future__ import annotations

import base64
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import Unauthorized
from shared.ingest.signatures import sign_databricks, sign_mlflow, verify_databricks, verify_mlflow

FAST = settings(max_examples=150, deadline=None)
NOW = 1_760_000_000
secrets = st.text(min_size=1, max_size=40)
header_text = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)


def _flip(data: bytes, index: int, delta: int) -> bytes:
    """Change exactly one byte (delta in 1..255 so it always differs)."""
    i = index % len(data)
    return data[:i] + bytes([(data[i] + delta) % 256]) + data[i + 1 :]


def _mlflow_headers(secret: str, delivery: str, ts: str, body: bytes) -> dict[str, str]:
    return {
        "X-MLflow-Signature": sign_mlflow(secret, delivery, ts, body),
        "X-MLflow-Timestamp": ts,
        "X-MLflow-Delivery-Id": delivery,
    }


def _unauthorized(call: object, *args: object, **kwargs: object) -> None:
    try:
        call(*args, **kwargs)  # type: ignore[operator]
    except Unauthorized:
        return
    raise AssertionError("accepted a tampered delivery")


class TestMlflow:
    @FAST
    @given(secret=secrets, delivery=header_text, body=st.binary(max_size=200), skew=st.integers(-300, 300))
    def test_valid_signature_verifies(self, secret: str, delivery: str, body: bytes, skew: int) -> None:
        ts = str(NOW + skew)
        assert verify_mlflow(secret, _mlflow_headers(secret, delivery, ts, body), body, now=NOW) == delivery

    @FAST
    @given(
        secret=secrets,
        delivery=header_text,
        body=st.binary(min_size=1, max_size=200),
        index=st.integers(min_value=0),
        delta=st.integers(1, 255),
    )
    def test_one_byte_of_body_changed_is_refused(
        self, secret: str, delivery: str, body: bytes, index: int, delta: int
    ) -> None:
        headers = _mlflow_headers(secret, delivery, str(NOW), body)
        _unauthorized(verify_mlflow, secret, headers, _flip(body, index, delta), now=NOW)

    @FAST
    @given(
        secret=secrets,
        delivery=header_text,
        body=st.binary(max_size=100),
        header=st.sampled_from(["X-MLflow-Signature", "X-MLflow-Timestamp", "X-MLflow-Delivery-Id"]),
        index=st.integers(min_value=0),
        delta=st.integers(1, 255),
    )
    def test_one_byte_of_a_header_changed_is_refused(
        self, secret: str, delivery: str, body: bytes, header: str, index: int, delta: int
    ) -> None:
        headers = _mlflow_headers(secret, delivery, str(NOW), body)
        # headers travel as latin-1 on the wire: any byte may arrive
        changed = _flip(headers[header].encode("latin-1"), index, delta).decode("latin-1")
        _unauthorized(verify_mlflow, secret, {**headers, header: changed}, body, now=NOW)

    @FAST
    @given(
        headers=st.dictionaries(
            st.sampled_from(["X-MLflow-Signature", "X-MLflow-Timestamp", "X-MLflow-Delivery-Id", "x-mlflow-signature"]),
            st.text(max_size=60),
        ),
        body=st.binary(max_size=50),
    )
    def test_garbage_headers_are_unauthorized_never_a_crash(self, headers: dict[str, str], body: bytes) -> None:
        _unauthorized(verify_mlflow, "secret", headers, body, now=NOW)

    def test_replay_window_is_enforced_both_ways(self) -> None:
        body = b'{"entity": "model_version"}'
        for ts in (NOW - 301, NOW + 301):
            _unauthorized(verify_mlflow, "s", _mlflow_headers("s", "d1", str(ts), body), body, now=NOW)
        assert verify_mlflow("s", _mlflow_headers("s", "d1", str(NOW - 300), body), body, now=NOW) == "d1"

    def test_wrong_secret_is_refused(self) -> None:
        body = b"{}"
        _unauthorized(verify_mlflow, "right", _mlflow_headers("wrong", "d", str(int(time.time())), body), body)


class TestDatabricks:
    @FAST
    @given(secret=secrets, body=st.binary(max_size=200))
    def test_valid_signature_verifies(self, secret: str, body: bytes) -> None:
        verify_databricks(secret, {"X-Databricks-Signature": sign_databricks(secret, body)}, body)

    @FAST
    @given(
        secret=secrets,
        body=st.binary(min_size=1, max_size=200),
        index=st.integers(min_value=0),
        delta=st.integers(1, 255),
        in_header=st.booleans(),
    )
    def test_one_byte_changed_is_refused(
        self, secret: str, body: bytes, index: int, delta: int, in_header: bool
    ) -> None:
        signature = sign_databricks(secret, body)
        if in_header:
            changed = _flip(signature.encode(), index, delta).decode("latin-1")
            if changed.strip().lower() == signature:  # an upper-cased hex digit is the same signature
                return
            _unauthorized(verify_databricks, secret, {"X-Databricks-Signature": changed}, body)
        else:
            _unauthorized(verify_databricks, secret, {"X-Databricks-Signature": signature}, _flip(body, index, delta))

    @FAST
    @given(
        authorization=st.text(max_size=60)
        | st.binary(max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode())
    )
    def test_arbitrary_authorization_is_unauthorized_never_a_crash(self, authorization: str) -> None:
        _unauthorized(verify_databricks, "secret", {"Authorization": authorization}, b"{}")

    def test_basic_auth_with_the_secret_verifies(self) -> None:
        token = base64.b64encode(b"user:the-secret").decode()
        verify_databricks("the-secret", {"Authorization": f"Basic {token}"}, b"{}")
