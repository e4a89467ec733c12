"""Per-process wiring for the HTTP app: the reactor is built on first use, not at import."""

from __future__ import annotations

import threading
from collections.abc import Callable

from fastapi import Request

from shared.api.errors import PayloadTooLarge
from shared.service.reactor import Reactor


class ReactorHolder:
    def __init__(self, factory: Callable[[], Reactor]) -> None:
        self._factory = factory
        self._reactor: Reactor | None = None
        self._lock = threading.Lock()

    def get(self) -> Reactor:
        if self._reactor is None:
            with self._lock:
                if self._reactor is None:
                    self._reactor = self._factory()
        return self._reactor


def reactor(request: Request) -> Reactor:
    holder: ReactorHolder = request.app.state.reactor_holder
    return holder.get()


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
