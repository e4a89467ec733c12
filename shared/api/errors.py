"""Every refusal in one shape, `{"error": ..., "problems": [{"field", "problem"}]}`, and one log line."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from shared.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    Forbidden,
    NotFound,
    RequestError,
    ServiceUnavailable,
    Unauthorized,
)
from shared.trusted_proxies import TrustedProxies

log = logging.getLogger("modelops.api")
STATUS = {BadRequest: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, Conflict: 409, ServiceUnavailable: 503}


class PayloadTooLarge(RequestError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"body larger than {limit} bytes; send a smaller body", field="body")


class BodyTooSlow(RequestError):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"the body did not arrive within {seconds:g} s; send it at once", field="body")


def error_body(message: str, problems: list[dict[str, str]]) -> dict[str, Any]:
    return {"error": message, "problems": problems}


def client_address(request: Request) -> str:
    """The peer's address; `X-Forwarded-For` only from a proxy in MODELOPS_TRUSTED_PROXIES."""
    trusted: TrustedProxies = request.app.state.settings.trusted_proxies
    return trusted.client(request.client.host if request.client else None, request.headers.get("x-forwarded-for"))


def is_page(request: Request) -> bool:
    """A request for the audit page (HTML), whose refusals are pages too."""
    return request.url.path == "/api/ui" or request.url.path.startswith("/api/ui/")


def refuse(request: Request, status: int, message: str, problems: list[dict[str, str]]) -> Response:
    """The answer to a refused request, logged with route, reason and client (never the body or a secret).

    JSON in the one error shape; an HTML page for the audit page's routes."""
    kind = "webhook delivery" if request.url.path.startswith("/api/hooks/") else "request"
    # a 400 quotes the body (a key, a value); the log keeps only which fields were wrong
    reason = message if status != 400 else "invalid " + ", ".join(sorted({p["field"] for p in problems}))
    log.warning(
        "%s refused: %s %s -> %d: %s (client %s)",
        kind,
        request.method,
        request.url.path,
        status,
        reason,
        client_address(request),
    )
    if is_page(request):
        from shared.api.ui.render import error_page

        query = request.url.query
        return error_page(
            status, message, login=status == 401, next_url=request.url.path + (f"?{query}" if query else "")
        )
    return JSONResponse(error_body(message, problems), status_code=status)


def _http_message(request: Request, exc: HTTPException) -> str:
    if exc.status_code == 404 and exc.detail == "Not Found" and is_page(request):
        return f"no page {request.url.path}; the audit page starts at /api/ui/"
    if exc.status_code == 404 and exc.detail == "Not Found":
        return f"no route {request.url.path}; the API is described at /api/openapi.json and /api/docs"
    if exc.status_code == 405:
        allowed = (exc.headers or {}).get("Allow", "")
        return f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    return str(exc.detail)


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> Response:
        status = {PayloadTooLarge: 413, BodyTooSlow: 408}.get(type(exc)) or STATUS.get(type(exc), 400)
        response = refuse(request, status, str(exc), [{"field": exc.field, "problem": str(exc)}])
        if status == 401 and exc.field == "Authorization":
            response.headers["WWW-Authenticate"] = 'Bearer realm="modelops-ops"'
        return response

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = _http_message(request, exc)
        field = "path" if exc.status_code in (404, 405) else "request"
        response = refuse(request, exc.status_code, message, [{"field": field, "problem": message}])
        if exc.headers:
            response.headers.update(exc.headers)
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        problems = [
            {"field": ".".join(str(p) for p in err["loc"] if p != "body") or "body", "problem": err["msg"]}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems)
        return refuse(request, 400, f"invalid request: {summary}", problems)

    @app.exception_handler(ConfigError)
    async def config_error(_: Request, exc: ConfigError) -> JSONResponse:
        problems = [{"field": key, "problem": problem} for key, problem, _fix in exc.problems]
        return JSONResponse(error_body(str(exc), problems), status_code=500)
