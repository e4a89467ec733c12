"""A real reactor (`modelops serve`: uvicorn + worker) filled through its public surface, and one
headless Chromium (Debian's, driven by Playwright) for the module."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.adapters.local_deployments import LocalDeploymentStore, stop_deployment
from tests.support import (
    ReactorProcess,
    databricks_delivery,
    mlflow_delivery,
    train_and_register,
    unique,
    wait_for,
    write_config,
)

CHROMIUM = "/usr/bin/chromium"  # Debian's package (scripts/bootstrap installs it); Playwright downloads nothing
TOKEN = "audit-page-operator-token"
FIRST_DELIVERY, REDELIVERY = "audit-delivery-1", "audit-delivery-2"  # the sender's own ids
MLFLOW_SECRET = "audit-mlflow-secret"
DATABRICKS_SECRET = "audit-databricks-secret"

CONFIG = """
sources:
  mlflow: {{tracking_uri: "sqlite:///{tmp}/source.db"}}
  databricks: {{tracking_uri: "sqlite:///{tmp}/workspace.db"}}
registries:
  local-aml: {{kind: mlflow, tracking_uri: "sqlite:///{tmp}/aml.db", artifact_location: "{tmp}/aml-art"}}
deployments:
  local: {{kind: local}}
  online:
    kind: managed-online
    subscription_id: "00000000-0000-0000-0000-000000000000"
    resource_group: rg-ml
    workspace: ws-ml
    endpoint: churn-online
rules:
  - name: copy-new-versions
    on: model_version.created
    do: [{{register: local-aml}}]
  - name: serve-production
    on: model_version.stage_changed
    stage: Production
    do: [{{deploy: local}}]
  - name: serve-champion
    on: model_version.alias_set
    alias: champion
    do: [{{deploy: local}}]
cleanup:
  provider: local
  default_ttl: PT1S
worker:
  backoff_base_seconds: 0.2
  poll_interval_seconds: 0.2
"""


@dataclass
class Stack:
    url: str
    model: str
    events: dict[str, str]  # what each delivery became: name -> event id
    tmp: Path

    def ops(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = requests.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()


def _deliver(url: str, route: str, body: bytes, headers: dict[str, str]) -> str:
    response = requests.post(f"{url}/api/hooks/{route}", data=body, headers=headers, timeout=30)
    assert response.status_code in (200, 202), response.text
    return str(response.json()["event_id"])


def _mlflow(url: str, entity: str, action: str, data: dict[str, Any], *, delivery_id: str | None = None) -> str:
    envelope = {"entity": entity, "action": action, "data": data}
    return _deliver(url, "mlflow", *mlflow_delivery(MLFLOW_SECRET, envelope, delivery_id=delivery_id))


def _databricks(model: str, version: str) -> dict[str, Any]:
    event_timestamp = int(time.time() * 1000)
    return {
        "event": "MODEL_VERSION_CREATED",
        "webhook_id": "w1",
        "event_timestamp": event_timestamp,
        "model_name": model,
        "version": version,
        "tags": [],
    }


def _train(tmp: Path, model: str) -> tuple[str, Any]:
    import mlflow

    uri = f"sqlite:///{tmp}/source.db"
    # the experiment train_and_register logs to, made first so that artifacts land in tmp, not ./mlruns
    mlflow.MlflowClient(tracking_uri=uri).create_experiment("tests", artifact_location=str(tmp / "source-artifacts"))
    return train_and_register(uri, model, pip_requirements=["scikit-learn"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One reactor with: a copy that succeeded (reported by two sources, delivered twice by one), a
    local deploy serving, a deploy of a version that does not exist (failed, with its error), an
    ignored event, and a dry-run cleanup report that would mark the local deployment."""
    tmp = tmp_path_factory.mktemp("audit")
    model = unique("churn-audit")
    config = write_config(tmp / "modelops.yaml", CONFIG.format(tmp=tmp))
    env = {"MLFLOW_WEBHOOK_SECRET": MLFLOW_SECRET, "DATABRICKS_WEBHOOK_SECRET": DATABRICKS_SECRET}
    with ThreadPoolExecutor(1) as pool:  # the model is trained while the reactor starts
        trained = pool.submit(_train, tmp, model)
        server = ReactorProcess(tmp / "state", config, env={**env, "MODELOPS_OPS_TOKEN": TOKEN}).start()
        try:
            # first the deploy that fails (from the other source's store, untouched while the model is
            # trained): the worker loads MLflow meanwhile
            promoted = {
                **_databricks(model, "42"),
                "event": "MODEL_VERSION_TRANSITIONED_STAGE",
                "to_stage": "Production",
            }
            events = {"promoted": _deliver(server.url, "databricks", *databricks_delivery(DATABRICKS_SECRET, promoted))}
            version, _ = trained.result()
        except BaseException:
            server.stop()
            raise
    try:
        created = {"name": model, "version": version, "source": f"models:/{model}/{version}", "run_id": "r1"}
        events["created"] = _mlflow(server.url, "model_version", "created", created, delivery_id=FIRST_DELIVERY)
        assert _mlflow(server.url, "model_version", "created", created, delivery_id=REDELIVERY) == events["created"]
        import mlflow

        # the alias really moves in the source registry, as the webhook says: a deploy re-reads it
        # before it switches anything (newest wins), and one whose version is not desired is superseded
        source = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp}/source.db")
        source.set_registered_model_alias(model, "champion", version)
        champion = {"name": model, "alias": "champion", "version": version}
        events["champion"] = _mlflow(server.url, "model_version_alias", "created", champion)
        databricks = _databricks(model, version)
        events["databricks"] = _deliver(server.url, "databricks", *databricks_delivery(DATABRICKS_SECRET, databricks))
        tag = {"name": model, "version": version, "key": "team", "value": "risk"}
        events["tagged"] = _mlflow(server.url, "model_version_tag", "set", tag)
        stack = Stack(server.url, model, events, tmp)

        def settled() -> bool:
            actions = stack.ops("GET", "/api/actions", params={"model": model})["actions"]
            return len(actions) == 3 and all(a["status"] in ("succeeded", "failed") for a in actions)

        wait_for(
            settled, timeout=180, what="the copy and the local deploy to succeed, the deploy of version 42 to fail"
        )
        stack.ops("POST", "/api/cleanup", json={"dry_run": True})
        yield stack
    finally:
        server.stop()
        store = LocalDeploymentStore(tmp / "state")  # `modelops serve` leaves its scoring servers serving
        for record in store.list():
            stop_deployment(store, record)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


class Console:
    """What the page logged as an error (console errors, uncaught exceptions, failed loads)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any) -> Any:
        page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        return page


@pytest.fixture
def console() -> Console:
    return Console()


@pytest.fixture
def signed_in(browser: Any, stack: Stack, console: Console) -> Iterator[Any]:
    """A page whose browser holds the operator cookie (the sign-in itself is tested on its own)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    host = stack.url.split("//", 1)[1].split(":")[0]
    context.add_cookies([{"name": "modelops_ui_token", "value": TOKEN, "domain": host, "path": "/api/ui"}])
    page = console.watch(context.new_page())
    yield page
    context.close()


def shot(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, path  # a blank page is a few hundred bytes
    return path
