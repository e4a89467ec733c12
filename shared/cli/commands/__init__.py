"""CLI sub-commands; each module adds its parsers."""

from shared.cli.commands import (
    approvals_cmd,
    cleanup_cmd,
    config_cmd,
    demo_cmd,
    deployments_cmd,
    inspect_cmd,
    operate_cmd,
    plan_cmd,
    poll_cmd,
    prune_cmd,
    rollback_cmd,
    serve_cmd,
    status_cmd,
)

MODULES = (
    serve_cmd,
    demo_cmd,
    inspect_cmd,
    operate_cmd,
    deployments_cmd,
    poll_cmd,
    cleanup_cmd,
    prune_cmd,
    config_cmd,
    plan_cmd,
    rollback_cmd,
    status_cmd,
    approvals_cmd,
)
