"""The audit page's routes: GET pages under /api/ui/, behind the ops routes' read credential.

A browser cannot add `Authorization` to a link it follows, so the page also takes the same token
from a cookie that its sign-in form sets (HttpOnly, SameSite=Strict, path /api/ui); a request that
carries the header (a proxy, a script) is checked on the header alone. Not in the OpenAPI document:
these are pages, not API.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from shared.api.deps import reactor, read_body
from shared.api.opsauth import guard
from shared.api.ui import events, fleet
from shared.api.ui.render import page
from shared.api.ui.search import search_target
from shared.domain.actions import STATUSES
from shared.domain.events import KINDS
from shared.errors import BadRequest, ServiceUnavailable, Unauthorized
from shared.service import event_query
from shared.service.reactor import Reactor

COOKIE = "modelops_ui_token"
PREFIX = "/api/ui"
LOGIN_BODY_LIMIT = 64 * 1024  # an Entra access token is a few KB


async def ui_reader(request: Request) -> None:
    token = None if "authorization" in request.headers else request.cookies.get(COOKIE)
    await guard(request).check(request, read=True, token=token)


router = APIRouter(prefix=PREFIX, include_in_schema=False, dependencies=[Depends(ui_reader)])
public = APIRouter(prefix=PREFIX, include_in_schema=False)  # the sign-in form itself


def _common(request: Request) -> dict[str, Any]:
    return {"signed_in": COOKIE in request.cookies, "enforced": guard(request).enforced}


@router.get("/")
def events_list(request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    params = dict(request.query_params)
    filters = event_query.EventFilters.parse(params, hide_ignored=params.get("ignored") != "show")
    listed = event_query.list_events(app_reactor.ledger, filters)
    sources = sorted({*app_reactor.config.sources, *(r.record["source"] for r in listed.rows)})
    return page(
        "events.html",
        listed=listed,
        sources=sources,
        kinds=sorted(KINDS),
        statuses=event_query.STATUS_CHOICES,
        urlencode=urlencode,
        page_size=event_query.PAGE,
        scan=event_query.SCAN,
        **_common(request),
    )


@router.get("/events/{event_id}")
def event_detail(event_id: str, request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    view = events.event_page(app_reactor.ledger, app_reactor.config, event_id, datetime.now(UTC))
    if view is None:
        raise _not_found(f"no event {event_id}")
    return page("event.html", view=view, refresh=view.running, **_common(request))


@router.get("/actions/{action_id}")
def action_detail(action_id: str, request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    view = events.action_page(app_reactor.ledger, app_reactor.config, action_id)
    if view is None:
        raise _not_found(f"no action {action_id}")
    return page("action.html", view=view, refresh=view.running, **_common(request))


@router.get("/search")
def search(q: str = "") -> Response:
    """The header's search box: an action or event id goes to its page, a bare name to the model's
    history, `key:value` words (source, kind, status, model, version, delivery) to the filtered events."""
    return RedirectResponse(search_target(q), status_code=303)


@router.get("/models")
def model_search(name: str = "") -> Response:
    if not name.strip():
        raise BadRequest("give a model name: /api/ui/models?name=<registered model name>", field="name")
    return RedirectResponse(f"{PREFIX}/models/{quote(name.strip(), safe='')}", status_code=303)


@router.get("/models/{name}")
def model_detail(name: str, request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    history = events.model_history(app_reactor.ledger, name)
    if not history.events and not history.actions:
        raise _not_found(f"no event or action for a model named {name!r}")
    return page("model.html", history=history, statuses=STATUSES, **_common(request))


@router.get("/deployments")
def deployments(request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    rows = fleet.deployment_rows(app_reactor.config, app_reactor.settings.state_dir, app_reactor.ledger)
    history = fleet.target_history(app_reactor.ledger)
    return page("deployments.html", rows=rows, history=history, **_common(request))


@router.get("/status")
def status(request: Request, app_reactor: Reactor = Depends(reactor)) -> Response:
    from shared.service.status import readable_line_statuses

    lines, error = [], None
    try:
        lines = readable_line_statuses(app_reactor)
    except ServiceUnavailable as exc:  # a registry that cannot be read is shown, not a 500
        error = str(exc)
    return page("status.html", lines=lines, error=error, **_common(request))


@router.get("/cleanup")
def cleanup(request: Request, report: str | None = None, app_reactor: Reactor = Depends(reactor)) -> Response:
    view = fleet.cleanup_view(app_reactor.ledger, report)
    if report and view.report is None:
        raise _not_found(f"no cleanup report {report} among the last {fleet.CLEANUP_HISTORY}")
    return page("cleanup.html", view=view, **_common(request))


@public.get("/login")
def login_form(request: Request, next: str = f"{PREFIX}/") -> Response:  # noqa: A002 - the usual name
    return page("login.html", next_url=_local(next), error=None, **_common(request))


@public.post("/login")
async def login(request: Request) -> Response:
    """Check the token as the ops routes would, then keep it in the page's cookie."""
    form = parse_qs((await read_body(request, LOGIN_BODY_LIMIT)).decode("utf-8", "replace"))
    token = (form.get("token") or [""])[0].strip()
    next_url = _local((form.get("next") or [f"{PREFIX}/"])[0])
    try:
        await guard(request).check(request, read=True, token=token)
    except Unauthorized as exc:
        return page("login.html", status_code=401, next_url=next_url, error=str(exc), **_common(request))
    response = RedirectResponse(next_url, status_code=303)
    proxied = request.app.state.settings.trusted_proxies.trusts(request.client.host if request.client else None)
    secure = request.url.scheme == "https" or (proxied and request.headers.get("x-forwarded-proto") == "https")
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure, path=PREFIX)
    return response


@public.post("/logout")
def logout() -> Response:
    response = RedirectResponse(f"{PREFIX}/login", status_code=303)
    response.delete_cookie(COOKIE, path=PREFIX)
    return response


def _local(url: str) -> str:
    """Only a path of this page: a sign-in link must not send the operator elsewhere."""
    return url if url.startswith(f"{PREFIX}/") and not url.startswith("//") and "\\" not in url else f"{PREFIX}/"


def _not_found(message: str) -> Exception:
    from starlette.exceptions import HTTPException

    return HTTPException(404, detail=message)
