"""Operator view of deployments: what the reactor serves locally, and `undeploy` for local targets.

Called by the CLI (`modelops deployments`, `modelops undeploy`) and the ops API.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.adapters.local_deployments import LocalDeploymentStore, stop_deployment
from shared.adapters.local_routers import LocalRouterStore, route_id, stop_router
from shared.config.schema import ReactorConfig
from shared.errors import BadRequest
from shared.ledger.base import Ledger
from shared.service.rollback import UNDEPLOY


def list_managed_deployments(config: ReactorConfig, state_dir: Path) -> list[dict[str, Any]]:
    """Every deployment the reactor manages: local servers (with liveness) and configured cloud targets.

    Cloud targets are listed from configuration only (no network call); their deployed versions
    are in the ledger's deploy actions (`GET /api/actions?kind=deploy`).
    """
    rows: list[dict[str, Any]] = []
    routers = {router.target: router.to_dict() for router in LocalRouterStore(state_dir).list()}
    for rec in LocalDeploymentStore(state_dir).list():
        cfg = config.deployments.get(rec.target)
        router = routers.get(rec.target)
        rows.append(
            {
                **rec.to_dict(),
                "kind": cfg.kind if cfg else "local",
                "configured": cfg is not None,
                # the target's stable endpoint and this version's share of its traffic (mirror apart)
                "router_url": router["scoring_url"] if router else None,
                "weight": router["weights"].get(route_id(rec), 0) if router else None,
                "mirror": (router["mirror"] or {}).get("percent")
                if router and (router["mirror"] or {}).get("id") == route_id(rec)
                else None,
            }
        )
    for name, cfg in sorted(config.deployments.items()):
        if cfg.kind == "local":
            continue
        rows.append(
            {
                "target": name,
                "kind": cfg.kind,
                "configured": True,
                "workspace": f"{cfg.subscription_id}/{cfg.resource_group}/{cfg.workspace}",
                "endpoint": getattr(cfg, "endpoint", None) or getattr(cfg, "service", None),
            }
        )
    return rows


def undeploy_local(
    config: ReactorConfig, state_dir: Path, target: str, *, ledger: Ledger | None = None
) -> dict[str, Any]:
    """Stop every server of a local target (serving or half-started); idempotent. With a ledger, what
    it stopped is recorded there: the target's history (rollback, the audit page) then knows."""
    cfg = config.deployments.get(target)
    store = LocalDeploymentStore(state_dir)
    records = [rec for rec in store.list() if rec.target == target]
    if cfg is not None and cfg.kind != "local":
        raise BadRequest(f"target {target!r} is of kind {cfg.kind!r}; undeploy only handles local targets")
    if cfg is None and not records:
        known = sorted(n for n, c in config.deployments.items() if c.kind == "local")
        raise BadRequest(f"no local deployment target named {target!r}; known: {', '.join(known) or '(none)'}")
    stopped = [stop_deployment(store, rec) for rec in records]
    router = stop_router(state_dir, target)  # the target's stable endpoint goes with its servers
    result = {"target": target, "stopped": stopped, "count": len(stopped), "router_stopped": router}
    if ledger is not None and stopped:
        result["report_id"] = ledger.record_report(UNDEPLOY, result)
    return result
