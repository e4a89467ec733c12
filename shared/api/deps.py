"""What the routes depend on: the container's reactor (built on first use, not at import) and the body."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from shared.api.errors import BodyTooSlow, PayloadTooLarge
from shared.config.schema import ReactorConfig
from shared.errors import BadRequest
from shared.ingest.jsonbody import parse_json
from shared.service.reactor import Reactor
from shared.settings import Settings


class ReactorSource(Protocol):
    """What the HTTP app is built over: `shared.bootstrap.Container` (the composition root)."""

    settings: Settings
    config: ReactorConfig

    def reactor(self) -> Reactor: ...


async def reactor(request: Request) -> Reactor:
    # async: FastAPI runs a plain `def` dependency in its threadpool, a thread hop per request
    source: ReactorSource = request.app.state.container
    return source.reactor()


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused early (413) when it is larger than ``limit``, and (408) when it has not
    all arrived within MODELOPS_BODY_READ_TIMEOUT_SECONDS: a sender trickling bytes holds no connection."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    seconds: float = request.app.state.settings.body_read_seconds
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(limit)
                chunks.append(chunk)
    except TimeoutError:
        raise BodyTooSlow(seconds) from None
    return b"".join(chunks)


M = TypeVar("M", bound=BaseModel)


def strict_body(model: type[M], *, required: bool) -> Callable[[Request], Awaitable[M | None]]:
    """A JSON body read like a webhook's (shared/ingest/jsonbody.py: duplicate keys and NaN refused,
    errors in words) and validated strictly: `"yes"` is not a boolean, `"1"` is not a number."""

    async def read(request: Request) -> M | None:
        settings: Settings = request.app.state.settings
        raw = await read_body(request, settings.max_body_bytes)
        if not raw.strip() and not required:
            return None
        data = parse_json(raw)
        if not isinstance(data, dict):
            raise BadRequest(f"body must be a JSON object, not {type(data).__name__}")
        try:
            return model.model_validate(data, strict=True)
        except ValidationError as exc:
            raise RequestValidationError(
                [{**err, "loc": ("body", *err["loc"])} for err in exc.errors(include_url=False)]
            ) from None

    return read


def body_doc(model: type[BaseModel], *, required: bool) -> dict[str, Any]:
    """The OpenAPI `requestBody` of a route that reads its body with :func:`strict_body`."""
    schema = model.model_json_schema(mode="validation")
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}
