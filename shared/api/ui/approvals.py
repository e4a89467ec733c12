"""The audit page's approvals: the pending ones with their evidence, and the form that decides.

The form is protected against cross-site requests twice: the page's cookies are SameSite=Strict,
and each form carries a CSRF token that must equal the `modelops_ui_csrf` cookie set with the page
(double submit: any instance behind a load balancer can check it, no server state). Deciding needs
the approver credential (shared/api/approverauth.py): the token typed into the form, else the one
the page was signed in with.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from shared.api.approverauth import approver_guard
from shared.api.deps import reactor, read_body
from shared.api.ui.render import page
from shared.api.ui.routes import COOKIE, PREFIX, ui_reader
from shared.errors import BadRequest, Forbidden
from shared.service import approvals
from shared.service.reactor import Reactor

CSRF_COOKIE = "modelops_ui_csrf"
FORM_LIMIT = 64 * 1024

router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(ui_reader)])


@router.get("/approvals")
def pending(request: Request, decided: str | None = None, app_reactor: Reactor = Depends(reactor)) -> Response:
    csrf = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = page(
        "approvals.html",
        approvals=approvals.pending(app_reactor),
        csrf=csrf,
        decided=decided,
        here="approvals",
        signed_in=COOKIE in request.cookies,
    )
    if request.cookies.get(CSRF_COOKIE) != csrf:
        secure = request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"
        response.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict", secure=secure, path=PREFIX)
    return response


@router.post("/approvals/{action_id}")
async def decide(action_id: str, request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    form = parse_qs((await read_body(request, FORM_LIMIT)).decode("utf-8", "replace"))

    def field(name: str) -> str:
        return (form.get(name) or [""])[0].strip()

    expected = request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(field("csrf").encode(), expected.encode()):
        raise Forbidden(
            "the form's CSRF token is missing or stale: reload the approvals page and decide again", field="csrf"
        )
    token = field("approver_token") or request.cookies.get(COOKIE) or None
    who = await approver_guard(request).check(request, token=token)
    if field("decision") not in approvals.DECISIONS:
        raise BadRequest("decision must be approve or reject", field="decision")
    decision = approvals.Decision(field("decision"), who, field("comment") or None, via="ui")
    await run_in_threadpool(approvals.decide, app_reactor, action_id, decision)
    return RedirectResponse(f"{PREFIX}/approvals?decided={quote(action_id)}", status_code=303)
