"""The port every cleanup provider implements (ARM resource groups, local deployments)."""

from __future__ import annotations

from typing import Protocol

from shared.cleanup.groups import Group
from shared.errors import PermanentError


class ScopeLockedError(PermanentError):
    """ARM refused with 409 ScopeLocked: a lock appeared after listing. Reported, not fought."""


class GroupGoneError(PermanentError):
    """The group no longer exists (deleted by someone else between listing and deleting)."""


class DeleteOperation(Protocol):
    def wait(self) -> None:
        """Block until the deletion finished; raise if it failed."""


class CleanupProvider(Protocol):
    kind: str

    def scopes(self) -> list[str]:
        """Units listed independently (subscriptions); a failing one does not stop the others."""

    def list_groups(self, scope: str) -> list[Group]:
        """Every group in the scope, with the locks that protect each."""

    def set_mark(self, group: Group, value: str) -> None: ...

    def remove_mark(self, group: Group) -> None: ...

    def begin_delete(self, group: Group) -> DeleteOperation:
        """Start deleting; returns once the deletion is accepted (started)."""

    def close(self) -> None: ...
