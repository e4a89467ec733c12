"""The Azure clouds a target may name, and each cloud's endpoints: the one table of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CloudName = Literal["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"]


@dataclass(frozen=True)
class Cloud:
    arm: str  # Azure Resource Manager endpoint
    authority: str  # Entra authority host
    aml: str  # Azure ML resource id (token audience of its data plane)
    portal: str
    storage_suffix: str  # blob hosts are <account>.blob.<suffix>
    aml_api: str  # regional Azure ML API hosts (registry discovery) are <region>.<aml_api>


_ENDPOINTS: dict[str, dict[str, str]] = {
    "AzureCloud": {
        "arm": "https://management.azure.com",
        "authority": "https://login.microsoftonline.com",
        "aml": "https://ml.azure.com",
        "portal": "https://portal.azure.com/",
        "storage_suffix": "core.windows.net",
        "aml_api": "api.azureml.ms",
    },
    "AzureUSGovernment": {
        "arm": "https://management.usgovcloudapi.net",
        "authority": "https://login.microsoftonline.us",
        "aml": "https://ml.azure.us",
        "portal": "https://portal.azure.us/",
        "storage_suffix": "core.usgovcloudapi.net",
        "aml_api": "api.ml.azure.us",
    },
    "AzureChinaCloud": {
        "arm": "https://management.chinacloudapi.cn",
        "authority": "https://login.chinacloudapi.cn",
        "aml": "https://ml.azure.cn",
        "portal": "https://portal.azure.cn/",
        "storage_suffix": "core.chinacloudapi.cn",
        "aml_api": "api.ml.azure.cn",
    },
}
CLOUDS: dict[str, Cloud] = {name: Cloud(**endpoints) for name, endpoints in _ENDPOINTS.items()}


def cloud_of_arm(arm_endpoint: str) -> str | None:
    """The name of the cloud whose ARM endpoint this is; None for a private one (Azure Stack, a proxy)."""
    wanted = arm_endpoint.rstrip("/").lower()
    return next((name for name, cloud in CLOUDS.items() if cloud.arm == wanted), None)
