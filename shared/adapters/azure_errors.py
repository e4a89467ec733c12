"""What an azure-core `HttpResponseError` asks of us: the delay it wants (`Retry-After`,
`retry-after-ms`, `x-ms-retry-after-ms`), and whether a 409 is a transient conflict with an
operation already running on the resource, or a real conflict (a name taken) that stays one."""

from __future__ import annotations

import re
from typing import Any

from shared.errors import retry_after_from_headers

# Azure answers 409 Conflict both for "busy" and for "taken"; only the message tells them apart
_ONGOING = re.compile(
    r"ongoing operation|another operation|operation (?:is )?(?:already )?in progress"
    r"|is (?:currently )?being (?:created|updated|deleted|provisioned|modified)",
    re.IGNORECASE,
)
ONGOING_OPERATION_RETRY_S = 30.0  # when a busy 409 names no Retry-After
IN_ADAPTER_RETRY_AFTER_S = 10.0  # longer waits go back to the ledger instead of holding a worker


def retry_after_of(exc: Any) -> float | None:
    """The delay the response behind an azure-core error asks for, if any."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return retry_after_from_headers(dict(headers)) if headers else None


def is_ongoing_operation(status: int, message: str) -> bool:
    """A 409 because another operation runs on the resource: retry once it is over."""
    return status == 409 and bool(_ONGOING.search(message))


def bounded_retry_policy(max_retry_after_s: float = IN_ADAPTER_RETRY_AFTER_S, **options: Any) -> Any:
    """azure-core's RetryPolicy, except that it does not sit out a Retry-After longer than
    ``max_retry_after_s`` (it retries any 4xx/5xx that sends one): that response comes back as an
    error carrying the delay, and the ledger schedules the next attempt."""
    from azure.core.pipeline.policies import RetryPolicy

    class _BoundedRetryPolicy(RetryPolicy):
        def is_retry(self, settings: Any, response: Any) -> bool:
            asked = retry_after_from_headers(dict(response.http_response.headers))
            if asked is not None and asked > max_retry_after_s:
                return False
            return bool(super().is_retry(settings, response))

    return _BoundedRetryPolicy(**options)
