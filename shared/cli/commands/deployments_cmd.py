"""`modelops deployments` and `modelops undeploy`: what the reactor serves, and stopping it locally."""

from __future__ import annotations

import argparse

from shared.cli.output import emit, model_of


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("deployments", help="list the deployments the reactor manages")
    p.set_defaults(func=deployments, reads_ledger=True)
    u = sub.add_parser("undeploy", help="stop every server of a local deployment target")
    u.add_argument("target", help="name of a `deployments:` entry of kind local")
    u.set_defaults(func=undeploy, reads_ledger=True)  # nothing recorded here: nothing it could stop


def deployments(args: argparse.Namespace) -> int:
    from shared.config.loader import load_config
    from shared.deployments import list_managed_deployments

    settings = args.settings
    rows = list_managed_deployments(load_config(settings.config_path, env=settings.config_env()), settings.state_dir)
    cells = [
        (
            r.get("target"),
            r.get("kind"),
            model_of(r),
            r.get("url") or r.get("endpoint") or "",
            r.get("status") or ("alive" if r.get("alive") else ""),
            r.get("router_url") or "",  # a local target's stable endpoint
            _share(r),
        )
        for r in rows
    ]
    emit(args.output, rows, cells, ["TARGET", "KIND", "MODEL", "URL", "STATUS", "STABLE URL", "TRAFFIC"])
    return 0


def undeploy(args: argparse.Namespace) -> int:
    from shared.bootstrap import Container
    from shared.deployments import undeploy_local

    reactor = Container(args.settings).reactor()
    result = undeploy_local(reactor.config, reactor.settings.state_dir, args.target, ledger=reactor.ledger)
    cells = [
        (s["target"], model_of(s), s["url"], s["pid"], "stopped" if s["was_running"] else "was not running")
        for s in result["stopped"]
    ]
    if args.output == "table" and not cells:
        print(f"{args.target}: no local deployment recorded, nothing to stop")
        return 0
    emit(args.output, result, cells, ["TARGET", "MODEL", "URL", "PID", "STATUS"])
    return 0


def _share(row: dict[str, object]) -> str:
    """A local version's share of its target's traffic through the router (and its mirrored share)."""
    if row.get("weight") is None:
        return ""
    mirror = f" (+{row['mirror']}% mirrored)" if row.get("mirror") else ""
    return f"{row['weight']}%{mirror}"
