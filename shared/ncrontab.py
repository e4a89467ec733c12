"""NCRONTAB, the six-field cron of Azure Functions timers (`{second} {minute} {hour} {day} {month}
{day-of-week}`), read the way the Functions host reads it, so that `modelops serve` fires a timer
when Azure would. Fields take `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n` or `a-b/n`;
day-of-week 0-6 from Sunday (learn.microsoft.com, "Timer trigger for Azure Functions", NCRONTAB
expressions). Names (MON, JAN) are not supported and are refused with the field named.
"""

from __future__ import annotations

from datetime import datetime, timedelta

FIELDS = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 6))
SEARCH_MINUTES = 366 * 24 * 60 * 4  # a schedule that never fires within four years is refused


def parse(expression: str) -> tuple[frozenset[int], ...]:
    parts = expression.split()
    if len(parts) != 6:
        raise ValueError(f"{expression!r} has {len(parts)} fields; NCRONTAB needs 6, e.g. '0 */5 * * * *'")
    return tuple(_field(part, *spec) for part, spec in zip(parts, FIELDS, strict=True))


def _field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        body, _, step_text = item.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if body == "*":
                start, end = low, high
            elif "-" in body:
                start, end = (int(x) for x in body.split("-", 1))
            else:
                start = end = int(body)
        except ValueError:
            raise ValueError(f"{name} field {item!r} is not a number, range, list or step") from None
        if step < 1 or not (low <= start <= end <= high):
            raise ValueError(f"{name} field {item!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


def next_fire(expression: str, after: datetime) -> datetime:
    """The first time strictly after ``after`` that the schedule fires (same timezone as ``after``)."""
    seconds, minutes, hours, days, months, weekdays = parse(expression)
    minute = after.replace(second=0, microsecond=0)
    for _ in range(SEARCH_MINUTES):
        weekday = (minute.weekday() + 1) % 7  # Python's Monday=0; NCRONTAB's Sunday=0
        if (
            minute.month in months
            and minute.day in days
            and weekday in weekdays
            and minute.hour in hours
            and minute.minute in minutes
        ):
            for second in sorted(seconds):
                fire = minute.replace(second=second)
                if fire > after:
                    return fire
        minute += timedelta(minutes=1)
    raise ValueError(f"{expression!r} never fires")
