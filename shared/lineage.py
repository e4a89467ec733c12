"""Lineage of copied model versions, and the loop protection it gives across sources.

A register copy is tagged with where it came from (shared/executors/register.py `lineage_tags`):
`modelops.source` names the source it was copied out of, `modelops.rule` the rule that asked, and
`modelops.origins` every source along its lineage, oldest first (`team-a,team-b`: copied out of team-a,
then that copy out of team-b). A version is never copied into a registry where one of its origins keeps
its models, whichever rule asks: the A -> B copy's own event from B is not copied back into A, and nor
is a copy of that copy, from C. Where a source keeps its models is read from the config: its
`registry:` entry, its tracking/registry URI, its workspace; a registry entry is the same place when it
is that entry or names the same URI or workspace.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit, urlunsplit

from shared.config.registries import AzureMLRegistry, AzureMLSharedRegistry, DatabricksRegistry, MlflowRegistry
from shared.config.schema import ReactorConfig

SOURCE_TAG = "modelops.source"
RULE_TAG = "modelops.rule"
ORIGINS_TAG = "modelops.origins"
KEY_TAG = "modelops.action_key"  # the action that made a copy: a retry finds its own copy by it


def origins(tags: Mapping[str, str]) -> list[str]:
    """The sources a version was copied through, oldest first (a copy tagged before `modelops.origins`
    existed names its one source in `modelops.source`)."""
    chain = tags.get(ORIGINS_TAG)
    if chain:
        return [name for name in chain.split(",") if name]
    source = tags.get(SOURCE_TAG)
    return [source] if source else []


def copy_origins(source_tags: Mapping[str, str], source: str) -> str:
    """The `modelops.origins` tag of a copy of a version (its tags given) out of ``source``."""
    chain = origins(source_tags)
    return ",".join(chain if source in chain else [*chain, source])


def loop_back(config: ReactorConfig, registry: str, tags: Mapping[str, str]) -> str | None:
    """Why copying a version with these tags into ``registry`` would copy it back where it came from,
    or None when it would not."""
    chain = origins(tags)
    if not chain:
        return None
    target = registry_places(config, registry)
    for origin in chain:
        if target & source_places(config, origin):
            lineage = " -> ".join(chain)
            return (
                f"this version is a copy from source {origin} (lineage {lineage}); register: {registry} "
                f"would copy it back into {origin}'s registry (loop protection)"
            )
    return None


def registry_places(config: ReactorConfig, name: str) -> set[str]:
    """What identifies the place a `registries:` entry holds models in: its name and its location."""
    places = {f"registry:{name}"}
    entry = config.registries.get(name)
    if isinstance(entry, MlflowRegistry):
        places.add(_uri_place(entry.registry_uri or entry.tracking_uri))
    elif isinstance(entry, DatabricksRegistry):
        places.add(f"{entry.kind}:{entry.host.lower()}")
    elif isinstance(entry, AzureMLRegistry):
        places.add(_workspace_place(entry.subscription_id, entry.resource_group, entry.workspace))
    elif isinstance(entry, AzureMLSharedRegistry):
        places.add(f"azureml-registry:{entry.registry_name.lower()}")
    return places


def source_places(config: ReactorConfig, name: str) -> set[str]:
    """The places a source's models live in (none for a source the config does not name)."""
    source = config.sources.get(name)
    if source is None:
        return set()
    places: set[str] = set()
    if source.registry:
        places |= registry_places(config, source.registry)
    if source.tracking_uri:
        places.add(_uri_place(source.registry_uri or source.tracking_uri))
    if source.kind == "azureml":
        workspace = source.workspace_resource_id(config.registries)
        if workspace:
            places.add(f"workspace:{workspace}")
    return places


def _workspace_place(subscription_id: str, resource_group: str, workspace: str) -> str:
    return (
        f"workspace:/subscriptions/{subscription_id}/resourcegroups/{resource_group}"
        f"/providers/microsoft.machinelearningservices/workspaces/{workspace}"
    ).lower()


def _uri_place(uri: str) -> str:
    """An MLflow registry URI without credentials, its scheme and host lowercased, no trailing slash."""
    parts = urlsplit(uri.strip())
    if not parts.netloc:  # sqlite:///path, a bare `databricks`
        return "uri:" + uri.strip().rstrip("/")
    host = (parts.hostname or "").lower() + (f":{parts.port}" if parts.port else "")
    return "uri:" + urlunsplit((parts.scheme.lower(), host, parts.path.rstrip("/"), parts.query, ""))
