"""How to fix what the message of a config error does not say: YAML syntax by its parser's problem,
an unreadable file by its cause, and the name that was probably meant."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


def yaml_fix(problem: str, context: str = "") -> str:
    """What to change at the line the YAML parser names, for the mistakes people make in a config."""
    if problem.startswith("duplicate key "):
        key = problem.removeprefix("duplicate key ")
        return f"keep one {key} key and move what is under this one into it (YAML keeps a single value per key)"
    if "'\\t'" in problem:
        return "indent with spaces: YAML does not allow tabs"
    if "expected ',' or '}'" in problem or "expected ',' or ']'" in problem:
        return 'quote a value that holds ":" or "," inside {...} or [...], or close the brackets'
    if "mapping values are not allowed" in problem:
        return "line this key up with the keys above it, or quote a value that holds ': '"
    if "end of stream" in problem or "quoted scalar" in context:
        return "close the quote or bracket that is opened above this line"
    return "check this line's indentation (spaces, lined up with its sibling keys); quote values holding ': ' or ' #'"


def unreadable_fix(exc: OSError, path: Path) -> str:
    if isinstance(exc, IsADirectoryError):
        return f"name the YAML file inside {path}, not the directory"
    if isinstance(exc, PermissionError):
        return f"make {path} readable by this user (e.g. chmod a+r {path}), or copy it somewhere it can read"
    return f"make {path} a readable YAML file"


def missing_file_fix(path: Path) -> str:
    return (
        f"check the path (relative paths start at {Path.cwd()}), or write a config there with "
        f"`modelops config init --path {path}`"
    )


def did_you_mean(given: str, choices: Iterable[str]) -> str:
    """`did you mean 'x'? ` for a name close to one of ``choices``, else nothing."""
    close = difflib.get_close_matches(given, list(choices), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""
