"""The router: an ASGI app (served by uvicorn, see __main__.py) that forwards `POST /invocations` to
one of the target's version servers, picked at random by the state file's weights, copies a share of
requests to a mirrored version in the background (its answer discarded), and counts per route.

Routes: `POST /invocations` (forwarded), `GET /ping` and `GET /health` (200 while some version takes
traffic), `GET /-/stats` (the figures by window, for the judge), `GET /-/state` (what it routes now).
The state file is checked on every request (shared/local/router/state_file.py), so the reactor moves
traffic by replacing the file and the very next request follows it; the router holds no state worth
keeping across its own restart.

It forwards with aiohttp (one pooled session, keep-alive connections to each version's server, its
HTTP parser in C): on a loaded machine the router's CPU per request is what it costs in throughput
(benchmarks/router.py), and with httpx it spent three times as much (1.4 ms against 0.46 ms).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from pathlib import Path
from typing import Any

import aiohttp

from shared.adapters.router_state import Mirror, Route, RouterState
from shared.local.router.state_file import StateFile
from shared.local.router.stats import Figures

_MAX_MIRRORS_IN_FLIGHT = 64  # beyond this, copies are dropped: the mirror never slows the live path
_FORWARDED = ("content-type", "accept", "content-encoding")
Scope = dict[str, Any]


class Router:
    def __init__(self, state_file: Path, *, timeout_s: float = 60.0) -> None:
        self.state_file = Path(state_file)
        self.timeout_s = timeout_s
        self.figures = Figures()
        self.mirror_dropped = 0
        self._state_file = StateFile(self.state_file)
        self._session: aiohttp.ClientSession | None = None
        self._mirrors: set[asyncio.Task[None]] = set()

    # -- state -----------------------------------------------------------------------------------
    def state(self) -> RouterState | None:
        """The weights the reactor wrote last: in force for the very next request."""
        return self._state_file.current()

    @staticmethod
    def pick(state: RouterState) -> Route | None:
        live = [route for route in state.routes if route.weight > 0]
        if not live:
            return None
        return random.choices(live, weights=[route.weight for route in live])[0]  # noqa: S311 - not crypto

    # -- ASGI ------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        state = self.state()
        if path == "/invocations" and method == "POST":
            await self._invoke(state, scope, receive, send)
        elif path in ("/ping", "/health") and method == "GET":
            serving = state is not None and any(r.weight > 0 for r in state.routes)
            await _answer(send, 200 if serving else 503, {"serving": serving})
        elif path == "/-/stats" and method == "GET":
            body = {"window": state.window if state else None, "windows": self.figures.to_dict()}
            await _answer(send, 200, {**body, "mirror_dropped": self.mirror_dropped})
        elif path == "/-/state" and method == "GET":
            await _answer(send, 200, state.to_dict() if state else {})
        else:
            await _answer(send, 404, {"error": f"{method} {path} is not routed", "problems": []})

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
                timeout = aiohttp.ClientTimeout(total=self.timeout_s)
                self._session = aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._session is not None:
                    await self._session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _invoke(self, state: RouterState | None, scope: Scope, receive: Any, send: Any) -> None:
        route = self.pick(state) if state else None
        if state is None or route is None:
            await _answer(send, 503, {"error": "no version of this target takes traffic yet", "problems": []})
            return
        body = await _body(receive)
        headers = {
            name.decode("latin-1"): value.decode("latin-1")
            for name, value in scope["headers"]
            if name.decode("latin-1").lower() in _FORWARDED
        }
        if state.mirror is not None and random.random() * 100 < state.mirror.percent:  # noqa: S311
            self._copy(state.window, state.mirror, body, headers)
        status, answer, answer_headers = await self._forward(state.window, route.id, route.url, body, headers)
        # the length, known: no chunked encoding (its framing and its closing chunk, a write of its own)
        answer_headers.append((b"content-length", str(len(answer)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": answer_headers})
        await send({"type": "http.response.body", "body": answer})

    async def _forward(
        self, window: str, route_id: str, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        assert self._session is not None, "lifespan startup creates the session"
        started = time.perf_counter()
        try:
            async with self._session.post(f"{url}/invocations", data=body, headers=headers) as response:
                answer = await response.read()
                status = response.status
                content_type = response.headers.get("content-type", "application/json")
                encoding = response.headers.get("content-encoding")
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.figures.record(window, route_id, 502, time.perf_counter() - started)
            text = json.dumps({"error": f"version {route_id} did not answer: {exc!r}", "problems": []}).encode()
            return 502, text, [(b"content-type", b"application/json"), (b"x-modelops-route", route_id.encode())]
        self.figures.record(window, route_id, status, time.perf_counter() - started)
        kept = [(b"content-type", content_type.encode("latin-1")), (b"x-modelops-route", route_id.encode())]
        if encoding:  # passed through as the version sent it (auto_decompress=False)
            kept.append((b"content-encoding", encoding.encode("latin-1")))
        return status, answer, kept

    def _copy(self, window: str, mirror: Mirror, body: bytes, headers: dict[str, str]) -> None:
        if len(self._mirrors) >= _MAX_MIRRORS_IN_FLIGHT:
            self.mirror_dropped += 1
            return

        async def copy() -> None:
            await self._forward(window, mirror.id, mirror.url, body, headers)

        task = asyncio.get_running_loop().create_task(copy())
        self._mirrors.add(task)
        task.add_done_callback(self._mirrors.discard)


async def _body(receive: Any) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Any, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
