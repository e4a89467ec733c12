"""The operator credential of the ops routes: a bearer token no webhook URL carries.

- `MODELOPS_OPS_TOKEN`: a static bearer token (local use), compared in constant time;
- `MODELOPS_OPS_TENANT_ID` + `MODELOPS_OPS_AUDIENCE`: an Entra ID access token with the app role
  `MODELOPS_OPS_ROLE` (default ModelOps.Operator), validated in-app (shared/adapters/entra_tokens.py);
- neither: open locally (the app warns once at start), closed in Azure (WEBSITE_INSTANCE_ID set).
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from shared.errors import Unauthorized
from shared.settings import OpsAuthSettings

if TYPE_CHECKING:
    from shared.adapters.entra_tokens import EntraTokenValidator

log = logging.getLogger("modelops.auth")
SCHEME = "operatorBearer"  # the OpenAPI security scheme of the ops routes


class OpsGuard:
    """Checks one request's operator credential against the settings."""

    def __init__(self, settings: OpsAuthSettings) -> None:
        self.settings = settings
        self._entra: EntraTokenValidator | None = None
        if settings.tenant_id:
            from shared.adapters.entra_tokens import EntraTokenValidator

            self._entra = EntraTokenValidator(settings)

    @property
    def enforced(self) -> bool:
        return self.settings.configured or self.settings.in_azure

    def warn_if_open(self) -> None:
        if not self.enforced:
            log.warning(
                "no operator credential is set: the ops routes (actions, replay, cleanup, reads) are open to "
                "anyone who can reach this port; set MODELOPS_OPS_TOKEN to require it as a bearer token (the "
                "Authorization header, scheme Bearer)"
            )

    async def check(self, request: Request, *, read: bool, token: str | None = None) -> None:
        """Refuse the request without a valid operator credential: the bearer token in its
        `Authorization` header, or ``token`` when the caller read it elsewhere (the audit page's cookie)."""
        if not self.enforced or (read and self.settings.open_reads):
            return
        if not self.settings.configured:
            raise Unauthorized(
                "no operator credential is configured for the ops routes: set MODELOPS_OPS_TENANT_ID and "
                "MODELOPS_OPS_AUDIENCE (Entra ID) or MODELOPS_OPS_TOKEN",
                field="Authorization",
            )
        if token is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            token = token.strip() if scheme.lower() == "bearer" else ""
        if not token:
            raise Unauthorized(
                "this route needs an operator credential: send `Authorization: Bearer <token>` "
                "(a webhook signature or function key is not one)",
                field="Authorization",
            )
        if self.settings.token and hmac.compare_digest(token.encode(), self.settings.token.encode()):
            return
        if self._entra is None:
            raise Unauthorized("the bearer token is not the operator token (MODELOPS_OPS_TOKEN)", field="Authorization")
        operator = await run_in_threadpool(self._entra.validate, token)
        log.info("operator %s (%s): %s %s", operator.name, operator.subject, request.method, request.url.path)


def guard(request: Request) -> OpsGuard:
    ops_guard: OpsGuard = request.app.state.ops_guard
    return ops_guard


async def operator(request: Request) -> None:
    """Dependency of the ops routes that change something."""
    await guard(request).check(request, read=False)


async def reader(request: Request) -> None:
    """Dependency of the ops reads (open when MODELOPS_OPS_OPEN_READS is true)."""
    await guard(request).check(request, read=True)
