"""Just enough of Bicep's syntax to read our own templates in a test: declarations and their bodies.

The Bicep compiler (a .NET tool, `az bicep`) cannot be installed here, so the test reads the text:
comments and strings are skipped while braces and brackets are balanced, which is all it takes to
cut a `resource`/`param` declaration and find `key: value` lines inside one body.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_DECLARATION = re.compile(r"^(resource|module)\s+(\w+)\s+'([^']+)'\s*(?:existing\s*)?=\s*", re.M)
_PARAM = re.compile(r"^param\s+(\w+)\s+(\w+)(?:\s*=\s*(.+))?$", re.M)


def strip_comments(text: str) -> str:
    """The text with // and /* */ comments blanked (strings kept: a URL's // is not a comment)."""
    out, i, n = [], 0, len(text)
    while i < n:
        if text[i] == "'":
            j = _string_end(text, i)
            out.append(text[i:j])
            i = j
        elif text.startswith("//", i):
            while i < n and text[i] != "\n":
                i += 1
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index after the single-quoted string at ``start`` (escapes: \\' ; interpolation ${...} may nest)."""
    i, depth = start + 1, 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if c == "}" and depth:
            depth -= 1
        elif c == "'" and depth:
            i = _string_end(text, i)
            continue
        elif c == "'":
            return i + 1
        i += 1
    raise ValueError(f"unterminated string at {start}")


def block_at(text: str, start: int) -> str:
    """The balanced {...} or [...] starting at the first opener at or after ``start``."""
    i = min(p for p in (text.find("{", start), text.find("[", start)) if p >= 0)
    depth, j = 0, i
    while j < len(text):
        c = text[j]
        if c == "'":
            j = _string_end(text, j)
            continue
        if c in "{[":
            depth += 1
        elif c in "}]":
            depth -= 1
            if depth == 0:
                return text[i : j + 1]
        j += 1
    raise ValueError("unbalanced block")


@dataclass(frozen=True)
class Declaration:
    kind: str  # resource | module
    symbol: str
    type: str  # 'Microsoft.Web/sites@2024-04-01' or a module path
    body: str

    def value(self, key: str) -> str:
        """The text after ``key:`` on its (first) line in the body."""
        match = re.search(rf"^\s*{re.escape(key)}:\s*(.+?)\s*$", self.body, re.M)
        if match is None:
            raise KeyError(f"{self.symbol} has no {key}")
        return match.group(1)

    def block(self, key: str) -> str:
        match = re.search(rf"^\s*{re.escape(key)}:\s*", self.body, re.M)
        if match is None:
            raise KeyError(f"{self.symbol} has no {key}")
        return block_at(self.body, match.end())


class BicepFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.text = strip_comments(path.read_text())

    def declarations(self) -> list[Declaration]:
        found = []
        for match in _DECLARATION.finditer(self.text):
            found.append(Declaration(match.group(1), match.group(2), match.group(3), block_at(self.text, match.end())))
        return found

    def resource(self, symbol: str) -> Declaration:
        [found] = [d for d in self.declarations() if d.symbol == symbol]
        return found

    def of_type(self, prefix: str) -> list[Declaration]:
        return [d for d in self.declarations() if d.kind == "resource" and d.type.startswith(prefix + "@")]

    def params(self) -> dict[str, str | None]:
        return {m.group(1): m.group(3) for m in _PARAM.finditer(self.text)}

    def variable(self, name: str) -> str:
        match = re.search(rf"^var\s+{re.escape(name)}\s*=\s*", self.text, re.M)
        if match is None:
            raise KeyError(name)
        rest = self.text[match.end() :]
        return block_at(self.text, match.end()) if rest[:1] in "{[" else rest.splitlines()[0].strip()
