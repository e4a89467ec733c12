"""Progress of a batch: a plain message for the ledger/logs, a carriage-return bar on a terminal.

Engines report `(rows_done, rows_total)`; executors turn that into `rows_message(...)` and hand
it to `ctx.progress`. `TerminalProgress` is a `ctx.progress` callable: it recognises those
messages and draws a bar, and prints any other message as it is.
"""

from __future__ import annotations

import re
import sys
import time
from typing import TextIO

_ROWS = re.compile(r"^scored (?P<done>[\d,]+)(?: of (?P<total>[\d,]+))? rows")


def rows_message(done: int, total: int | None, seconds: float) -> str:
    rate = f", {done / seconds:,.0f} rows/s" if seconds > 0 else ""
    if total:
        return f"scored {done:,} of {total:,} rows ({100 * done / total:.0f}%{rate})"
    return f"scored {done:,} rows ({rate.removeprefix(', ') or 'starting'})"


class TerminalProgress:
    """`ctx.progress` for the CLI: one redrawn line on a TTY, throttled plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, *, width: int = 30, min_interval: float = 0.1) -> None:
        self._stream = stream or sys.stderr
        self._width = width
        self._tty = bool(getattr(self._stream, "isatty", lambda: False)())
        # a log file gets a line every few seconds, not one per batch
        self._min_interval = min_interval if self._tty else max(min_interval, 5.0)
        self._last = 0.0
        self._pending_newline = False

    def __call__(self, message: str) -> None:
        now = time.monotonic()
        final = self._is_final(message)
        if not final and now - self._last < self._min_interval:
            return
        self._last = now
        line = self.render(message)
        if self._tty:
            self._stream.write("\r" + line + "\x1b[K")
            self._pending_newline = True
        else:
            self._stream.write(line + "\n")
        self._stream.flush()

    def render(self, message: str) -> str:
        match = _ROWS.match(message)
        if not match or not match.group("total"):
            return message
        done = int(match.group("done").replace(",", ""))
        total = int(match.group("total").replace(",", ""))
        filled = min(self._width, self._width * done // max(total, 1))
        bar = "#" * filled + "-" * (self._width - filled)
        return f"[{bar}] {message}"

    def close(self) -> None:
        """End the redrawn line so the next output starts on its own line."""
        if self._pending_newline:
            self._stream.write("\n")
            self._stream.flush()
            self._pending_newline = False

    def __enter__(self) -> TerminalProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _is_final(message: str) -> bool:
        match = _ROWS.match(message)
        return bool(match and match.group("total") and match.group("done") == match.group("total"))
