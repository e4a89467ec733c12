"""App settings (environment), read in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    config_path: str | None
    state_dir: Path
    mlflow_webhook_secret: str | None
    databricks_webhook_secret: str | None
    storage_connection: str | None
    state_backend: str  # sqlite | azure
    max_body_bytes: int
    webhook_max_skew_seconds: int

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        return cls(
            config_path=env.get("MODELOPS_CONFIG") or None,
            state_dir=Path(env.get("MODELOPS_STATE_DIR") or ".modelops"),
            mlflow_webhook_secret=env.get("MLFLOW_WEBHOOK_SECRET") or None,
            databricks_webhook_secret=env.get("DATABRICKS_WEBHOOK_SECRET") or None,
            storage_connection=env.get("AzureWebJobsStorage") or None,
            state_backend=(env.get("MODELOPS_STATE_BACKEND") or "sqlite").lower(),
            max_body_bytes=int(env.get("MODELOPS_MAX_BODY_BYTES") or 1_048_576),
            webhook_max_skew_seconds=int(env.get("MODELOPS_WEBHOOK_MAX_SKEW_SECONDS") or 300),
        )

    def config_env(self) -> dict[str, str]:
        """Environment used for ${VAR} expansion in the config file."""
        env = dict(os.environ)
        env["MODELOPS_STATE_DIR"] = str(self.state_dir)
        return env
