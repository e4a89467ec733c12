"""Cleanup fixtures: the ARM contract server over HTTPS and a config pointing at it."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.config.schema import ReactorConfig
from tests.contract.arm_server import ArmContract
from tests.contract.credentials import StaticTokenCredential
from tests.contract.https import HttpsServer, TestCA

SUB = "00000000-0000-0000-0000-0000000000aa"
SUB2 = "00000000-0000-0000-0000-0000000000bb"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
OPT_IN = {"modelops-cleanup": "true"}


@pytest.fixture
def arm(trust_test_ca: TestCA) -> Iterator[tuple[ArmContract, str]]:
    contract = ArmContract(page_size=50)
    with HttpsServer(contract.app, trust_test_ca) as server:
        yield contract, server.url
        # a failed LRO's error keeps its response (and TLS connection) in a reference cycle
        # until collected; uvicorn's graceful shutdown would wait on that connection
        gc.collect()


@pytest.fixture
def credential() -> StaticTokenCredential:
    return StaticTokenCredential()


@pytest.fixture
def azure_config(arm: tuple[ArmContract, str]) -> Callable[..., ReactorConfig]:
    """A ReactorConfig whose cleanup section targets the contract server; overrides by kwarg."""
    _, url = arm

    def build(**cleanup: Any) -> ReactorConfig:
        section: dict[str, Any] = {
            "provider": "azure",
            "subscriptions": [SUB],
            "arm_endpoint": url,
            "grace_period": "P1D",
            "max_deletions_per_run": 1000,
            "delete_concurrency": 8,
            "max_retries": 3,
            "retry_backoff_seconds": 0.01,
            "poll_interval_seconds": 0.01,
        }
        section.update(cleanup)
        return ReactorConfig.model_validate({"cleanup": section})

    return build
