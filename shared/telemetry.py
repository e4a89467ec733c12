"""Logging for every entry point: correlation ids, secret redaction, JSON lines, Azure Monitor.

- Correlation: ``correlation_id`` (from the HTTP request, carried in queue messages), ``event_id``
  and ``action_id`` come from ``extra=`` or from the ids bound with :func:`bind` for the current
  request / invocation, and appear in every line (and as Application Insights dimensions).
- Redaction happens when a record is created (a LogRecord factory), so every handler, the
  Functions host's and OpenTelemetry's included, only ever sees the redacted text.
- Azure Monitor OpenTelemetry is imported and configured only when
  ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set, on the first :func:`setup_logging` call.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import threading
import traceback
from collections.abc import Iterator
from typing import Any, TextIO

from shared.domain.ids import random_hex
from shared.log_lines import IDS, JsonFormatter, TextFormatter
from shared.settings import Settings

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("modelops_ids", default={})  # noqa: B039 - never mutated
_lock = threading.Lock()
_secrets: set[str] = set()
_state: dict[str, Any] = {}

# Settings whose values are secrets, beside any *_SECRET / *_KEY / *_TOKEN / *_PASSWORD setting.
SECRET_SETTINGS = (
    "MLFLOW_WEBHOOK_SECRET",
    "DATABRICKS_WEBHOOK_SECRET",
    "MODELOPS_OUTCOME_TOPIC_KEY",
    "DATABRICKS_TOKEN",
    "DATABRICKS_CLIENT_SECRET",
    "AZURE_CLIENT_SECRET",
)
_SECRET_NAME = re.compile(r"(SECRET|_KEY|TOKEN|PASSWORD)$", re.IGNORECASE)
_HEADER_VALUE = r"""(["']?\s*[:=]\s*["']?)"""
PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # storage connection strings and SAS tokens
    (re.compile(r"(AccountKey|SharedAccessKey|SharedAccessSignature)=[^;\s\"']+", re.IGNORECASE), r"\1=***"),
    (re.compile(r"(\bsig=)[^&\s\"']+", re.IGNORECASE), r"\1***"),
    # HTTP auth headers, however they are printed (dict repr, raw header lines, JSON)
    (
        re.compile(
            r"(authorization" + _HEADER_VALUE + r")(?:(?:Bearer|Basic|SharedKey)\s+)?[^\s\"',}]+", re.IGNORECASE
        ),
        r"\1***",
    ),
    (re.compile(r"(aeg-sas-(?:key|token)" + _HEADER_VALUE + r")[^\s\"',}]+", re.IGNORECASE), r"\1***"),
    (re.compile(r"(x-(?:mlflow|databricks)-signature" + _HEADER_VALUE + r")[^\s\"',}]+", re.IGNORECASE), r"\1***"),
    # Databricks personal access tokens and JWTs (Entra access tokens)
    (re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b"), "dapi***"),
    (re.compile(r"\beyJ[\w-]{8,}\.[\w-]{8,}\.[\w-]+"), "***jwt***"),
)


# -- correlation ------------------------------------------------------------------------------
def current() -> dict[str, str]:
    return dict(_context.get())


@contextlib.contextmanager
def bind(**ids: str | None) -> Iterator[dict[str, str]]:
    """Attach ids to every log line written in this context (request, queue invocation)."""
    merged = {**_context.get(), **{k: v for k, v in ids.items() if v}}
    token = _context.set(merged)
    try:
        yield merged
    finally:
        _context.reset(token)


def new_correlation_id(candidate: str | None = None) -> str:
    """Accept a caller's id if it is short and plain (no log injection), else make one."""
    if candidate and re.fullmatch(r"[A-Za-z0-9._:-]{1,128}", candidate):
        return candidate
    return random_hex(32)


class CorrelationFilter(logging.Filter):
    """Fill the ids a record did not get through ``extra=`` from the bound context."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get()
        for name in IDS:
            if getattr(record, name, None) is None:
                setattr(record, name, bound.get(name))
        return True


# -- redaction --------------------------------------------------------------------------------
# every pattern above needs one of these words (lowercased): a line with none of them (most lines)
# skips the substitutions, 2 us instead of 45 us; a prefilter may let more through, never less
_NEEDS_ONE_OF: tuple[str, ...] = ("accountkey=", "sharedaccesskey=", "sharedaccesssignature=", "sig=")
_NEEDS_ONE_OF += ("authorization", "aeg-sas-", "-signature", "dapi", "eyj")
_longest_first: tuple[str, ...] = ()


def register_secret(value: str | None) -> None:
    """Redact this exact value wherever it appears (short values would redact ordinary words)."""
    global _longest_first
    if value and len(value) >= 6:
        with _lock:
            _secrets.add(value)
            _longest_first = tuple(sorted(_secrets, key=len, reverse=True))  # sorted once, not per line


def redact(text: str) -> str:
    for secret in _longest_first:
        if secret in text:
            text = text.replace(secret, "***")
    lowered = text.lower()
    if not any(word in lowered for word in _NEEDS_ONE_OF):
        return text
    for pattern, replacement in PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_tree(value: Any) -> Any:
    """``value`` with every string in it redacted (dicts and lists walked): stored records, as log lines."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_tree(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_tree(item) for item in value]
    return value


def _redacting_factory(previous: Any) -> Any:
    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record: logging.LogRecord = previous(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the handler's own error path
            return record
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, ()
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            clean = redact(text)
            if clean != text:
                # the exception object itself still holds the secret: only its redacted text goes on
                record.exc_text, record.exc_info = clean, None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return record

    factory.modelops_redacting = True  # type: ignore[attr-defined]
    return factory


def install_redaction(settings: Settings | None = None) -> None:
    """Redact the values of every secret-looking app setting, from now on, in every log record."""
    settings = settings or Settings.from_env()
    for name, value in settings.environ.items():
        if name in SECRET_SETTINGS or _SECRET_NAME.search(name):
            register_secret(value)
    with _lock:
        if not getattr(logging.getLogRecordFactory(), "modelops_redacting", False):
            logging.setLogRecordFactory(_redacting_factory(logging.getLogRecordFactory()))


# -- setup ------------------------------------------------------------------------------------
def setup_logging(settings: Settings | None = None, *, level: int | None = None, stream: TextIO | None = None) -> None:
    """Idempotent. With ``stream`` (the CLI, tests) install our own handler; without (inside the
    Functions host, which owns the root handlers) only add correlation and redaction."""
    settings = settings or Settings.from_env()
    install_redaction(settings)
    root = logging.getLogger()
    if level is not None:
        root.setLevel(level)
    if stream is not None:
        for handler in [h for h in root.handlers if getattr(h, "modelops_handler", False)]:
            root.removeHandler(handler)
        handler = logging.StreamHandler(stream)
        handler.modelops_handler = True  # type: ignore[attr-defined]
        json_lines = settings.log_format == "json"
        handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
        root.addHandler(handler)
    for noisy in ("azure", "urllib3", "mlflow", "alembic", "httpx", "py4j"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    if settings.appinsights_connection:
        enable_azure_monitor(settings.appinsights_connection)
    for logger in (root, logging.getLogger("modelops")):
        for handler in logger.handlers:
            if not any(isinstance(f, CorrelationFilter) for f in handler.filters):
                handler.addFilter(CorrelationFilter())


def enable_azure_monitor(connection_string: str) -> None:
    """Export traces, requests and the ``modelops`` loggers to Application Insights (once)."""
    with _lock:
        if _state.get("azure_monitor"):
            return
        _state["azure_monitor"] = True
    from azure.monitor.opentelemetry import configure_azure_monitor

    # only our loggers: the Functions host already forwards everything else it captures
    configure_azure_monitor(connection_string=connection_string, logger_name="modelops")


class CorrelationMiddleware:
    """Plain ASGI middleware (Starlette's BaseHTTPMiddleware cost a third of the ingest throughput):
    each request gets a correlation id (the caller's X-Correlation-Id if plain), echoed back."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        raw = headers.get(b"x-correlation-id") or headers.get(b"x-ms-client-request-id")
        correlation_id = new_correlation_id(raw.decode("latin-1") if raw else None)

        async def send_with_id(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = (b"x-correlation-id", correlation_id.encode())
                message = {**message, "headers": [*message.get("headers", []), extra]}
            await send(message)

        token = _context.set({**_context.get(), "correlation_id": correlation_id})  # bind(), without its generator
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _context.reset(token)


def install_http_correlation(app: Any) -> None:
    app.add_middleware(CorrelationMiddleware)
