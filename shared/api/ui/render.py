"""The templates of the audit page: Jinja2, autoescaped, loaded on the first page (not at cold start)."""

from __future__ import annotations

import functools
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.responses import HTMLResponse

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).parent / "templates"


def when(value: Any) -> str:
    """An instant as `2026-12-01 13:21:20` (UTC), whatever form the ledger kept it in."""
    if not value:
        return "-"
    try:
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def duration(ms: Any) -> str:
    if ms is None or ms == "":
        return "-"
    ms = float(ms)
    if ms < 1000:
        return f"{ms:.0f} ms"
    return f"{ms / 1000:.1f} s" if ms < 120_000 else f"{ms / 60_000:.1f} min"


# bidi embeddings, overrides, isolates and marks: a name holding one reads as another on the page
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def marked(value: Any) -> Any:
    """Every value a template shows: bidi controls written out as `[U+202E]`, never applied."""
    if isinstance(value, str) and not hasattr(value, "__html__") and _BIDI.search(value):
        return _BIDI.sub(lambda m: f"[U+{ord(m.group()):04X}]", value)
    return value


@functools.cache
def environment() -> Environment:
    import jinja2  # a page's first render pays this import, not every cold start

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=marked,
    )
    env.filters["when"] = when
    env.filters["duration"] = duration
    return env


def page(name: str, /, *, status_code: int = 200, **context: Any) -> HTMLResponse:
    html = environment().get_template(name).render(**context)
    return HTMLResponse(html, status_code=status_code, headers=SECURITY_HEADERS)


# the page loads nothing from anywhere: no script but its own, no frame, no form sent elsewhere
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def error_page(status: int, message: str, *, login: bool = False, next_url: str = "/api/ui/") -> HTMLResponse:
    """An HTML error page for the audit page's routes (the JSON API keeps its JSON error shape)."""
    titles = {400: "Bad request", 401: "Sign in", 403: "Forbidden", 404: "Not found", 405: "Not allowed"}
    return page(
        "error.html",
        status_code=status,
        title=titles.get(status, f"Error {status}"),
        status=status,
        message=message,
        login=login,
        next_url=next_url,
    )
