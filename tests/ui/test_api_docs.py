"""`/api/docs` in a real headless Chromium against `modelops serve`: Swagger UI renders every operation of
the app's OpenAPI 3.1 document from files the app serves itself, and the page asks nothing of any other host
(every request that is not to the reactor is refused and recorded, so an offline machine sees the same page)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import ReactorProcess, write_config
from tests.ui.conftest import Console, shot

CONFIG = """
sources:
  mlflow: {{tracking_uri: "sqlite:///{tmp}/source.db"}}
registries:
  local-aml: {{kind: mlflow, tracking_uri: "sqlite:///{tmp}/aml.db"}}
rules:
  - on: model_version.created
    do: [{{register: local-aml}}]
"""
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReactorProcess]:
    tmp = tmp_path_factory.mktemp("api-docs")
    config = write_config(tmp / "modelops.yaml", CONFIG.format(tmp=tmp))
    reactor = ReactorProcess(tmp / "state", config, extra=["--no-worker"]).start()
    try:
        yield reactor
    finally:
        reactor.stop()


def test_swagger_ui_renders_every_operation_offline(
    browser: Any, server: ReactorProcess, console: Console, tmp_path: Path
) -> None:
    document = requests.get(f"{server.url}/api/openapi.json", timeout=30).json()
    assert document["openapi"].startswith("3.1")
    operations = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item if method in METHODS
    }
    assert len(operations) >= 10

    context = browser.new_context(viewport={"width": 1280, "height": 900})
    elsewhere: list[str] = []

    def only_the_reactor(route: Any) -> None:
        if route.request.url.startswith(server.url + "/"):
            route.continue_()
        else:  # a CDN, a validator badge, a font: the page must not need it
            elsewhere.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_reactor)
    page = console.watch(context.new_page())
    page.goto(f"{server.url}/api/docs")
    page.wait_for_selector(".opblock", timeout=60_000)

    assert "Unable to render this definition" not in page.content()
    shown = {
        (block.query_selector(".opblock-summary-method").inner_text().strip(), _path(block))
        for block in page.query_selector_all(".opblock")
    }
    assert shown == operations

    # one operation opened: its parameters and responses render from the 3.1 schema
    rollback = page.locator(".opblock", has=page.locator("[data-path='/api/deployments/{target}/rollback']"))
    rollback.locator(".opblock-summary").click()
    rollback.locator(".responses-wrapper").wait_for(timeout=30_000)
    for status in ("202", "404", "409"):
        assert rollback.locator(f".response[data-code='{status}']").count() == 1, status
    assert rollback.locator(".parameters [data-param-name='target']").count() == 1
    shot(page, tmp_path, "api-docs")

    assert elsewhere == []
    assert console.errors == []
    context.close()


def _path(block: Any) -> str:
    element = block.query_selector(".opblock-summary-path")
    return str(element.get_attribute("data-path"))
