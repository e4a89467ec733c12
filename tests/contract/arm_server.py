"""A contract server for the slice of Azure Resource Manager that cleanup uses.

Shapes follow azure-rest-api-specs and what azure-mgmt-resource 24.0.0 sends and accepts:
- specification/resources/resource-manager/Microsoft.Resources/stable/2025-04-01/resources.json
  (ResourceGroups_List: `{"value": [...], "nextLink": ...}`; ResourceGroups_Delete: 200 or
  202 + `Location`, polled until 200/204; Tags_UpdateAtScope: `operation` Merge/Replace/Delete)
  and its example CreateResourceGroup.json (group JSON: id, name, location, properties).
- specification/resources/resource-manager/Microsoft.Authorization/stable/2016-09-01/locks.json
  and examples/ManagementLocks_ListAtScope.json (lock JSON: id, type, name, properties.level).
- ARM's 409 `ScopeLocked` ("... cannot perform delete operation because following scope(s) are
  locked ..."), 429 `Retry-After`, and `$expand=createdTime` on the group list (undocumented
  but served by ARM; azure-core keeps it in `additional_properties`).

Paths are matched case-insensitively, as ARM does (the SDK writes `resourcegroups` for group
calls and `resourceGroups` for lock calls). Faults are injectable per test.
"""

from __future__ import annotations

import itertools
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from tests.contract.credentials import CONTRACT_TOKEN

_SUB = r"/subscriptions/(?P<sub>[^/]+)"
_RG = _SUB + r"/resourcegroups/(?P<rg>[^/]+)"
_ROUTES = [
    ("GET", re.compile(_SUB + r"/resourcegroups/?$", re.I), "list_groups"),
    ("GET", re.compile(_RG + r"/?$", re.I), "get_group"),
    ("PATCH", re.compile(_RG + r"/?$", re.I), "patch_group"),
    ("DELETE", re.compile(_RG + r"/?$", re.I), "delete_group"),
    ("GET", re.compile(_SUB + r"/operationresults/(?P<op>[^/]+)$", re.I), "poll"),
    ("GET", re.compile(_SUB + r"/providers/Microsoft\.Authorization/locks$", re.I), "sub_locks"),
    ("GET", re.compile(_RG + r"/providers/Microsoft\.Authorization/locks$", re.I), "rg_locks"),
    ("GET", re.compile(r"(?P<scope>/.+)/providers/Microsoft\.Resources/tags/default$", re.I), "get_tags"),
    ("PATCH", re.compile(r"(?P<scope>/.+)/providers/Microsoft\.Resources/tags/default$", re.I), "patch_tags"),
]


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


@dataclass
class Logged:
    method: str
    path: str
    query: str
    status: int
    at: float  # time.monotonic() when the answer was sent


@dataclass
class _Operation:
    sub: str
    key: str
    polls_left: int
    fail: bool


@dataclass
class ArmState:
    """Everything the server knows; tests seed and inspect it directly."""

    page_size: int = 100
    polls_before_done: int = 1
    poll_retry_after: str = "0.01"  # seconds; ARM sends whole seconds, azure-core takes floats
    groups: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    locks: list[dict[str, Any]] = field(default_factory=list)
    delete_5xx: dict[str, int] = field(default_factory=dict)  # group -> 500s before success
    failing_operations: set[str] = field(default_factory=set)  # groups whose delete LRO fails
    throttles: list[tuple[str, str, int]] = field(default_factory=list)  # (method, path re, n)
    throttle_retry_after: str = "1"
    log: list[Logged] = field(default_factory=list)
    operations: dict[str, _Operation] = field(default_factory=dict)


class ArmContract:
    """The ASGI app plus its state; serve with ``HttpsServer(contract.app, ca)``."""

    def __init__(self, *, page_size: int = 100, polls_before_done: int = 1) -> None:
        self.state = ArmState(page_size=page_size, polls_before_done=polls_before_done)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.app = FastAPI()
        self.app.add_api_route("/{path:path}", self._dispatch, methods=["GET", "PATCH", "DELETE", "PUT", "POST"])

    # --- seeding --------------------------------------------------------------------------
    def add_group(
        self,
        sub: str,
        name: str,
        *,
        location: str = "westeurope",
        tags: dict[str, str] | None = None,
        managed_by: str | None = None,
        created_time: datetime | None = None,
    ) -> dict[str, Any]:
        group = {
            "id": f"/subscriptions/{sub}/resourceGroups/{name}",
            "name": name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": location,
            "tags": dict(tags or {}),
            "properties": {"provisioningState": "Succeeded"},
        }
        if managed_by:
            group["managedBy"] = managed_by
        if created_time:
            group["createdTime"] = created_time.isoformat().replace("+00:00", "Z")
        self.state.groups[(sub.lower(), name.lower())] = group
        return group

    def add_lock(self, scope: str, name: str, level: str = "CanNotDelete") -> dict[str, Any]:
        """Lock a subscription, a group or a resource: ``scope`` is its ARM id."""
        lock = {
            "id": f"{scope}/providers/Microsoft.Authorization/locks/{name}",
            "type": "Microsoft.Authorization/locks",
            "name": name,
            "properties": {"level": level, "notes": f"{name} protects {scope}"},
        }
        self.state.locks.append(lock)
        return lock

    def throttle(self, method: str, path_pattern: str, times: int = 1) -> None:
        """The next ``times`` requests matching answer 429 with Retry-After."""
        self.state.throttles.append((method.upper(), path_pattern, times))

    def group(self, sub: str, name: str) -> dict[str, Any] | None:
        return self.state.groups.get((sub.lower(), name.lower()))

    def writes(self) -> list[Logged]:
        return [e for e in self.state.log if e.method in ("PATCH", "PUT", "DELETE", "POST")]

    # --- dispatch -------------------------------------------------------------------------
    async def _dispatch(self, request: Request, path: str) -> Response:
        body = await request.json() if request.method in ("PATCH", "PUT") else None
        with self._lock:
            response = self._answer(request, "/" + path, body)
            self.state.log.append(
                Logged(request.method, "/" + path, request.url.query, response.status_code, time.monotonic())
            )
        return response

    def _answer(self, request: Request, path: str, body: Any) -> Response:
        if request.headers.get("authorization") != f"Bearer {CONTRACT_TOKEN}":
            return _error(401, "AuthenticationFailed", "missing or wrong bearer token")
        if "api-version" not in request.query_params:
            return _error(400, "MissingApiVersionParameter", "api-version is required")
        throttled = self._throttled(request.method, path)
        if throttled:
            return throttled
        for method, pattern, handler in _ROUTES:
            match = pattern.match(path)
            if match and method == request.method:
                return getattr(self, "_" + handler)(request, body, **match.groupdict())
        return _error(404, "NoRegisteredProviderFound", f"no route for {request.method} {path}")

    def _throttled(self, method: str, path: str) -> Response | None:
        for i, (m, pattern, times) in enumerate(self.state.throttles):
            if m == method and re.search(pattern, path, re.I) and times > 0:
                self.state.throttles[i] = (m, pattern, times - 1)
                return _error(
                    429,
                    "TooManyRequests",
                    "throttled",
                    {"Retry-After": self.state.throttle_retry_after},
                )
        return None

    # --- resource groups ------------------------------------------------------------------
    def _list_groups(self, request: Request, body: Any, sub: str) -> Response:
        q = request.query_params
        start = int(q.get("$skiptoken", "0"))
        expand = q.get("$expand", "")
        mine = [g for (s, _), g in self.state.groups.items() if s == sub.lower()]
        page = [self._render(g, expand) for g in mine[start : start + self.state.page_size]]
        result: dict[str, Any] = {"value": page}
        if start + self.state.page_size < len(mine):
            extra = f"&%24expand={quote(expand)}" if expand else ""
            result["nextLink"] = (
                f"{str(request.base_url).rstrip('/')}/subscriptions/{sub}/resourcegroups"
                f"?api-version={q['api-version']}&%24skiptoken={start + self.state.page_size}" + extra
            )
        return JSONResponse(result)

    @staticmethod
    def _render(group: dict[str, Any], expand: str) -> dict[str, Any]:
        shown = dict(group)
        if "createdtime" not in expand.lower():
            shown.pop("createdTime", None)
        return shown

    def _find(self, sub: str, rg: str) -> dict[str, Any] | None:
        return self.state.groups.get((sub.lower(), rg.lower()))

    def _not_found(self, rg: str) -> Response:
        return _error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")

    def _get_group(self, request: Request, body: Any, sub: str, rg: str) -> Response:
        group = self._find(sub, rg)
        return JSONResponse(self._render(group, "")) if group else self._not_found(rg)

    def _patch_group(self, request: Request, body: Any, sub: str, rg: str) -> Response:
        group = self._find(sub, rg)
        if not group:
            return self._not_found(rg)
        if self._locks_on(group["id"], read_only=True):
            return self._scope_locked(group["id"], "write")
        if "tags" in (body or {}):
            group["tags"] = dict(body["tags"] or {})  # ResourceGroups_Update replaces the tag set
        return JSONResponse(self._render(group, ""))

    def _delete_group(self, request: Request, body: Any, sub: str, rg: str) -> Response:
        group = self._find(sub, rg)
        if not group:
            return self._not_found(rg)
        if self._locks_on(group["id"]):
            return self._scope_locked(group["id"], "delete")
        pending = self.state.delete_5xx.get(rg.lower(), 0)
        if pending:
            self.state.delete_5xx[rg.lower()] = pending - 1
            return _error(500, "InternalServerError", "injected failure")
        group["properties"]["provisioningState"] = "Deleting"
        op = f"op{next(self._ids)}"
        self.state.operations[op] = _Operation(
            sub.lower(),
            rg.lower(),
            self.state.polls_before_done,
            rg.lower() in self.state.failing_operations,
        )
        return Response(status_code=202, headers=self._poll_headers(request, sub, op))

    def _poll_headers(self, request: Request, sub: str, op: str) -> dict[str, str]:
        base = str(request.base_url).rstrip("/")
        location = f"{base}/subscriptions/{sub}/operationresults/{op}?api-version=2025-04-01"
        return {"Location": location, "Retry-After": self.state.poll_retry_after}

    def _poll(self, request: Request, body: Any, sub: str, op: str) -> Response:
        operation = self.state.operations.get(op)
        if operation is None:
            return _error(404, "OperationNotFound", f"operation {op} not found")
        if operation.polls_left > 0:
            operation.polls_left -= 1
            return Response(status_code=202, headers=self._poll_headers(request, sub, op))
        group = self.state.groups.get((operation.sub, operation.key))
        if operation.fail:
            if group:
                group["properties"]["provisioningState"] = "Failed"
            return _error(
                409,
                "ResourceGroupDeletionBlocked",
                f"Deletion of resource group '{operation.key}' failed as resources could not be deleted.",
            )
        self.state.groups.pop((operation.sub, operation.key), None)
        return Response(status_code=200)

    # --- locks ----------------------------------------------------------------------------
    def _locks_on(self, group_id: str, read_only: bool = False) -> list[dict[str, Any]]:
        """Locks that protect a group: on it, on a resource in it, or on its subscription."""
        gid = group_id.lower()
        sub_id = "/".join(gid.split("/")[:3])
        found = []
        for lock in self.state.locks:
            scope = lock["id"].lower().split("/providers/microsoft.authorization/locks/")[0]
            applies = scope in (sub_id, gid) or scope.startswith(gid + "/")
            if applies and (not read_only or lock["properties"]["level"] == "ReadOnly"):
                found.append(lock)
        return found

    def _scope_locked(self, group_id: str, verb: str) -> Response:
        scopes = ", ".join(
            f"'{lock['id'].split('/providers/Microsoft.Authorization/locks/')[0]}'" for lock in self._locks_on(group_id)
        )
        return _error(
            409,
            "ScopeLocked",
            f"The scope '{group_id}' cannot perform {verb} operation because following scope(s) "
            f"are locked: {scopes}. Please remove the lock and try again.",
        )

    def _sub_locks(self, request: Request, body: Any, sub: str) -> Response:
        prefix = f"/subscriptions/{sub}".lower()
        mine = [lk for lk in self.state.locks if lk["id"].lower().startswith(prefix + "/")]
        return JSONResponse({"value": mine})

    def _rg_locks(self, request: Request, body: Any, sub: str, rg: str) -> Response:
        group = self._find(sub, rg)
        return JSONResponse({"value": self._locks_on(group["id"]) if group else []})

    # --- tags at scope --------------------------------------------------------------------
    def _tags_target(self, scope: str) -> dict[str, Any] | None:
        match = re.fullmatch(_RG, scope, re.I)
        return self._find(match["sub"], match["rg"]) if match else None

    def _tags_body(self, scope: str, tags: dict[str, str]) -> Response:
        return JSONResponse(
            {
                "id": f"{scope}/providers/Microsoft.Resources/tags/default",
                "name": "default",
                "type": "Microsoft.Resources/tags",
                "properties": {"tags": tags},
            }
        )

    def _get_tags(self, request: Request, body: Any, scope: str) -> Response:
        group = self._tags_target(scope)
        return self._tags_body(scope, group["tags"]) if group else self._not_found(scope)

    def _patch_tags(self, request: Request, body: Any, scope: str) -> Response:
        group = self._tags_target(scope)
        if not group:
            return self._not_found(scope)
        if self._locks_on(group["id"], read_only=True):
            return self._scope_locked(group["id"], "write")
        operation = (body or {}).get("operation", "")
        given = ((body or {}).get("properties") or {}).get("tags") or {}
        tags = group["tags"]
        if operation == "Merge":
            tags.update(given)
        elif operation == "Replace":
            group["tags"] = tags = dict(given)
        elif operation == "Delete":
            for name, value in given.items():
                # Delete removes a name, or a name/value pair when a value is given
                key = next((k for k in tags if k.lower() == name.lower()), None)
                if key is not None and (not value or tags[key] == value):
                    del tags[key]
        else:
            return _error(400, "InvalidTagOperation", f"unknown operation {operation!r}")
        return self._tags_body(scope, tags)
