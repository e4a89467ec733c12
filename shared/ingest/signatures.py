"""Webhook signature checks. Comparison is constant-time; nothing is parsed before it passes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping

from shared.errors import Unauthorized


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    return value


def verify_mlflow(
    secret: str, headers: Mapping[str, str], body: bytes, *, max_skew_seconds: int = 300, now: float | None = None
) -> str:
    """MLflow 3.3+ webhooks: `X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret,
    "{delivery_id}.{timestamp}.{body}")>`. Returns the delivery id."""
    signature = _header(headers, "X-MLflow-Signature")
    timestamp = _header(headers, "X-MLflow-Timestamp")
    delivery_id = _header(headers, "X-MLflow-Delivery-Id")
    missing = [
        n
        for n, v in (
            ("X-MLflow-Signature", signature),
            ("X-MLflow-Timestamp", timestamp),
            ("X-MLflow-Delivery-Id", delivery_id),
        )
        if not v
    ]
    if missing:
        raise Unauthorized(f"missing header(s) {', '.join(missing)}; this endpoint requires signed MLflow webhooks")
    assert signature and timestamp and delivery_id
    try:
        sent_at = int(timestamp)
    except ValueError:
        raise Unauthorized("X-MLflow-Timestamp must be unix seconds") from None
    skew = abs((time.time() if now is None else now) - sent_at)
    if skew > max_skew_seconds:
        raise Unauthorized(
            f"X-MLflow-Timestamp is {int(skew)}s away from now (limit {max_skew_seconds}s): replay refused"
        )
    signed = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    for candidate in signature.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value.encode(), expected.encode()):
            return delivery_id
    raise Unauthorized("X-MLflow-Signature does not match the body (wrong secret or altered body)")


def sign_mlflow(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    signed = delivery_id.encode() + b"." + timestamp.encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()


def verify_databricks(secret: str, headers: Mapping[str, str], body: bytes) -> None:
    """Databricks registry webhooks: `X-Databricks-Signature` = hex HMAC-SHA256(secret, body).

    Job notification destinations cannot sign; they send HTTP Basic auth instead, accepted when
    its password is the same secret.
    """
    signature = _header(headers, "X-Databricks-Signature")
    authorization = _header(headers, "Authorization") or ""
    if not signature and authorization.lower().startswith("basic "):
        try:
            _, _, password = base64.b64decode(authorization[6:].strip(), validate=True).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            raise Unauthorized("Authorization: Basic credentials are not valid base64") from None
        if hmac.compare_digest(password.encode(), secret.encode()):
            return
        raise Unauthorized("Basic auth password is not the Databricks webhook secret")
    if not signature:
        raise Unauthorized(
            "missing header X-Databricks-Signature (registry webhooks) or Basic auth (job notifications)"
        )
    expected = sign_databricks(secret, body)
    if not hmac.compare_digest(signature.strip().lower().encode(), expected.encode()):
        raise Unauthorized("X-Databricks-Signature does not match the body (wrong secret or altered body)")


def sign_databricks(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
