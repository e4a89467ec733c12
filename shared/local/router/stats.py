"""Per-route request figures the router keeps for the judge: counts, errors and a bounded latency
histogram (64 geometric buckets from 0.25 ms, each 25% wider: ~5 minutes at the top), per window.

Memory is bounded whatever the traffic: a fixed array per route, and only the current and the
previous window are kept. Standard library only (the router process imports it).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

_FIRST_MS = 0.25
_GROWTH = 1.25
BOUNDS_MS: tuple[float, ...] = tuple(_FIRST_MS * _GROWTH**i for i in range(64))  # upper bound of each bucket


@dataclass
class RouteFigures:
    requests: int = 0
    errors_5xx: int = 0
    errors_4xx: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(BOUNDS_MS) + 1))  # last: beyond the top

    def add(self, status: int, seconds: float) -> None:
        self.requests += 1
        if status >= 500:
            self.errors_5xx += 1
        elif status >= 400:
            self.errors_4xx += 1
        self.buckets[bisect.bisect_left(BOUNDS_MS, seconds * 1000.0)] += 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors_5xx": self.errors_5xx,
            "errors_4xx": self.errors_4xx,
            "latency_p50_ms": percentile_ms(self.buckets, 0.50),
            "latency_p99_ms": percentile_ms(self.buckets, 0.99),
        }


def percentile_ms(buckets: list[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (an over-estimate by at most 25%)."""
    total = sum(buckets)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for index, count in enumerate(buckets):
        seen += count
        if seen >= rank:
            return round(BOUNDS_MS[min(index, len(BOUNDS_MS) - 1)], 3)
    return round(BOUNDS_MS[-1], 3)


class Figures:
    """Route figures by window; the router records, the ``/-/stats`` route reads."""

    def __init__(self) -> None:
        self._windows: dict[str, dict[str, RouteFigures]] = {}

    def record(self, window: str, route_id: str, status: int, seconds: float) -> None:
        routes = self._windows.get(window)
        if routes is None:
            # a new window: keep the one before it (a judge may still read it), drop older ones
            for old in list(self._windows)[:-1]:
                del self._windows[old]
            routes = self._windows[window] = {}
        figures = routes.get(route_id)
        if figures is None:
            figures = routes[route_id] = RouteFigures()
        figures.add(status, seconds)

    def to_dict(self) -> dict[str, Any]:
        return {
            window: {route_id: figures.to_dict() for route_id, figures in routes.items()}
            for window, routes in self._windows.items()
        }
