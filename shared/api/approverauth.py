"""The approver credential: who may decide an approval, and who they are (for the audit trail).

- `MODELOPS_APPROVER_TOKEN`: a static bearer token (local use); when it is unset, the operator
  token (`MODELOPS_OPS_TOKEN`) decides;
- Entra ID (`MODELOPS_OPS_TENANT_ID` + `MODELOPS_OPS_AUDIENCE`): an access token with the app role
  `MODELOPS_APPROVER_ROLE` (default ModelOps.Approve); the decider is the token's object id and name;
- no credential configured at all: open locally (as the ops routes are), closed in Azure.
A valid operator credential without the approver role is refused with 403, none with 401.
"""

from __future__ import annotations

import hmac
from dataclasses import replace
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from shared.api.opsauth import guard
from shared.errors import Forbidden, Unauthorized
from shared.settings import OpsAuthSettings

if TYPE_CHECKING:
    from shared.adapters.entra_tokens import EntraTokenValidator


class ApproverGuard:
    def __init__(self, settings: OpsAuthSettings) -> None:
        self.settings = settings
        self._entra: EntraTokenValidator | None = None
        if settings.tenant_id:
            from shared.adapters.entra_tokens import EntraTokenValidator

            self._entra = EntraTokenValidator(replace(settings, role=settings.approver_role))

    @property
    def enforced(self) -> bool:
        return self.settings.configured or self.settings.in_azure

    async def check(self, request: Request, *, token: str | None = None) -> str:
        """Who decides, or raise 401 (no or an unknown credential) / 403 (not an approver)."""
        if not self.enforced:
            return "anonymous (no credential is configured)"
        if token is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else ""
        if not token:
            raise Unauthorized(
                "deciding an approval needs the approver credential: send `Authorization: Bearer <token>`",
                field="Authorization",
            )
        approver, operator = self.settings.approver_token, self.settings.token
        if approver and _same(token, approver):
            return "approver token (MODELOPS_APPROVER_TOKEN)"
        if operator and _same(token, operator):
            if approver is None:
                return "operator token (MODELOPS_OPS_TOKEN)"
            raise Forbidden(
                "the operator token may not decide approvals: MODELOPS_APPROVER_TOKEN is set, send that one",
                field="Authorization",
            )
        if self._entra is None:
            raise Unauthorized("the bearer token is not the approver token", field="Authorization")
        person = await run_in_threadpool(self._entra.validate, token)  # 403 without the approver role
        return f"{person.name} (object id {person.subject})"


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def approver_guard(request: Request) -> ApproverGuard:
    state = request.app.state
    found: ApproverGuard | None = getattr(state, "approver_guard", None)
    if found is None:
        found = state.approver_guard = ApproverGuard(guard(request).settings)
    return found


async def approver(request: Request) -> str:
    """Dependency of the routes that decide: who the caller is."""
    return await approver_guard(request).check(request)
