"""Random identifiers, cheaply: a process-private `random` generator, not a system call each.

`uuid.uuid4()` reads os.urandom on every call; under load that system call was ~7% of the intake
thread's time (two per webhook: the record id and the correlation id). These ids must be unique,
not secret. The generator is our own instance, seeded from the OS at import and again in every
forked child: the global `random` one is shared with any code that calls `random.seed()` (the
hypothesis suite seeds it per example, and the ids of two examples then collided).
"""

from __future__ import annotations

import os
import random

_generator = random.Random(os.urandom(32))  # noqa: S311 - unique, not secret
os.register_at_fork(after_in_child=lambda: _generator.seed(os.urandom(32)))


def random_hex(length: int = 32) -> str:
    """``length`` lowercase hex digits (4 random bits each)."""
    return f"{_generator.getrandbits(length * 4):0{length}x}"
