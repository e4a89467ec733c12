"""What the routes depend on: the container's reactor (built on first use, not at import) and the body."""

from __future__ import annotations

from typing import Protocol

from fastapi import Request

from shared.api.errors import PayloadTooLarge
from shared.service.reactor import Reactor
from shared.settings import Settings


class ReactorSource(Protocol):
    """What the HTTP app is built over: `shared.bootstrap.Container` (the composition root)."""

    settings: Settings

    def reactor(self) -> Reactor: ...


def reactor(request: Request) -> Reactor:
    source: ReactorSource = request.app.state.container
    return source.reactor()


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused early (413) when it is larger than ``limit``."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)
