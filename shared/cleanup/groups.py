"""What cleanup knows about one candidate: an Azure resource group or a local deployment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Lock:
    """A management lock that protects the group (on it, inside it, or on its subscription)."""

    name: str
    level: str  # CanNotDelete | ReadOnly
    scope: str
    notes: str | None = None

    def describe(self) -> str:
        return f"{self.name} ({self.level}) on {self.scope}"


@dataclass(frozen=True)
class Group:
    name: str
    id: str
    scope: str  # subscription id, or "local"
    location: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    managed_by: str | None = None
    locks: tuple[Lock, ...] = ()
    created_time: datetime | None = None
    provisioning_state: str | None = None

    def tag(self, name: str) -> str | None:
        """ARM tag names are case-insensitive; so is this lookup."""
        wanted = name.lower()
        return next((v for k, v in self.tags.items() if k.lower() == wanted), None)
