"""Random identifiers, cheaply: the process's `random` generator, not a system call each.

`uuid.uuid4()` reads os.urandom on every call; under load that system call was ~7% of the intake
thread's time (two per webhook: the record id and the correlation id). These ids must be unique,
not secret: the global `random` instance is seeded from the OS at import and reseeded in every
forked child by the random module itself (os.register_at_fork).
"""

from __future__ import annotations

import random


def random_hex(length: int = 32) -> str:
    """``length`` lowercase hex digits (4 random bits each)."""
    return f"{random.getrandbits(length * 4):0{length}x}"  # noqa: S311 - unique, not secret
