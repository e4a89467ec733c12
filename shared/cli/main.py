"""`modelops`: run the local stack, inspect and drive the reactor."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from shared import telemetry
from shared.cli import commands
from shared.errors import ConfigError, ModelOpsError
from shared.settings import Settings


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelops", description=__doc__)
    parser.add_argument("--config", help="config file (default: $MODELOPS_CONFIG or the embedded default)")
    parser.add_argument("--state-dir", help="embedded state dir (default: $MODELOPS_STATE_DIR or .modelops)")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in commands.MODULES:
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        # the CLI flags are the same settings the Functions host reads from app settings
        args.settings = Settings.from_env().with_overrides(config_path=args.config, state_dir=args.state_dir)
        # correlation ids, secret redaction, JSON lines if MODELOPS_LOG_FORMAT=json, Azure Monitor if configured
        level = logging.DEBUG if args.verbose else logging.INFO
        telemetry.setup_logging(args.settings, level=level, stream=sys.stderr)
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModelOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
