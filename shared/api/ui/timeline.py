"""The timeline of one event's chain as a small inline SVG, drawn on the server (no script, no asset).

One row per action, in chain order: a thin line while it waited to be claimed, a bar per attempt
coloured by how it ended, a dot when it finished; an arrow from each action to the one it ran after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from shared.api.ui.attempts import Attempt

COLOURS = {
    "succeeded": "#2e7d32",
    "failed": "#c62828",
    "retry": "#ef6c00",
    "waiting": "#1565c0",
    "running": "#1565c0",
    "queued": "#9e9e9e",
    "skipped": "#9e9e9e",
    "lease expired": "#6a1b9a",
}
WIDTH, LABEL, ROW, TOP, RIGHT = 760, 230, 30, 34, 16


@dataclass(frozen=True)
class Lane:
    """One action as the timeline draws it."""

    id: str
    label: str
    status: str
    planned_at: datetime | None
    finished_at: datetime | None
    attempts: tuple[Attempt, ...]
    after: str | None = None


def _seconds(span: float) -> str:
    if span < 1:
        return f"{span * 1000:.0f} ms"
    return f"{span:.1f} s" if span < 120 else f"{span / 60:.1f} min"


def timeline_svg(received_at: datetime | None, lanes: list[Lane], now: datetime) -> str:
    """The SVG markup (every text escaped); an event without actions gets a single marker."""
    instants = [t for t in (received_at, *(x for lane in lanes for x in _instants(lane))) if t is not None]
    start = min(instants, default=now)
    end = max([*instants, start])
    if any(lane.status in ("queued", "running", "waiting") for lane in lanes):
        end = max(end, now)
    span = max((end - start).total_seconds(), 0.001)
    plot = WIDTH - LABEL - RIGHT

    def x(moment: datetime | None) -> float:
        at = moment or end
        return LABEL + plot * max(0.0, min(1.0, (at - start).total_seconds() / span))

    height = TOP + ROW * max(1, len(lanes)) + 24
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" aria-label="timeline of the event and its actions">',
        f'<text x="{LABEL}" y="14" class="axis">0</text>',
        f'<text x="{WIDTH - RIGHT}" y="14" class="axis" text-anchor="end">{escape(_seconds(span))}</text>',
        f'<line x1="{LABEL}" y1="20" x2="{WIDTH - RIGHT}" y2="20" class="rule"/>',
    ]
    if received_at is not None:
        rx = x(received_at)
        out.append(
            f'<path d="M{rx:.1f} 20 l5 6 l-5 6 l-5 -6 z" class="received"><title>event received '
            f"{escape(received_at.isoformat())}</title></path>"
        )
    rows = {lane.id: i for i, lane in enumerate(lanes)}
    for i, lane in enumerate(lanes):
        y = TOP + ROW * i + ROW / 2
        out.append(f'<text x="8" y="{y + 4:.1f}" class="lane">{escape(lane.label[:34])}</text>')
        first = lane.attempts[0].started_at if lane.attempts else None
        out.append(
            f'<line x1="{x(lane.planned_at):.1f}" y1="{y:.1f}" x2="{x(first or lane.finished_at or now):.1f}" '
            f'y2="{y:.1f}" class="wait"><title>planned, waiting to be claimed</title></line>'
        )
        for attempt in lane.attempts:
            x0, x1 = x(attempt.started_at), x(attempt.ended_at or now)
            colour = COLOURS.get(attempt.outcome, "#616161")
            tip = f"attempt {attempt.number}: {attempt.outcome}" + (f" - {attempt.error}" if attempt.error else "")
            out.append(
                f'<rect x="{x0:.1f}" y="{y - 7:.1f}" width="{max(x1 - x0, 3):.1f}" height="14" rx="3" '
                f'fill="{colour}" class="attempt"><title>{escape(tip)}</title></rect>'
            )
        if lane.finished_at is not None:
            colour = COLOURS.get(lane.status, "#616161")
            out.append(
                f'<circle cx="{x(lane.finished_at):.1f}" cy="{y:.1f}" r="4" fill="{colour}">'
                f"<title>{escape(lane.status)} {escape(lane.finished_at.isoformat())}</title></circle>"
            )
        if lane.after in rows:
            upstream = lanes[rows[lane.after]]
            ux, uy = x(upstream.finished_at), TOP + ROW * rows[lane.after] + ROW / 2 + 7
            out.append(
                f'<path d="M{ux:.1f} {uy:.1f} L{ux:.1f} {y - 9:.1f}" class="after">'
                f"<title>runs after {escape(upstream.label)}</title></path>"
            )
    out.append("</svg>")
    return "\n".join(out)


def _instants(lane: Lane) -> list[datetime | None]:
    return [lane.planned_at, lane.finished_at, *(t for a in lane.attempts for t in (a.started_at, a.ended_at))]
