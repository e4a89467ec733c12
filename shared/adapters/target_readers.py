"""Read-only views of what a deployment target serves, from the target itself (never the ledger):
a local target's scoring servers (alive, answering /ping), an online endpoint's traffic split, the
ACI/AKS web services of a target. The writers beside these are the deploy executors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Serving:
    """One thing a target serves: a deployment's name, its share of traffic (percent), whether it
    answers, and the key of the action that made it (where the target keeps it)."""

    name: str
    weight: int
    up: bool
    detail: str
    action_key: str | None = None


def read_local(state_dir: Path, target: str, scope: str) -> list[Serving]:
    """The servers a local target records as serving (for one source scope), each checked for life."""
    from shared.adapters.local_deployments import SERVING, LocalDeploymentStore, is_alive
    from shared.adapters.local_server import is_healthy

    out = []
    for rec in LocalDeploymentStore(state_dir).list():
        if rec.target != target or rec.source != scope or rec.status != SERVING:
            continue
        alive = is_alive(rec)
        up = alive and is_healthy(rec.url)
        why = "" if up else (" (process is gone)" if not alive else " (does not answer /ping)")
        detail = f"{rec.model_name} v{rec.model_version} at {rec.url}, pid {rec.pid}{why}"
        out.append(Serving(f"{rec.model_name}/{rec.model_version}", 100, up, detail, rec.action_key))
    return out


def read_online(cfg: Any, http: Any = None) -> list[Serving]:
    """An online endpoint's deployments that take traffic, the largest share first."""
    from shared.adapters.aml_online import OnlineEndpointsClient

    client = OnlineEndpointsClient(cfg, None, http)
    endpoint = client.endpoint(cfg.endpoint)
    if endpoint is None:
        return []
    out = []
    for name, weight in sorted(endpoint.traffic.items(), key=lambda item: -item[1]):
        if weight <= 0:
            continue
        deployment = client.deployment(cfg.endpoint, name)
        state = deployment.state if deployment else "missing"
        tags = deployment.tags if deployment else {}
        detail = f"{cfg.endpoint}/{name} at {weight}% ({state})"
        out.append(Serving(name, int(weight), state == "succeeded", detail, tags.get("modelops.action_key")))
    return out


def read_legacy(cfg: Any, target: str) -> list[Serving]:
    """A target's ACI/AKS web services, the newest first (each version is a service of its own)."""
    from shared.adapters.azureml_core_webservices import AzureMLCoreWebservices

    sdk = AzureMLCoreWebservices()
    services = sdk.services(sdk.workspace(cfg), target)
    services.sort(key=lambda s: str(getattr(s, "created_time", "")), reverse=True)
    out = []
    for service in services[:1]:  # the newest is the one a deploy made last
        state = str(getattr(service, "state", "") or "")
        out.append(Serving(service.name, 100, state.lower() == "healthy", f"web service {service.name} ({state})"))
    return out
