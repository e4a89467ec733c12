"""Errors a user or an operator can meet, each saying what was wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


class ModelOpsError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(ModelOpsError):
    """The configuration file (or a setting) is invalid; names file, key and fix."""

    def __init__(self, source: str, problems: list[tuple[str, str, str]]) -> None:
        self.source = source
        self.problems = problems  # (key, what is wrong, how to fix it)
        lines = [f"invalid configuration in {source}:"]
        for key, problem, fix in problems:
            lines.append(f"  - {key}: {problem}" + (f" (fix: {fix})" if fix else ""))
        super().__init__("\n".join(lines))

    @classmethod
    def single(cls, source: str, key: str, problem: str, fix: str = "") -> ConfigError:
        return cls(source, [(key, problem, fix)])


class RequestError(ModelOpsError):
    """A request the HTTP API refuses; ``field`` names what was wrong (body, a header, a parameter)."""

    def __init__(self, message: str, *, field: str = "body") -> None:
        super().__init__(message)
        self.field = field


class Conflict(RequestError):
    """The request is well formed but the state refuses it (nothing kept to roll back to): 409."""


class BadRequest(RequestError):
    """A request body or header is malformed: answered 400 with this message."""


class Unauthorized(RequestError):
    """A request is not signed, signed wrongly, or lacks a valid credential: answered 401."""


class NotFound(RequestError):
    """A request names something that does not exist (a webhook source, an event): answered 404."""


class Forbidden(RequestError):
    """A valid credential without the permission the route needs: answered 403."""


class ServiceUnavailable(RequestError):
    """Something the request depends on cannot be reached now (e.g. the tenant's signing keys): 503."""


class ActionError(ModelOpsError):
    """An action failed. ``retryable`` says whether another attempt may succeed."""

    retryable = True

    def __init__(self, message: str, *, details: dict | None = None) -> None:
        super().__init__(message)
        self.details = details or {}


class RetryableError(ActionError):
    """A transient failure (timeout, 5xx, 429, connection reset): the worker retries with backoff.

    ``retry_after``: the delay the server asked for (seconds, or a `Retry-After` header value:
    seconds or an HTTP date); the next attempt is scheduled no earlier than that.
    """

    def __init__(self, message: str, *, details: dict | None = None, retry_after: float | str | None = None) -> None:
        super().__init__(message, details=details)
        self.retry_after = parse_retry_after(retry_after) if isinstance(retry_after, str) else retry_after


class PermanentError(ActionError):
    """A failure another attempt cannot fix (bad model, missing version, refused by policy)."""

    retryable = False


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """A `Retry-After` value in seconds: delta-seconds or an HTTP date (RFC 9110); None if absent or bad."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retry_after_from_headers(headers: Mapping[str, str] | None) -> float | None:
    """The delay a response asks for: `retry-after-ms` / `x-ms-retry-after-ms` (Azure), else `Retry-After`."""
    if not headers:
        return None
    lower = {str(k).lower(): str(v) for k, v in headers.items()}
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        if name in lower:
            try:
                return max(0.0, float(lower[name]) / 1000)
            except ValueError:
                pass
    return parse_retry_after(lower.get("retry-after"))


class Superseded(ModelOpsError):
    """A deploy whose version is no longer the desired one (the alias moved on, or a rollback pins the
    target): it ends `superseded` and switches nothing. Not a failure; the newer change wins."""
