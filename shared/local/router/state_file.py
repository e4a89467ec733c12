"""The router's view of its state file: checked on every request, read and parsed only when it changed.

A `stat` (one system call) says whether the file may have changed: its inode, size, mtime and ctime.
That alone misses one case: the reactor replaces the file (`os.replace`), the old inode is freed, and
a second write within one tick of the kernel's coarse file clock may get the same inode, size and
times. So, like git's "racily clean" index entries, a file whose mtime is less than ``RACY_S`` before
the check is read again each time, and its bytes are compared (parsed only when they differ); once it
is older than that, a later write cannot carry the same mtime, and the stat is enough.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from shared.adapters.router_state import RouterState, parse_state

RACY_S = 1.0  # far above any file system's timestamp tick (coarse clock: 1-10 ms)
_Key = tuple[int, int, int, int]


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._key: _Key | None = None  # the stat of the file last read
        self._racy = True  # that file was written too recently for its stat to tell a change
        self._raw: bytes | None = None
        self._state: RouterState | None = None

    def current(self) -> RouterState | None:
        """The state in the file now; the last good one while the file cannot be read or parsed."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            self._key, self._raw, self._state = None, None, None
            return None
        except OSError:
            return self._state
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key == self._key and not self._racy:
            return self._state
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            self._key, self._raw, self._state = None, None, None
            return None
        except OSError:
            return self._state
        # the racy window is judged from the stat: a write after it shows as another stat next time
        self._key, self._racy = key, time.time_ns() - st.st_mtime_ns < RACY_S * 1e9
        if raw != self._raw:
            fresh = parse_state(raw)
            if fresh is None:  # a file we cannot parse: keep routing by the last good one
                self._key = None
                return self._state
            self._raw, self._state = raw, fresh
        return self._state
