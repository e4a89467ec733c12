"""The Azure clouds a target may name, and each cloud's endpoints: the one table of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CloudName = Literal["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"]


@dataclass(frozen=True)
class Cloud:
    name: CloudName
    arm: str  # Azure Resource Manager endpoint
    authority: str  # Entra authority host
    aml: str  # Azure ML resource id (token audience of its data plane)
    portal: str
    storage_suffix: str


CLOUDS: dict[str, Cloud] = {
    cloud.name: cloud
    for cloud in (
        Cloud(
            name="AzureCloud",
            arm="https://management.azure.com",
            authority="https://login.microsoftonline.com",
            aml="https://ml.azure.com",
            portal="https://portal.azure.com/",
            storage_suffix="core.windows.net",
        ),
        Cloud(
            name="AzureUSGovernment",
            arm="https://management.usgovcloudapi.net",
            authority="https://login.microsoftonline.us",
            aml="https://ml.azure.us",
            portal="https://portal.azure.us/",
            storage_suffix="core.usgovcloudapi.net",
        ),
        Cloud(
            name="AzureChinaCloud",
            arm="https://management.chinacloudapi.cn",
            authority="https://login.chinacloudapi.cn",
            aml="https://ml.azure.cn",
            portal="https://portal.azure.cn/",
            storage_suffix="core.chinacloudapi.cn",
        ),
    )
}


def cloud_of_arm(arm_endpoint: str) -> Cloud | None:
    """The cloud whose ARM endpoint this is; None for a private one (Azure Stack, a proxy)."""
    wanted = arm_endpoint.rstrip("/").lower()
    return next((cloud for cloud in CLOUDS.values() if cloud.arm == wanted), None)
