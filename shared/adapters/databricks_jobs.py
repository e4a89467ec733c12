"""Databricks Jobs API 2.2 through databricks-sdk: start a run once per token, read its state.

Three things the SDK does by default that a queue worker cannot afford, and how they are off:
- `Config()` probes `{host}/.well-known/databricks-config` while it is constructed (with the
  default 300 s retry budget): `_OfflineConfig` skips that probe, so building a client never
  touches the network and never hangs on an unreachable host;
- unified auth walks a chain of credential sources: auth is set explicitly instead (an
  azure-identity credential for the Azure Databricks resource, or a PAT);
- retries (429/503 and connection errors) run for up to 300 s and sleep whatever Retry-After
  says: the budget is `retry_timeout_seconds`, and a Retry-After longer than
  `max_retry_after_seconds` is handed back to the worker as a RetryableError carrying the delay
  (`retry_after`), so the ledger schedules the next attempt no earlier than the server asked.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError
from azure.identity import CredentialUnavailableError
from databricks.sdk import WorkspaceClient
from databricks.sdk.clock import Clock
from databricks.sdk.config import Config
from databricks.sdk.credentials_provider import CredentialsStrategy
from databricks.sdk.errors import (
    BadRequest,
    DatabricksError,
    NotFound,
    NotImplemented,
    PermissionDenied,
    ResourceConflict,
    Unauthenticated,
)
from databricks.sdk.service.jobs import Run

from shared.config.batch import AZURE_DATABRICKS_RESOURCE
from shared.errors import PermanentError, RetryableError

DEFAULT_SCOPE = f"{AZURE_DATABRICKS_RESOURCE}/.default"
ACTIVE = frozenset({"QUEUED", "PENDING", "RUNNING", "TERMINATING", "BLOCKED", "WAITING", "WAITING_FOR_RETRY"})
_TOKEN_REJECTED = re.compile(r"invalid access token|token (?:is |has )?expired|invalid token", re.IGNORECASE)
_PERMANENT = (BadRequest, Unauthenticated, PermissionDenied, NotFound, ResourceConflict, NotImplemented)


@dataclass(frozen=True)
class RunState:
    """A run's state, from the 2.2 `status` object when present, else the older `state`."""

    run_id: int
    life_cycle_state: str
    result_state: str | None
    message: str
    run_page_url: str | None
    duration_seconds: float | None

    @property
    def active(self) -> bool:
        return self.life_cycle_state in ACTIVE

    @property
    def succeeded(self) -> bool:
        return self.result_state == "SUCCESS"

    @classmethod
    def from_run(cls, run: Run) -> RunState:
        life, result, message = "UNKNOWN", None, ""
        if run.state is not None:
            life = _name(run.state.life_cycle_state) or life
            result = _name(run.state.result_state)
            message = run.state.state_message or ""
        if run.status is not None and run.status.state is not None:
            life = _name(run.status.state) or life
            details = run.status.termination_details
            if details is not None:
                # TERMINATED + termination code is the 2.2 way; map it onto a result state
                code = _name(details.code)
                result = result or ("SUCCESS" if code == "SUCCESS" else code)
                message = details.message or message
        duration_ms = run.run_duration or (run.end_time - run.start_time if run.end_time and run.start_time else None)
        return cls(
            run_id=int(run.run_id or 0),
            life_cycle_state=life,
            result_state=result,
            message=message,
            run_page_url=run.run_page_url,
            duration_seconds=duration_ms / 1000 if duration_ms else None,
        )


class DatabricksJobsClient:
    """`jobs.run_now` / `jobs.get_run` for one workspace, with errors as Retryable/Permanent."""

    def __init__(
        self,
        host: str,
        *,
        credential: TokenCredential | None = None,
        token: str | None = None,
        scope: str = DEFAULT_SCOPE,
        http_timeout_seconds: float = 30,
        retry_timeout_seconds: int = 60,
        max_retry_after_seconds: float = 15,
    ) -> None:
        if (credential is None) == (token is None):
            raise ValueError("give exactly one of credential (azure-identity) or token (PAT)")
        if credential is not None:
            strategy = _BearerStrategy("azure-identity", lambda: credential.get_token(scope).token)
        else:
            strategy = _BearerStrategy("pat", lambda: str(token))
        config = _OfflineConfig(
            host=host,
            credentials_strategy=strategy,
            http_timeout_seconds=http_timeout_seconds,
            retry_timeout_seconds=retry_timeout_seconds,
            clock=_BoundedClock(max_retry_after_seconds),
        )
        self.host = host
        self._workspace = WorkspaceClient(config=config)

    def run_now(self, job_id: int, parameters: dict[str, str], idempotency_token: str) -> int:
        """Start the job; the same token returns the run it already started (Jobs API)."""
        with _translated(f"starting job {job_id} on {self.host}"):
            waiter = self._workspace.jobs.run_now(
                job_id, job_parameters=parameters, idempotency_token=idempotency_token
            )
        return int(waiter.run_id)

    def get_run(self, run_id: int) -> RunState:
        with _translated(f"reading run {run_id} on {self.host}"):
            return RunState.from_run(self._workspace.jobs.get_run(run_id))


class _OfflineConfig(Config):
    @classmethod
    def attributes(cls) -> Any:
        # Config discovers its settings in its own class __dict__; a subclass has none
        return Config.attributes()

    def _resolve_host_metadata(self) -> None:
        # The discovery probe fills account/OIDC fields that explicit bearer auth does not use;
        # skipping it keeps construction free of network calls.
        return None


class _BearerStrategy(CredentialsStrategy):
    def __init__(self, auth_type: str, token: Callable[[], str]) -> None:
        self._auth_type = auth_type
        self._token = token

    def auth_type(self) -> str:
        return self._auth_type

    def __call__(self, cfg: Config) -> Callable[[], dict[str, str]]:
        # called per request; azure-identity credentials cache and refresh tokens themselves
        return lambda: {"Authorization": f"Bearer {self._token()}"}


class _RetryAfterTooLong(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"asked to retry after {seconds:.0f}s")
        self.seconds = seconds


class _BoundedClock(Clock):
    """The SDK's retry loop sleeps on this clock: refuse waits a worker should not sit through."""

    def __init__(self, max_sleep_seconds: float) -> None:
        self._max = max_sleep_seconds

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > self._max + 1:  # the SDK adds up to 1 s of jitter
            raise _RetryAfterTooLong(seconds)
        time.sleep(seconds)


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except _RetryAfterTooLong as exc:
        cause = exc.__context__
        asked = getattr(cause, "retry_after_secs", None)
        raise RetryableError(
            f"{what}: Databricks is throttling ({cause}); {exc}", retry_after=asked or exc.seconds
        ) from cause
    except (Unauthenticated, PermissionDenied) as exc:
        raise _refused(what, exc) from exc
    except _PERMANENT as exc:
        raise PermanentError(f"{what}: {_answered(exc)}") from exc
    except DatabricksError as exc:  # 500, 502, 504
        raise RetryableError(f"{what}: {_answered(exc)}", retry_after=exc.retry_after_secs) from exc
    except (TimeoutError, requests.ConnectionError, requests.Timeout) as exc:
        # the SDK's retry budget ran out: its TimeoutError carries the last 429/503 as the cause
        asked = getattr(exc.__cause__, "retry_after_secs", None)
        raise RetryableError(f"{what}: {exc}; the workspace did not answer in time", retry_after=asked) from exc
    except CredentialUnavailableError as exc:
        raise PermanentError(
            f"{what}: no Azure identity available ({exc}); enable a managed identity on the app or use `auth: token`"
        ) from exc
    except ClientAuthenticationError as exc:
        raise RetryableError(f"{what}: getting an Entra token failed: {exc}") from exc


def _answered(exc: DatabricksError) -> str:
    """The workspace's own error code (RESOURCE_DOES_NOT_EXIST, as its REST API documents), not the SDK's class."""
    return f"Databricks answered {exc.error_code}: {exc}" if exc.error_code else f"Databricks answered: {exc}"


def _refused(what: str, exc: DatabricksError) -> PermanentError:
    """Who refused and the fix: the workspace rejecting the token itself (it answers 401, or 403
    "Invalid access token.") is not the same as a valid token whose identity lacks a permission."""
    if isinstance(exc, Unauthenticated) or _TOKEN_REJECTED.search(str(exc)):
        return PermanentError(
            f"{what}: the Databricks workspace rejected the token ({exc}): it is invalid, expired or "
            "not for this workspace; with azure-identity check `scope` (the Azure Databricks resource) "
            "and the tenant, and that the identity was added to the workspace; with `auth: token` put "
            "a current personal access token in the token setting"
        )
    return PermanentError(
        f"{what}: Databricks accepted the token but refused the request ({exc}): give the identity "
        "CAN MANAGE RUN on the job (job permissions)"
    )


def _name(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))
