"""Per-registry Databricks credentials for MLflow's `databricks://<profile>` URIs.

MLflow authenticates `databricks` URIs through databricks-sdk's unified auth, and the only per-client
handle it offers is a profile name in the URI (`databricks://<profile>`, `databricks-uc://<profile>`).
So each `registries:` entry becomes a profile in a config file this process owns, and that file is
what databricks-sdk reads (DATABRICKS_CONFIG_FILE). The user's own profiles are copied in, so
`databricks://<their profile>` keeps working. Writing the file makes no network call: nothing here
can hang on an unreachable host.

Setting DATABRICKS_CONFIG_FILE in the process environment is the one way to point MLflow at that
file: MLflow builds databricks-sdk's `Config(profile=...)` itself from the URI's profile name
(mlflow/utils/databricks_utils.py `get_databricks_host_creds`, mlflow/utils/rest_utils.py
`get_workspace_client`), and its legacy `ProfileConfigProvider` reads the path from
`os.environ["DATABRICKS_CONFIG_FILE"]` or `~/.databrickscfg`; neither takes a `config_file`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path

from shared.config.registries import DatabricksRegistry
from shared.errors import PermanentError

CONFIG_FILE_SETTING = "DATABRICKS_CONFIG_FILE"

_lock = threading.Lock()
_profiles: dict[str, dict[str, str]] = {}
_state: dict[str, Path] = {}


def profile_for(cfg: DatabricksRegistry, env: Mapping[str, str] | None = None) -> str:
    """The databricks-sdk profile holding this registry's host and credentials (created if needed)."""
    env = os.environ if env is None else env
    values = {"host": cfg.host, **_credentials(cfg, env)}
    name = "modelops-" + hashlib.sha256(repr(sorted(values.items())).encode()).hexdigest()[:12]
    with _lock:
        if name not in _profiles:
            _profiles[name] = values
            _write(env)
        # set on every call: something (a test, an operator) may have reset the process environment
        os.environ[CONFIG_FILE_SETTING] = str(_state["file"])
    return name


def _credentials(cfg: DatabricksRegistry, env: Mapping[str, str]) -> dict[str, str]:
    if cfg.auth == "token":
        setting = str(cfg.token_setting)
        token = env.get(setting, "")
        if not token:
            raise PermanentError(
                f"the app setting {setting} (token_setting of the Databricks registry {cfg.host}) is empty: "
                "set it to a personal access token, or use `auth: azure-identity`"
            )
        return {"auth_type": "pat", "token": token}
    values: dict[str, str] = {}
    if cfg.azure_client_id:
        values["azure_client_id"] = cfg.azure_client_id
    if env.get("IDENTITY_ENDPOINT") or env.get("MSI_ENDPOINT"):
        # App Service / Functions: the managed identity; elsewhere databricks-sdk tries the Entra service
        # principal from ARM_CLIENT_ID/ARM_CLIENT_SECRET/ARM_TENANT_ID, then the Azure CLI login.
        values["azure_use_msi"] = "true"
    return values


def _write(env: Mapping[str, str]) -> None:
    if "file" not in _state:
        directory = Path(tempfile.mkdtemp(prefix="modelops-databricks-"))  # 0700: it may hold PATs
        _state["file"] = directory / "databrickscfg"
        _state["user"] = Path(env.get(CONFIG_FILE_SETTING) or Path.home() / ".databrickscfg")
    user = _state["user"]
    text = user.read_text() if user.is_file() and user != _state["file"] else ""
    for name, values in _profiles.items():
        text += f"\n[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in values.items())
    target = _state["file"]
    partial = target.with_suffix(".partial")
    partial.write_text(text)
    partial.chmod(0o600)
    os.replace(partial, target)  # readers never see a half-written file
