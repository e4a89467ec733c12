"""View-models of the deployments (liveness and traffic) and of the last cleanup report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.api.ui.links import OutputLink, output_links
from shared.config.schema import ReactorConfig
from shared.deployments import list_managed_deployments
from shared.domain.actions import SUCCEEDED
from shared.domain.clock import parse_dt
from shared.ledger.base import Ledger
from shared.service.rollback import UNDEPLOY, undeploy_history

CLEANUP_HISTORY = 10


@dataclass(frozen=True)
class DeploymentRow:
    target: str
    kind: str
    model: str | None
    version: str | None
    state: str  # serving, starting, stopped (a local server that died) or the last deploy's status
    alive: bool | None  # local servers: the process answers; cloud targets: not probed (no network call)
    traffic: dict[str, int] | None
    links: list[OutputLink]
    configured: bool
    deployed_at: str | None


def _started(epoch: Any) -> str | None:
    return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="seconds") if epoch else None


def _local_outputs(item: dict[str, Any]) -> dict[str, Any]:
    base = str(item["url"]).rstrip("/")
    return {"scoring_url": f"{base}/invocations", "endpoint_url": base, "log_file": item.get("log_file")}


def deployment_rows(config: ReactorConfig, state_dir: Path, ledger: Ledger) -> list[DeploymentRow]:
    """`GET /api/deployments` (shared/deployments.py), with each cloud target's last successful deploy
    from the ledger: the version it serves, the traffic split and the endpoint it reported."""
    latest: dict[str, dict[str, Any]] = {}
    for action in ledger.list_actions(kind="deploy", status=SUCCEEDED, limit=1000):
        row = action.to_dict()
        if row["finished_at"] and row["finished_at"] > latest.get(action.target, {}).get("finished_at", ""):
            latest[action.target] = row
    rows: list[DeploymentRow] = []
    items = list_managed_deployments(config, state_dir)
    running = {item["target"] for item in items if "pid" in item}
    for name, cfg in sorted(config.deployments.items()):  # a local target that serves nothing (now) has a row too
        if cfg.kind == "local" and name not in running:
            state = "undeployed" if undeploy_history(ledger, name) else "nothing deployed yet"
            rows.append(DeploymentRow(name, "local", None, None, state, None, None, [], True, None))
    for item in items:
        target = item["target"]
        if "pid" in item:  # a local server the reactor runs
            alive = bool(item.get("alive"))
            rows.append(
                DeploymentRow(
                    target,
                    item["kind"],
                    item["model_name"],
                    item["model_version"],
                    item["status"] if alive else "stopped",
                    alive,
                    None,
                    output_links("deploy", _local_outputs(item)),
                    item["configured"],
                    _started(item.get("started_at")),
                )
            )
            continue
        last = latest.get(target)
        outputs = last["outputs"] if last else {}
        rows.append(
            DeploymentRow(
                target,
                item["kind"],
                last["model_name"] if last else None,
                last["model_version"] if last else None,
                "deployed" if last else "nothing deployed yet",
                None,
                outputs.get("traffic"),
                output_links("deploy", {k: v for k, v in outputs.items() if k != "traffic"}),
                True,
                last["finished_at"] if last else None,
            )
        )
    return rows


@dataclass(frozen=True)
class HistoryRow:
    """One change of what a target serves: a deploy or rollback that succeeded, or an undeploy."""

    at: str | None
    change: str  # deploy | rollback | undeploy
    model: str | None
    version: str | None
    action_id: str | None  # the action (deploy, rollback); None for an undeploy
    note: str


def target_history(ledger: Ledger, limit: int = 1000) -> dict[str, list[HistoryRow]]:
    """Per target, newest first, what it was made to serve and when (the versions stay after an undeploy)."""
    history: dict[str, list[HistoryRow]] = {}
    for kind in ("deploy", "rollback"):
        for action in ledger.list_actions(kind=kind, status=SUCCEEDED, limit=limit):
            a = action.to_dict()
            note = f"from v{a['params'].get('from_version')}" if kind == "rollback" else ""
            row = HistoryRow(a["finished_at"], kind, a["model_name"], a["model_version"], a["id"], note)
            history.setdefault(action.target, []).append(row)
    for report in ledger.list_reports(UNDEPLOY, limit=200):
        stopped = ", ".join(f"{s['model_name']} v{s['model_version']}" for s in report.get("stopped", []))
        row = HistoryRow(report.get("created_at"), "undeploy", None, None, None, f"stopped {stopped}")
        history.setdefault(str(report.get("target")), []).append(row)
    for rows in history.values():
        rows.sort(key=lambda r: parse_dt(r.at) or datetime.min.replace(tzinfo=UTC), reverse=True)
    return history


@dataclass(frozen=True)
class CleanupView:
    report: dict[str, Any] | None  # the chosen report (the last one unless asked for another)
    history: list[dict[str, Any]]  # the last few: id, time, dry run, counts


def cleanup_view(ledger: Ledger, report_id: str | None) -> CleanupView:
    reports = ledger.list_reports("cleanup", CLEANUP_HISTORY)
    chosen = next((r for r in reports if r["id"] == report_id), None) if report_id else None
    if chosen is None and not report_id:
        chosen = reports[0] if reports else None
    history = [{k: r.get(k) for k in ("id", "created_at", "dry_run", "provider", "counts", "run_id")} for r in reports]
    return CleanupView(chosen, history)
