"""Where a named source's models live: its MLflow tracking and registry URIs."""

from __future__ import annotations

from shared.config.schema import ReactorConfig
from shared.errors import PermanentError


def source_uris(config: ReactorConfig, name: str) -> tuple[str, str | None]:
    """(tracking URI, registry URI) of the source ``name`` (its own, or its `registries:` entry's)."""
    source = config.sources.get(name)
    if source is None:
        raise PermanentError(f"no source named {name!r} in the config; configured: {', '.join(config.sources)}")
    if source.tracking_uri:
        return source.tracking_uri, source.registry_uri
    from shared.adapters.registry_uris import registry_uris

    return registry_uris(config.registries[str(source.registry)])
