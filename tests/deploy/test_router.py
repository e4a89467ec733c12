"""The router of a `local` target as its own process (`python -m shared.local.router`, started by
ensure_router) in front of two small real HTTP servers: every change of the state file is in force for
the very next request, however quickly the reactor rewrites it, and each route's answers are counted."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn

from shared.adapters.local_routers import RouterRecord, ensure_router, stop_router
from shared.adapters.router_state import update_state
from shared.local.router.state_file import RACY_S
from tests.contract.https import free_port


def version_server(name: str, status: int) -> Any:
    """An ASGI app standing in for one version's scoring server: answers ``status`` with its name."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": name.encode()})

    return app


@pytest.fixture(scope="module")
def versions() -> Iterator[dict[str, str]]:
    """Two servers on 127.0.0.1: ``m/a`` answers 200, ``m/b`` answers 503."""
    servers, urls = [], {}
    for name, status in (("m/a", 200), ("m/b", 503)):
        port = free_port()
        config = uvicorn.Config(version_server(name, status), host="127.0.0.1", port=port, log_level="warning")
        server = uvicorn.Server(config)
        threading.Thread(target=server.run, daemon=True).start()
        servers.append(server)
        urls[name] = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while not all(server.started for server in servers):
        assert time.monotonic() < deadline, "the version servers did not start"
        time.sleep(0.02)
    yield urls
    for server in servers:
        server.should_exit = True


@pytest.fixture
def router(tmp_path: Path) -> Iterator[RouterRecord]:
    rec = ensure_router(tmp_path, "local", host="127.0.0.1", port=None)
    yield rec
    stop_router(tmp_path, "local")


def route(rec: RouterRecord, weights: dict[str, tuple[str, int]]) -> str:
    """What the reactor does to move traffic; returns the new judging window."""
    return update_state(Path(rec.state_file), rec.target, lambda state: state.routed(weights)).window


def answered_by(rec: RouterRecord) -> str:
    return requests.post(rec.scoring_url, json={"x": 1}, timeout=10).headers["x-modelops-route"]


def test_each_rewrite_of_the_weights_is_in_force_for_the_next_request(
    router: RouterRecord, versions: dict[str, str]
) -> None:
    # rewrites in quick succession: the replaced file's inode is freed and may come back, with the same
    # size and within one tick of the file clock; the router must still see every one of them
    seen = []
    for turn in range(60):
        name = "m/a" if turn % 2 == 0 else "m/b"
        route(router, {"m/a": (versions["m/a"], 100 if name == "m/a" else 0), "m/b": (versions["m/b"], 0)})
        if name == "m/b":
            route(router, {"m/a": (versions["m/a"], 0), "m/b": (versions["m/b"], 100)})
        seen.append((name, answered_by(router)))
    assert [wanted for wanted, _ in seen] == [got for _, got in seen]

    # a file older than the racy window is trusted by its stat: a later rewrite still shows
    time.sleep(RACY_S + 0.2)
    assert answered_by(router) == "m/b"
    time.sleep(RACY_S + 0.2)
    route(router, {"m/a": (versions["m/a"], 100)})
    assert answered_by(router) == "m/a"


def test_counts_each_routes_answers_per_window_and_keeps_the_last_good_state(
    router: RouterRecord, versions: dict[str, str]
) -> None:
    window = route(router, {"m/a": (versions["m/a"], 50), "m/b": (versions["m/b"], 50)})
    statuses = [requests.post(router.scoring_url, data=b"{}", timeout=10).status_code for _ in range(40)]
    assert set(statuses) == {200, 503}
    figures = requests.get(f"{router.url}/-/stats", timeout=10).json()["windows"][window]
    assert figures["m/a"]["requests"] + figures["m/b"]["requests"] == 40
    assert figures["m/b"]["errors_5xx"] == figures["m/b"]["requests"] == statuses.count(503)
    assert figures["m/a"]["errors_5xx"] == 0 and figures["m/a"]["latency_p99_ms"] > 0

    Path(router.state_file).write_text("{not json")  # a file it cannot parse: the last good weights stay
    assert requests.get(f"{router.url}/-/state", timeout=10).json()["window"] == window
