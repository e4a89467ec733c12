"""MLflow's HTTP client limits and its Retry-After, set where MLflow reads them.

MLflow's REST client takes no per-client retry or timeout option: `mlflow.utils.rest_utils.http_request`
reads MLFLOW_HTTP_REQUEST_MAX_RETRIES / _TIMEOUT / _BACKOFF_FACTOR / _BACKOFF_JITTER from the process
environment on every request (`mlflow/environment_variables.py`), and every `MlflowClient` (and
artifact download through the tracking server) goes through it. So `set_limits` is the one place
the reactor writes the environment: it sets those variables from ``Settings.mlflow_http`` where they
are not set already (an app setting of the same name is what MLflow would read anyway). The
bootstrap calls it once per container; it imports nothing (cold start).

Retry-After: MLflow's session (`mlflow.utils.request_utils._cached_get_request_session`) retries
429/503 with urllib3's ``Retry``, which sleeps whatever Retry-After asks (urllib3 caps it at 6 h)
inside the attempt. `bound_retry_after` (called by the MLflow adapters before they make a client)
gives that session a ``Retry`` that sits out a short one and hands a longer one back: the request
fails with `RetryAfterRefused`, and `retry_after_in` finds the delay in the MlflowException's
chain, so the ledger schedules the next attempt no earlier than asked. MLflow offers no option for
this; replacing the name its session factory looks up is the narrowest hook it has.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from shared.errors import PermanentError, RetryableError, retry_after_from_headers
from shared.settings import MlflowHttpSettings

if TYPE_CHECKING:
    from mlflow.exceptions import MlflowException

IN_ADAPTER_RETRY_AFTER_S = 10.0  # as for the Azure SDK clients: longer waits go back to the ledger


def set_limits(limits: MlflowHttpSettings) -> None:
    for name, value in limits.environ().items():
        os.environ.setdefault(name, value)


def bound_retry_after(max_retry_after_s: float = IN_ADAPTER_RETRY_AFTER_S) -> None:
    import mlflow.utils.request_utils as request_utils

    current = request_utils.Retry
    bounded = getattr(current, "modelops_bounded", None)
    if bounded == max_retry_after_s:
        return
    base = getattr(current, "modelops_base", current)
    request_utils.Retry = _bounded_retry(base, max_retry_after_s)  # type: ignore[misc]
    request_utils._cached_get_request_session.cache_clear()  # sessions built before keep the old Retry


def _bounded_retry(base: Any, max_retry_after_s: float) -> Any:
    from urllib3.exceptions import MaxRetryError, ResponseError

    class BoundedRetry(base):  # type: ignore[misc, valid-type]
        modelops_bounded = max_retry_after_s
        modelops_base = base

        def increment(self, method: Any = None, url: Any = None, response: Any = None, *args: Any, **kw: Any) -> Any:
            if response is not None and self.respect_retry_after_header:
                asked = retry_after_from_headers(dict(response.headers))
                if asked is not None and asked > max_retry_after_s:
                    raise RetryAfterRefused(
                        kw.get("_pool"),
                        url,
                        ResponseError(f"{response.status} asking to retry after {asked:.0f}s"),
                        retry_after=asked,
                    )
            return super().increment(method, url, response, *args, **kw)

    class RetryAfterRefused(MaxRetryError):  # type: ignore[misc]
        def __init__(self, pool: Any, url: Any, reason: Any, *, retry_after: float) -> None:
            super().__init__(pool, url, reason)
            self.retry_after = retry_after

    return BoundedRetry


def retry_after_in(exc: BaseException) -> float | None:
    """The delay a refused long Retry-After carried, found anywhere in ``exc``'s chain."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        current = stack.pop()
        if not isinstance(current, BaseException) or id(current) in seen:
            continue
        seen.add(id(current))
        asked = getattr(current, "retry_after", None)
        if isinstance(asked, int | float) and not isinstance(asked, bool):
            return float(asked)
        stack.extend([current.__cause__, current.__context__, *current.args])
    return None


TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "INTERNAL_ERROR", "REQUEST_LIMIT_EXCEEDED", "RESOURCE_EXHAUSTED"}


def classify(exc: MlflowException, what: str) -> Exception:
    """An MlflowException as the ledger's error: retry after what the server asked, retry a transient
    code or connection failure, else permanent."""
    code = exc.error_code
    message = f"{what}: {exc.message} ({code})"
    asked = retry_after_in(exc)
    if asked is not None:
        return RetryableError(f"{message}; the server asked to retry after {asked:.0f}s", retry_after=asked)
    if code in TRANSIENT_CODES or _looks_transient(exc):
        return RetryableError(message)
    return PermanentError(message)


def _looks_transient(exc: MlflowException) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("max retries exceeded", "connection", "timed out", "503", "502", "504"))
