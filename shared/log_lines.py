"""How a log record becomes a line: JSON (one object per line, safe by construction) or text, whose
fields are escaped so that no value (a model name, a sender's text) can start or fake a line."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

IDS = ("correlation_id", "event_id", "action_id")


class _SecondCache:
    """The formatted time of the current second, computed once per second, not once per line."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def formatted(self, formatter: logging.Formatter, record: logging.LogRecord, fmt: str | None) -> str:
        second = int(record.created)
        if second != self._second:
            when = formatter.converter(record.created)
            self._second, self._text = second, time.strftime(fmt or formatter.default_time_format, when)
        return self._text


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers (MODELOPS_LOG_FORMAT=json)."""

    def __init__(self) -> None:
        super().__init__()
        self._time = _SecondCache()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return self._time.formatted(self, record, datefmt)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({name: getattr(record, name) for name in IDS if getattr(record, name, None)})
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exception"] = record.exc_text
        return json.dumps(out, default=str)


# C0 and C1 controls (NUL, CR, LF, ESC...) and the bidi embeddings, overrides and isolates: in a text
# log line any of them could start a forged line or make one read as something else
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _SHORT.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """``text`` on one line: every control and bidi-override character written as its escape."""
    return _CONTROL.sub(_escaped, text) if _CONTROL.search(text) else text


class TextFormatter(logging.Formatter):
    """``time LEVEL logger [ids]: message``, one line per record whatever its fields hold; a
    traceback follows on lines of its own, each indented, so none can pass for a record."""

    def __init__(self) -> None:
        super().__init__()
        self._time = _SecondCache()

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        # the second's text, cached; the milliseconds as logging's own default format writes them
        return f"{self._time.formatted(self, record, datefmt)},{int(record.msecs):03d}"

    def format(self, record: logging.LogRecord) -> str:
        ids = [f"{name.removesuffix('_id')}={getattr(record, name)}" for name in IDS if getattr(record, name, None)]
        shown = f" [{' '.join(ids)}]" if ids else ""
        line = f"{self.formatTime(record)} {record.levelname} {record.name}{shown}: {record.getMessage()}"
        line = escape_controls(line)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        for block in (record.exc_text, record.stack_info):
            if block:
                line += "".join(f"\n    {escape_controls(part)}" for part in block.splitlines())
        return line
