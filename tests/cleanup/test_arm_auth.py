"""Who refused a cleanup run's ARM calls, and the fix: ARM rejecting a token (401) vs Entra refusing
the credential; either way the subscription is reported and nothing is deleted."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from shared.cleanup.runner import run_cleanup
from shared.config.schema import ReactorConfig
from tests.cleanup.conftest import NOW, SUB
from tests.cleanup.test_arm_runs import EXPIRED, PAST
from tests.contract.arm_server import ArmContract
from tests.contract.credentials import RefusingCredential, StaticTokenCredential


@pytest.mark.parametrize("who", ["arm", "entra"])
def test_a_refused_listing_names_who_refused_and_keeps_every_group(
    arm: tuple[ArmContract, str], azure_config: Callable[..., ReactorConfig], tmp_path: Path, who: str
) -> None:
    contract, _ = arm
    contract.add_group(SUB, "rg-due", tags={**EXPIRED, "delete-after": PAST})
    credential = StaticTokenCredential("token-for-another-audience") if who == "arm" else RefusingCredential()

    report = run_cleanup(azure_config(), apply=True, state_dir=tmp_path, credential=credential, now=NOW)

    [error] = report.errors
    if who == "arm":
        assert "Azure Resource Manager rejected the access token Entra issued (AuthenticationFailed" in error
        assert "audience" in error
    else:
        assert "Entra (the identity provider) refused the credential" in error and "AADSTS7000215" in error
    assert contract.group(SUB, "rg-due") is not None
