"""`modelops`: run the local stack, inspect and drive the reactor."""

# What every command gets from here: the global options (before or after its name), its own usage on
# a bad option, "did you mean" on a mistyped name, errors as exit codes (2: a usage error, a name or
# value that does not exist, a state dir without a ledger; 1: a failure), and, when its parser says
# `set_defaults(reads_ledger=True)`, the refusal of a state dir that holds no ledger (so a mistyped
# --state-dir is never answered by an empty listing and a new ledger).

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from shared import __version__, telemetry
from shared.cli import commands
from shared.cli.ledger_check import MissingLedger, require_ledger
from shared.cli.output import OUTPUTS
from shared.errors import BadRequest, ConfigError, ModelOpsError, NotFound
from shared.settings import Settings

GLOBAL_DEFAULTS: dict[str, Any] = {
    "config": None,
    "state_dir": None,
    "output": "table",
    "quiet": False,
    "verbose": False,
}


def add_global_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """The options every command takes, before or after its name (as `az` and `mlflow`).

    Below the top level their default is SUPPRESS: a sub-command's parser writes its values over
    the top level's, so it must only write the ones actually given.
    """
    default = GLOBAL_DEFAULTS.get if top else (lambda _name: argparse.SUPPRESS)
    group = parser.add_argument_group("global options (before or after the command)")
    add = group.add_argument
    add("--config", default=default("config"), help="config file (default: $MODELOPS_CONFIG or the embedded default)")
    add("--state-dir", default=default("state_dir"), help="state dir (default: $MODELOPS_STATE_DIR or .modelops)")
    add("-o", "--output", choices=OUTPUTS, default=default("output"), help="output format (default: table)")
    add("--json", dest="output", action="store_const", const="json", default=argparse.SUPPRESS, help="same as -o json")
    add("--quiet", action="store_true", default=default("quiet"), help="only warnings and errors on stderr")
    add("-v", "--verbose", action="store_true", default=default("verbose"), help="debug logging")


def _every_parser(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):  # aliases map to the same parser
                found += [child, *_every_parser(child)]
    return found


class Parser(argparse.ArgumentParser):
    """argparse with "did you mean" for a mistyped command or choice."""

    def error(self, message: str) -> NoReturn:
        if "invalid choice:" in message:
            message += _suggestion(message)
        super().error(message)


def _suggestion(message: str) -> str:
    # argparse's own text: "argument COMMAND: invalid choice: 'actoins' (choose from 'serve', 'demo', ...)"
    given, _, rest = message.partition("invalid choice: ")[2].partition(" (choose from ")
    choices = [c.strip(" '\"") for c in rest.rstrip(")").split(",")]
    close = difflib.get_close_matches(given.strip("'\""), choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="modelops", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"modelops {__version__}")
    add_global_options(parser, top=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for module in commands.MODULES:
        module.add_parser(sub)
    for child in _every_parser(parser):
        add_global_options(child, top=False)
        child.set_defaults(parser_=child)  # the innermost command's parser: its usage on a bad option
    return parser


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse as argparse does, but an unknown option is reported with the usage of the command it follows."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        command = getattr(args, "parser_", parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}{_option_suggestion(command, extra)}")
    return args


def _option_suggestion(parser: argparse.ArgumentParser, extra: list[str]) -> str:
    """`; did you mean '--status'?` for the first unknown option close to one the command takes."""
    options = [o for o in parser._option_string_actions if o.startswith("--")]
    for given in (e.split("=", 1)[0] for e in extra if e.startswith("--")):
        close = difflib.get_close_matches(given, options, n=1, cutoff=0.7)
        if close:
            return f"; did you mean {close[0]!r}?"
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    try:
        code = _run(args)
        sys.stdout.flush()
        return code
    except BrokenPipeError:  # `modelops events | head -1`: the reader has what it wanted
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the interpreter's final flush must not fail again
        return 0
    except (
        ConfigError,
        BadRequest,
        NotFound,
        MissingLedger,
    ) as exc:  # a wrong name or value given: a usage error, as argparse's
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModelOpsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    # the CLI flags are the same settings the Functions host reads from app settings
    args.settings = Settings.from_env().with_overrides(config_path=args.config, state_dir=args.state_dir)
    # correlation ids, secret redaction, JSON lines if MODELOPS_LOG_FORMAT=json, Azure Monitor if configured
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    telemetry.setup_logging(args.settings, level=level, stream=sys.stderr)
    if getattr(args, "reads_ledger", False):
        require_ledger(args.settings)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
