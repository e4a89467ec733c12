"""What an azure-core `HttpResponseError` asks of us: the delay it wants (`Retry-After`,
`retry-after-ms`, `x-ms-retry-after-ms`), whether a 409 is a transient conflict with an operation
already running on the resource or a real conflict (a name taken) that stays one, and who refused
an unauthenticated or unauthorized call (Entra, the service, or a missing permission)."""

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


# ARM's codes for a token it received and rejected (Entra did issue it)
_TOKEN_REJECTED = re.compile(r"^(?:InvalidAuthenticationToken\w*|ExpiredAuthenticationToken|AuthenticationFailed\w*)$")


def auth_refusal(exc: Any, where: str, *, grant: str) -> str | None:
    """Who refused an Azure call and the fix, or None if ``exc`` is no authentication or permission
    failure: the service rejecting a token Entra issued (401: audience, tenant, expiry), Entra
    refusing the credential itself, or a valid token whose identity lacks ``grant`` (403)."""
    from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

    status = exc.status_code if isinstance(exc, HttpResponseError) else None
    error = getattr(exc, "error", None)
    code = str(getattr(error, "code", None) or "")
    message = str(getattr(error, "message", None) or getattr(exc, "message", None) or exc).splitlines()[0]
    if status == 401 and "AADSTS" not in message and (_TOKEN_REJECTED.match(code) or not code):
        return (
            f"{where} rejected the access token Entra issued ({code or status}: {message}): its audience, "
            "tenant or expiry does not fit; check `cloud` / `arm_endpoint` (the token's audience is that "
            "cloud's ARM endpoint) and that the identity belongs to the subscription's tenant"
        )
    if isinstance(exc, ClientAuthenticationError):
        return (
            f"Entra (the identity provider) refused the credential for {where} ({message}): check that "
            "the managed identity is enabled (AZURE_CLIENT_ID for a user-assigned one), or the service "
            "principal's secret, certificate or federated credential"
        )
    if status == 403:
        return f"{where} accepted the token but refused the request ({code or status}: {message}): {grant}"
    return None
