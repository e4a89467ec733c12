"""The source table: for each kind of source, how its deliveries are verified and parsed, and
which configured source a delivery belongs to.

Entry points (HTTP routes, the Event Grid trigger, `modelops plan`) look a source up here and
call its kind's verifier and parser with the source's name; nothing else knows a kind by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.config.schema import ReactorConfig
from shared.domain import events as ev
from shared.errors import BadRequest, NotFound
from shared.ingest.databricks_hooks import delivery_id_of, parse_databricks
from shared.ingest.eventgrid import GridEvent, parse_delivery, to_model_events
from shared.ingest.mlflow_hooks import parse_mlflow
from shared.ingest.signatures import verify_databricks, verify_mlflow

# (secret, request headers, raw body, allowed clock skew in s) -> the delivery id, if the scheme has one
Verifier = Callable[[str, Mapping[str, str], bytes, int], str | None]
# (decoded JSON body, source name, delivery id) -> the events it carries
Parser = Callable[[Any, str, str | None], list[ev.ModelEvent]]


@dataclass(frozen=True)
class SourceKind:
    """What one kind of source sends and how it is checked."""

    kind: str
    parse: Parser | None  # None: the kind sends no webhooks (only the poller watches it)
    verify: Verifier | None = None  # None: deliveries are not signed (Event Grid: the function key guards them)
    secret_setting: str | None = None  # the app setting holding the secret when a source names none
    unsigned_header: str | None = None  # header carrying the delivery id when no secret is set
    body_id: Callable[[Any], str | None] | None = None  # the delivery id a body carries (Databricks)

    def delivery_id(self, headers: Mapping[str, str]) -> str | None:
        return headers.get(self.unsigned_header) if self.unsigned_header else None

    def body_delivery_id(self, payload: Any) -> str | None:
        return self.body_id(payload) if self.body_id else None


def _verify_mlflow(secret: str, headers: Mapping[str, str], body: bytes, skew: int) -> str | None:
    return verify_mlflow(secret, headers, body, max_skew_seconds=skew)


def _verify_databricks(secret: str, headers: Mapping[str, str], body: bytes, skew: int) -> str | None:
    verify_databricks(secret, headers, body)
    return None


def _parse_mlflow(payload: Any, source: str, delivery_id: str | None) -> list[ev.ModelEvent]:
    return [parse_mlflow(payload, delivery_id, source=source)]


def _parse_databricks(payload: Any, source: str, delivery_id: str | None) -> list[ev.ModelEvent]:
    return [parse_databricks(payload, source=source)]


def parse_grid_events(payload: Any, source: str, delivery_id: str | None = None) -> list[ev.ModelEvent]:
    """An Event Grid delivery (either schema), every event read as the named azureml source's."""
    return [event for grid in parse_delivery(payload).events for event in to_model_events(grid, source=source)]


SOURCE_TABLE: dict[str, SourceKind] = {
    "mlflow": SourceKind(
        "mlflow",
        _parse_mlflow,
        _verify_mlflow,
        secret_setting="MLFLOW_WEBHOOK_SECRET",
        unsigned_header="X-MLflow-Delivery-Id",
    ),
    "databricks": SourceKind(
        "databricks",
        _parse_databricks,
        _verify_databricks,
        secret_setting="DATABRICKS_WEBHOOK_SECRET",
        body_id=delivery_id_of,
    ),
    "azureml": SourceKind("azureml", parse_grid_events),
    "databricks-uc": SourceKind("databricks-uc", None),
}


def source_kind(config: ReactorConfig, name: str) -> SourceKind:
    """The kind of a configured source; a source not configured is a 404 naming the choices."""
    source = config.sources.get(name)
    if source is None:
        raise NotFound(
            f"no source named {name!r}; configured sources: {', '.join(config.sources) or '(none)'}", field="source"
        )
    return SOURCE_TABLE[str(source.kind)]


def webhook_kind(config: ReactorConfig, name: str) -> SourceKind:
    """The kind of a source that posts signed webhooks to `/api/hooks/{name}` (mlflow, databricks)."""
    kind = source_kind(config, name)
    if kind.parse is None:
        raise BadRequest(
            f"source {name!r} is of kind {kind.kind}, which sends no webhooks (Unity Catalog has no registry "
            "webhooks): the poller watches it (`poll: true`)",
            field="source",
        )
    if kind.verify is None:
        raise BadRequest(
            f"source {name!r} is of kind {kind.kind}: its events come through Event Grid, posted to "
            "/api/hooks/eventgrid (or the Event Grid trigger) and routed by their workspace",
            field="source",
        )
    return kind


def webhook_sources(config: ReactorConfig) -> list[str]:
    """The configured sources `/api/hooks/{source}` answers for."""
    return [name for name, source in config.sources.items() if SOURCE_TABLE[str(source.kind)].verify is not None]


def single_source(config: ReactorConfig, kind: str) -> str:
    """The source a kind's own route (`/api/hooks/mlflow`...) means: the one source of that kind.

    With none configured it is the kind's own name (an event whose models have no location then
    fails its actions, as before named sources); with several the route cannot choose.
    """
    names = config.sources_of_kind(kind)
    if len(names) > 1:
        raise BadRequest(
            f"{len(names)} sources are of kind {kind} ({', '.join(names)}); post to /api/hooks/<source> "
            f"instead, one of: {', '.join(f'/api/hooks/{n}' for n in names)}",
            field="path",
        )
    return names[0] if names else kind


@dataclass(frozen=True)
class UnsignedSource:
    """A signed webhook route whose secret is not set: refused in Azure (or when the source names its
    own setting), accepted unsigned otherwise (a local convenience)."""

    name: str
    setting: str
    refused: bool

    @property
    def notice(self) -> str:
        if self.refused:
            return f"{self.setting} is not set: every webhook delivery to source {self.name} is refused (401)"
        return (
            f"{self.setting} is not set: accepting unsigned webhooks for source {self.name} "
            "(local only: in Azure they are refused)"
        )


def unsigned_sources(
    config: ReactorConfig, secret: Callable[[str], str | None], *, in_azure: bool
) -> list[UnsignedSource]:
    """Every signed webhook route whose secret ``secret(setting)`` does not hold: the configured webhook
    sources, and a kind's own route when no source of that kind is configured."""
    routes = [(name, SOURCE_TABLE[str(config.sources[name].kind)]) for name in webhook_sources(config)]
    routes += [(kind, SOURCE_TABLE[kind]) for kind in ("mlflow", "databricks") if not config.sources_of_kind(kind)]
    out = []
    for name, kind in routes:
        setting = str(secret_setting(config, name, kind))
        if not secret(setting):
            out.append(UnsignedSource(name, setting, in_azure or setting != kind.secret_setting))
    return out


def secret_setting(config: ReactorConfig, name: str, kind: SourceKind) -> str | None:
    """The app setting holding a source's webhook secret: its own `secret_setting`, else its kind's."""
    source = config.sources.get(name)
    return (source.secret_setting if source is not None else None) or kind.secret_setting


def grid_source(config: ReactorConfig, grid: GridEvent) -> tuple[str | None, str]:
    """The azureml source an Event Grid event belongs to, by its workspace (`topic` / CloudEvents
    `source`, compared case-insensitively), and why none when there is none.

    A single azureml source that names no workspace takes every event (the one-workspace configs).
    """
    ids = config.workspace_ids()
    topic = (grid.topic or "").rstrip("/").lower()
    for name, workspace_id in ids.items():
        if workspace_id is not None and workspace_id == topic:
            return name, ""
    catch_all = [name for name, workspace_id in ids.items() if workspace_id is None]
    if len(ids) == 1 and catch_all:
        return catch_all[0], ""
    if not ids:
        return "azureml", ""  # no azureml source configured: as before named sources
    known = ", ".join(f"{name} ({workspace_id})" for name, workspace_id in ids.items())
    return None, f"no azureml source has workspace {grid.topic or '(no topic)'}; configured: {known}"


def unmatched_grid_event(grid: GridEvent, reason: str) -> ev.ModelEvent:
    """An Event Grid event from a workspace no source names: acknowledged, recorded as ignored."""
    return ev.ModelEvent(
        source="eventgrid",
        via=ev.EVENTGRID,
        kind=None,
        source_type=grid.type,
        delivery_id=grid.id,
        occurred_at=grid.time,
        subject=grid.subject,
        raw={"id": grid.id, "type": grid.type, "subject": grid.subject, "topic": grid.topic, "data": grid.data},
        ignored_reason=reason,
    )


def grid_events(config: ReactorConfig, grid: GridEvent) -> list[ev.ModelEvent]:
    """An Event Grid event as its workspace's source's events (one per model of a ModelDeployed)."""
    name, reason = grid_source(config, grid)
    if name is None:
        return [unmatched_grid_event(grid, reason)]
    return to_model_events(grid, source=name)
