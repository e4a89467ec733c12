"""Deployment targets (the `deployments:` section)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from shared.config.base import ConfigModel


class LocalDeployment(ConfigModel):
    """Serve with `mlflow models serve --env-manager local` on this machine."""

    kind: Literal["local"]
    host: str = Field(default="127.0.0.1", description="interface the scoring server binds")
    port: int | None = Field(default=None, description="fixed port; omit for a free port")
    startup_timeout_s: float = Field(default=120, gt=0, description="seconds to wait for /ping")
    workers: int = Field(default=1, ge=1, description="scoring server workers")


DeploymentConfig = Annotated[LocalDeployment, Field(discriminator="kind")]
