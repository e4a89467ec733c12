"""The same policy over the reactor's local scoring servers (`mlflow models serve`).

A local deployment plays a resource group: it is reactor-made, so opted in by origin; its
creation time is when it started, so `default_ttl` (or a `ttl` in the policy) makes it stale;
a deployment still starting (or rolling out) holds a lock, as its deploy action owns it, and so does a
retired one, kept for a rollback; one a rollout judged failed (`rolled-back`) is no action's. Marks live in a JSON
file under the state dir because processes carry no tags. Delete = stop the process group
(which frees the port), remove its log and forget it.
"""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

from shared.adapters.local_deployments import (
    ROLLED_BACK,
    SERVING,
    LocalDeploymentRecord,
    LocalDeploymentStore,
    stop_deployment,
)
from shared.cleanup.groups import Group, Lock
from shared.cleanup.provider import GroupGoneError
from shared.config.cleanup import CleanupConfig
from shared.timeparse import format_timestamp

SCOPE = "local"


def group_name(rec: LocalDeploymentRecord) -> str:
    """``target/model/version`` (``target/source/model/version`` for a named source's version):
    protected patterns such as ``prod/*`` read naturally."""
    return "/".join(part for part in (rec.target, rec.source, rec.model_name, rec.model_version) if part)


class MarkFile:
    """Marks of local groups: ``{group name: delete-after}`` in one small JSON file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = threading.Lock()

    def read(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError):
            # a corrupt file loses marks only: every stale group is re-marked, never deleted early
            return {}
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def update(self, name: str, value: str | None) -> None:
        with self._guard:
            marks = self.read()
            if value is None:
                marks.pop(name, None)
            else:
                marks[name] = value
            self.path.parent.mkdir(parents=True, exist_ok=True)
            scratch = self.path.with_suffix(".tmp")
            scratch.write_text(json.dumps(marks, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(scratch, self.path)  # atomic: a crash leaves the old or the new file


class _LocalDelete:
    def __init__(self, store: LocalDeploymentStore, rec: LocalDeploymentRecord, marks: MarkFile, name: str) -> None:
        self._store, self._rec, self._marks, self._name = store, rec, marks, name

    def wait(self) -> None:
        stop_deployment(self._store, self._rec)
        self._marks.update(self._name, None)


class LocalProvider:
    kind = "local"

    def __init__(self, config: CleanupConfig, *, state_dir: Path) -> None:
        self._config = config
        self._state_dir = Path(state_dir)
        self._opened: LocalDeploymentStore | None = None
        self.marks = MarkFile(Path(state_dir) / "cleanup" / "local-marks.json")

    def scopes(self) -> list[str]:
        return [SCOPE]

    @property
    def _store(self) -> LocalDeploymentStore:
        if self._opened is None:
            self._opened = LocalDeploymentStore(self._state_dir)
        return self._opened

    def list_groups(self, scope: str) -> list[Group]:
        if not (self._state_dir / "deployments.db").exists():
            # nothing deployed yet; opening the store would create it, and a dry run writes nothing
            return []
        marks = self.marks.read()
        return [self._group(rec, marks.get(group_name(rec))) for rec in self._store.list()]

    def _group(self, rec: LocalDeploymentRecord, mark: str | None) -> Group:
        cfg = self._config
        started = datetime.fromtimestamp(rec.started_at, UTC)
        tags = {
            cfg.created_tag: format_timestamp(started),
            "target": rec.target,
            "model": rec.model_name,
            "version": rec.model_version,
        }
        if mark is not None:
            tags[cfg.mark_tag] = mark
        locks: tuple[Lock, ...] = ()
        if rec.status not in (SERVING, ROLLED_BACK):
            locks = (
                Lock(
                    "deploy-in-progress",
                    "CanNotDelete",
                    rec.url,
                    f"status {rec.status}: its deploy action still owns it",
                ),
            )
        return Group(
            name=group_name(rec),
            id=rec.url,
            scope=SCOPE,
            location=f"{rec.host}:{rec.port}",
            tags=tags,
            locks=locks,
            created_time=started,
            provisioning_state=rec.status,
        )

    def set_mark(self, group: Group, value: str) -> None:
        self.marks.update(group.name, value)

    def remove_mark(self, group: Group) -> None:
        self.marks.update(group.name, None)

    def begin_delete(self, group: Group) -> _LocalDelete:
        rec = next((r for r in self._store.list() if group_name(r) == group.name), None)
        if rec is None or rec.url != group.id:
            # stopped meanwhile, or replaced by a new server on another port: not ours to stop
            raise GroupGoneError(f"{group.name} is no longer the recorded deployment")
        return _LocalDelete(self._store, rec, self.marks, group.name)

    def close(self) -> None:
        """Nothing held open: the store opens a connection per call."""
