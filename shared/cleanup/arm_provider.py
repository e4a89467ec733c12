"""Resource groups through Azure Resource Manager (azure-mgmt-resource + management locks).

Throttling and transient failures are the SDK pipeline's job: azure-core's RetryPolicy honours
`Retry-After` up to 10 s (a longer one is reported with the delay asked for, not sat out),
retries 5xx a bounded number of times (``max_retries``) and never retries a 409, so ScopeLocked
comes back at once and is reported, not fought; a 409 for an operation already running on the
group is retryable.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from shared.adapters.azure_errors import auth_refusal, bounded_retry_policy, is_ongoing_operation, retry_after_of
from shared.adapters.credentials import arm_credential
from shared.cleanup.groups import Group, Lock
from shared.cleanup.provider import GroupGoneError, ScopeLockedError
from shared.config.cleanup import CleanupConfig
from shared.errors import ActionError, PermanentError, RetryableError
from shared.timeparse import parse_timestamp

_GRANT = (
    "give the identity a role with resource group read, delete and tag write on the subscription (e.g. Contributor)"
)
_IN_GROUP = re.compile(r"^/subscriptions/[^/]+/resourcegroups/([^/]+)", re.I)
_LOCK_SUFFIX = re.compile(r"/providers/Microsoft\.Authorization/locks/[^/]+$", re.I)


def _translate(exc: Exception, group: Group | None = None) -> ActionError:
    """Turn an azure-core error into ours, keeping ARM's error code and message."""
    from azure.core.exceptions import HttpResponseError

    if not isinstance(exc, HttpResponseError):
        return RetryableError(f"{type(exc).__name__}: {exc}")
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or ""
    message = getattr(error, "message", None) or exc.reason or ""
    status = exc.status_code or 0
    text = f"{status} {code}: {message}".strip()
    refusal = auth_refusal(exc, "Azure Resource Manager", grant=_GRANT)
    if refusal is not None:
        return PermanentError(refusal)
    if status == 409 and code == "ScopeLocked":
        return ScopeLockedError(text)
    if status == 404 and group is not None:
        return GroupGoneError(f"{group.name} no longer exists ({text})")
    asked = retry_after_of(exc)
    if asked is not None:
        text += f" (asked to retry after {asked:.0f}s)"
    if status == 429 or status >= 500 or is_ongoing_operation(status, message):
        return RetryableError(text, retry_after=asked)
    return PermanentError(text)


class _ArmDelete:
    def __init__(self, poller: Any, group: Group) -> None:
        self._poller, self._group = poller, group

    def wait(self) -> None:
        try:
            self._poller.result()
        except Exception as exc:
            raise _translate(exc, self._group) from exc


class ArmProvider:
    kind = "azure"

    def __init__(self, config: CleanupConfig, *, credential: Any = None) -> None:
        if credential is None:
            credential = arm_credential(config.arm_endpoint)
        self._config = config
        self._credential = credential
        self._clients: dict[str, tuple[Any, Any]] = {}
        self._guard = threading.Lock()

    def _client_options(self) -> dict[str, Any]:
        cfg = self._config
        return {
            "base_url": cfg.arm_endpoint,
            # sovereign clouds: the token audience is the ARM endpoint of that cloud
            "credential_scopes": [f"{cfg.arm_endpoint}/.default"],
            # a longer Retry-After is reported with its delay instead of holding the run
            "retry_policy": bounded_retry_policy(
                retry_total=cfg.max_retries,
                retry_status=cfg.max_retries,
                retry_backoff_factor=cfg.retry_backoff_seconds,
            ),
            "polling_interval": cfg.poll_interval_seconds,
        }

    def _clients_for(self, subscription: str) -> tuple[Any, Any]:
        with self._guard:
            if subscription not in self._clients:
                from azure.mgmt.resource import ResourceManagementClient
                from azure.mgmt.resource.locks import ManagementLockClient

                options = self._client_options()
                self._clients[subscription] = (
                    ResourceManagementClient(self._credential, subscription, **options),
                    ManagementLockClient(self._credential, subscription, **options),
                )
            return self._clients[subscription]

    def scopes(self) -> list[str]:
        return list(self._config.subscriptions)

    def list_groups(self, scope: str) -> list[Group]:
        resources, locks = self._clients_for(scope)
        options: dict[str, Any] = {}
        if self._config.use_created_time:
            options["params"] = {"$expand": "createdTime"}
        try:
            raw_groups = list(resources.resource_groups.list(**options))  # follows nextLink
            # one call lists the locks at every level of the subscription, not one per group
            raw_locks = list(locks.management_locks.list_at_subscription_level())
        except Exception as exc:
            raise _translate(exc) from exc
        by_group: dict[str, list[Lock]] = {}
        everywhere: list[Lock] = []
        for raw in raw_locks:
            lock = Lock(
                name=raw.name,
                level=str(raw.level),
                scope=_LOCK_SUFFIX.sub("", raw.id),
                notes=raw.notes,
            )
            inside = _IN_GROUP.match(raw.id)
            if inside:
                by_group.setdefault(inside.group(1).lower(), []).append(lock)
            else:
                everywhere.append(lock)  # a subscription lock protects every group in it
        return [self._group(scope, rg, by_group, everywhere) for rg in raw_groups]

    @staticmethod
    def _group(scope: str, rg: Any, by_group: dict[str, list[Lock]], everywhere: list[Lock]) -> Group:
        created_raw = (getattr(rg, "additional_properties", None) or {}).get("createdTime")
        try:
            created = parse_timestamp(created_raw) if created_raw else None
        except ValueError:
            created = None
        state = rg.properties.provisioning_state if rg.properties else None
        return Group(
            name=rg.name,
            id=rg.id,
            scope=scope,
            location=rg.location or "",
            tags=dict(rg.tags or {}),
            managed_by=rg.managed_by,
            locks=tuple(everywhere + by_group.get(rg.name.lower(), [])),
            created_time=created,
            provisioning_state=state,
        )

    def _patch_tags(self, group: Group, operation: str, tags: dict[str, str]) -> None:
        from azure.mgmt.resource.resources.models import Tags, TagsPatchResource

        resources, _ = self._clients_for(group.scope)
        body = TagsPatchResource(operation=operation, properties=Tags(tags=tags))
        try:
            # the SDK prefixes the scope with "/": pass the id without its leading slash
            resources.tags.begin_update_at_scope(group.id.lstrip("/"), body).result()
        except Exception as exc:
            raise _translate(exc, group) from exc

    def set_mark(self, group: Group, value: str) -> None:
        # Merge touches only our tag, so a concurrent edit of other tags is never lost
        self._patch_tags(group, "Merge", {self._config.mark_tag: value})

    def remove_mark(self, group: Group) -> None:
        key = next((k for k in group.tags if k.lower() == self._config.mark_tag.lower()), None)
        if key is not None:
            self._patch_tags(group, "Delete", {key: group.tags[key]})

    def begin_delete(self, group: Group) -> _ArmDelete:
        resources, _ = self._clients_for(group.scope)
        try:
            poller = resources.resource_groups.begin_delete(group.name)
        except Exception as exc:
            raise _translate(exc, group) from exc
        return _ArmDelete(poller, group)

    def close(self) -> None:
        with self._guard:
            for resources, locks in self._clients.values():
                resources.close()
                locks.close()
            self._clients.clear()
