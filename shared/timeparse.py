"""ISO 8601 durations (P7D, PT24H, P1W, P1DT12H) and timestamps, parsed strictly.

Years and months are refused: their length depends on the calendar, and a deletion deadline
must mean the same thing to everyone who reads the tag.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_DURATION = re.compile(
    r"^P(?!$)(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?!$)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_CALENDAR = re.compile(r"^P(?:\d+Y)|^P(?:[^T]*\d+M)")


def parse_duration(text: str) -> timedelta:
    """``P7D`` -> 7 days; raises ValueError naming the accepted forms."""
    value = text.strip().upper()
    match = _DURATION.match(value)
    if not match:
        if _CALENDAR.match(value):
            raise ValueError(f"{text!r} uses years or months, whose length varies; use weeks or days, e.g. P30D")
        raise ValueError(f"{text!r} is not an ISO 8601 duration; write e.g. P7D, PT24H or P1DT12H")
    parts = {k: float(v) for k, v in match.groupdict().items() if v}
    return timedelta(**parts)


def parse_timestamp(text: str) -> datetime:
    """An ISO date (``2025-01-31``) or date-time; naive values are taken as UTC."""
    value = text.strip()
    if len(value) == 10:
        day = date.fromisoformat(value)
        return datetime(day.year, day.month, day.day, tzinfo=UTC)
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_timestamp(moment: datetime) -> str:
    """UTC, second precision, ``Z`` suffix: the form written into mark tags."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
