"""One clouds table, one credential factory: sovereign clouds sign in at their own authority."""

from __future__ import annotations

from typing import get_args

import pytest

from shared.adapters.credentials import authority_host
from shared.config.clouds import CLOUDS, CloudName, cloud_of_arm


def test_every_cloud_a_config_may_name_is_in_the_table() -> None:
    assert set(get_args(CloudName)) == set(CLOUDS)


@pytest.mark.parametrize(
    ("cloud", "override", "expected"),
    [
        ("AzureUSGovernment", None, "https://login.microsoftonline.us"),
        ("AzureChinaCloud", None, "https://login.chinacloudapi.cn"),
        ("AzureCloud", None, "https://login.microsoftonline.com"),
        ("AzureUSGovernment", "https://login.contoso.example/", "https://login.contoso.example"),
        (None, None, None),  # no cloud named: azure-identity's default (AZURE_AUTHORITY_HOST or public)
    ],
)
def test_authority_follows_the_cloud_unless_configured(
    cloud: str | None, override: str | None, expected: str | None
) -> None:
    assert authority_host(cloud=cloud, override=override) == expected


def test_an_arm_endpoint_names_its_cloud() -> None:
    assert cloud_of_arm("https://management.usgovcloudapi.net/") == "AzureUSGovernment"
    assert cloud_of_arm("https://arm.contoso.example") is None
