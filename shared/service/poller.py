"""The registry poller: for registries without webhooks (Unity Catalog, the Azure ML MLflow
registry), turn what changed since a stored watermark into the same events webhooks deliver.

New versions are found through registered models ordered by last update (creating a version
updates its model); aliases are compared with the snapshot kept beside the watermark, since
setting an alias updates nothing a registry can be queried by. The events carry the source's
name, so a change seen both here and by a webhook has one dedupe key and runs once.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any

from shared.config.schema import SourceConfig
from shared.domain import events as ev
from shared.service.reactor import Reactor

log = logging.getLogger("modelops.poller")


def poll_sources(reactor: Reactor, *, only: str | None = None) -> dict[str, Any]:
    """Poll every source with `poll: true` (or just ``only``); returns counts per source."""
    summary: dict[str, Any] = {}
    for name, source in reactor.config.sources.items():
        if (only and name != only) or (not only and not source.poll):
            continue
        try:
            summary[name] = poll_source(reactor, name, source)
        except Exception as exc:  # one unreachable registry must not stop the others
            log.exception("polling %s failed", name)
            summary[name] = {"error": f"{type(exc).__name__}: {exc}"}
    reactor.ledger.record_report("poll", summary)
    return summary


def poll_source(reactor: Reactor, name: str, source: SourceConfig) -> dict[str, int]:
    from shared.adapters.mlflow_registry_changes import RegistryChanges

    registry = RegistryChanges(*_uris(reactor, source))
    key = f"poller:{name}"
    state = json.loads(reactor.ledger.get_watermark(key) or "{}")
    now_ms = int(time.time() * 1000)
    since = int(state.get("since", now_ms - source.poll_lookback_seconds * 1000))
    known_aliases: dict[str, dict[str, str]] = state.get("aliases", {})
    counts = {"models": 0, "versions": 0, "aliases": 0, "accepted": 0, "duplicates": 0}
    newest = since
    aliases_now: dict[str, dict[str, str]] = {}
    for model in registry.models():
        counts["models"] += 1
        aliases_now[model.name] = model.aliases
        if model.last_updated_ms > since:
            newest = max(newest, model.last_updated_ms)
            for mv in registry.versions_since(model.name, since):
                counts["versions"] += 1
                created = _event(
                    name, ev.MODEL_VERSION_CREATED, mv.model, mv.version, mv.created_ms, tags=mv.tags, run_id=mv.run_id
                )
                _accept(reactor, counts, created)
        before = known_aliases.get(model.name, {})
        for alias, version in model.aliases.items():
            if before.get(alias) != version and (state or model.last_updated_ms > since):
                counts["aliases"] += 1
                _accept(
                    reactor, counts, _event(name, ev.MODEL_VERSION_ALIAS_SET, model.name, version, now_ms, alias=alias)
                )
    reactor.ledger.set_watermark(key, json.dumps({"since": newest, "aliases": aliases_now}))
    log.info("polled %s: %s", name, counts)
    return counts


def _accept(reactor: Reactor, counts: dict[str, int], event: ev.ModelEvent) -> None:
    result = reactor.accept(event)
    counts["duplicates" if result.duplicate else "accepted"] += 1


def _event(source: str, kind: str, model: str, version: str, at_ms: int, **extra: Any) -> ev.ModelEvent:
    return ev.ModelEvent(
        source=source,
        via=ev.POLLER,
        kind=kind,
        source_type=f"poll.{kind}",
        model_name=model,
        model_version=version,
        occurred_at=datetime.fromtimestamp(at_ms / 1000, UTC),
        **extra,
    )


def _uris(reactor: Reactor, source: SourceConfig) -> tuple[str, str | None]:
    if source.tracking_uri:
        return source.tracking_uri, source.registry_uri
    from shared.adapters.registry_uris import registry_uris

    return registry_uris(reactor.config.registries[str(source.registry)])
