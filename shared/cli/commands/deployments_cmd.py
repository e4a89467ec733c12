"""`modelops deployments` and `modelops undeploy`: what the reactor serves, and stopping it locally."""

from __future__ import annotations

import argparse

from shared.cli.output import emit_json, table


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("deployments", help="list the deployments the reactor manages")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=deployments)
    u = sub.add_parser("undeploy", help="stop every server of a local deployment target")
    u.add_argument("target", help="name of a `deployments:` entry of kind local")
    u.set_defaults(func=undeploy)


def deployments(args: argparse.Namespace) -> int:
    from shared.config.loader import load_config
    from shared.deployments import list_managed_deployments

    settings = args.settings
    rows = list_managed_deployments(load_config(settings.config_path, env=settings.config_env()), settings.state_dir)
    if args.json:
        emit_json(rows)
        return 0
    print(
        table(
            [
                (
                    r.get("target"),
                    r.get("kind"),
                    _model(r),
                    r.get("url") or r.get("endpoint") or "",
                    r.get("status") or ("alive" if r.get("alive") else ""),
                )
                for r in rows
            ],
            ["TARGET", "KIND", "MODEL", "URL", "STATUS"],
        )
    )
    return 0


def undeploy(args: argparse.Namespace) -> int:
    from shared.config.loader import load_config
    from shared.deployments import undeploy_local

    settings = args.settings
    result = undeploy_local(
        load_config(settings.config_path, env=settings.config_env()), settings.state_dir, args.target
    )
    emit_json(result)
    return 0


def _model(row: dict[str, object]) -> str:
    name, version = row.get("model_name"), row.get("model_version")
    return f"{name}/{version}" if name else ""
