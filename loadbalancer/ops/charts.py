"""Small inline SVG charts for the status page, drawn on the server (no script, no CDN).

Pure functions from per-minute values to SVG text; every text in them is escaped. A slot is
one minute of the last hour, oldest on the left; `None` means nothing was measured then.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

WIDTH = 300
HEIGHT = 64
PLOT_TOP = 14  # room for the scale label
PLOT_BOTTOM = 52  # below: the time axis labels
BAR_GAP = 1
COLOURS = {"requests": "#6b8fb8", "errors": "#d0463b", "line": "#7a4fb5", "grid": "#e3e6ea",
           "text": "#5f6670"}


@dataclass(frozen=True)
class Slot:
    """One minute: its label for tooltips and its values."""

    label: str
    total: int = 0
    errors: int = 0
    seconds: float | None = None


def _frame(title: str, body: list[str], scale: str) -> str:
    """The SVG element around a chart's marks, with its scale and time axis."""
    text = COLOURS["text"]
    return "".join([
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="0" y1="{PLOT_BOTTOM}" x2="{WIDTH}" y2="{PLOT_BOTTOM}" stroke="{COLOURS["grid"]}"/>',
        f'<line x1="0" y1="{PLOT_TOP}" x2="{WIDTH}" y2="{PLOT_TOP}" stroke="{COLOURS["grid"]}" '
        f'stroke-dasharray="2 3"/>',
        *body,
        f'<text x="0" y="10" font-size="9" fill="{text}">{escape(scale)}</text>',
        f'<text x="0" y="{HEIGHT - 2}" font-size="8" fill="{text}">-60 min</text>',
        f'<text x="{WIDTH}" y="{HEIGHT - 2}" font-size="8" fill="{text}" text-anchor="end">now</text>',
        "</svg>",
    ])


def bar_chart(title: str, slots: list[Slot], unit: str) -> str:
    """Bars of totals per minute, the errors part of each in red."""
    peak = max((slot.total for slot in slots), default=0)
    if peak == 0:
        return _frame(title, [_empty_note("no requests in the last hour")], "max 0/min")
    slot_width = WIDTH / max(1, len(slots))
    plot_height = PLOT_BOTTOM - PLOT_TOP
    marks = []
    for position, slot in enumerate(slots):
        if not slot.total:
            continue
        x = position * slot_width
        total_height = max(1.0, plot_height * slot.total / peak)
        error_height = plot_height * slot.errors / peak if slot.errors else 0.0
        tip = f"{slot.label}: {slot.total} {unit}, {slot.errors} errors"
        marks.append(f'<g><title>{escape(tip)}</title>'
                     f'<rect x="{x:.1f}" y="{PLOT_BOTTOM - total_height:.1f}" width="{slot_width - BAR_GAP:.1f}" '
                     f'height="{total_height:.1f}" fill="{COLOURS["requests"]}"/>')
        if error_height:
            marks.append(f'<rect class="errors" x="{x:.1f}" y="{PLOT_BOTTOM - error_height:.1f}" '
                         f'width="{slot_width - BAR_GAP:.1f}" height="{max(1.0, error_height):.1f}" '
                         f'fill="{COLOURS["errors"]}"/>')
        marks.append("</g>")
    return _frame(title, marks, f"max {peak}/min")


def line_chart(title: str, slots: list[Slot]) -> str:
    """A line of seconds per minute (p95), broken where a minute has no measurement."""
    values = [slot.seconds for slot in slots if slot.seconds is not None]
    if not values:
        return _frame(title, [_empty_note("no answers in the last hour")], "p95 -")
    peak = max(values) or 1.0
    slot_width = WIDTH / max(1, len(slots))
    plot_height = PLOT_BOTTOM - PLOT_TOP
    points: list[list[tuple[float, float, Slot]]] = [[]]
    for position, slot in enumerate(slots):
        if slot.seconds is None:
            if points[-1]:
                points.append([])
            continue
        x = position * slot_width + slot_width / 2
        y = PLOT_BOTTOM - plot_height * slot.seconds / peak
        points[-1].append((x, y, slot))
    marks = []
    for run in points:
        if len(run) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in run)
            marks.append(f'<polyline points="{path}" fill="none" stroke="{COLOURS["line"]}" stroke-width="1.5"/>')
        for x, y, slot in run:
            tip = f"{slot.label}: p95 {format_seconds(slot.seconds)}"
            marks.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="1.8" fill="{COLOURS["line"]}">'
                         f"<title>{escape(tip)}</title></circle>")
    return _frame(title, marks, f"max p95 {format_seconds(peak)}")


def _empty_note(text: str) -> str:
    middle = (PLOT_TOP + PLOT_BOTTOM) / 2 + 3
    return (f'<text x="{WIDTH / 2}" y="{middle}" font-size="10" fill="{COLOURS["text"]}" '
            f'text-anchor="middle">{escape(text)}</text>')


def format_seconds(seconds: float | None) -> str:
    """"850 ms", "2.5 s" or "-"."""
    if seconds is None:
        return "-"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
