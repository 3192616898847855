"""Small inline SVG charts drawn on the server: no JavaScript, no chart library.

Every chart has a `<title>` and `<desc>` (the page puts the numbers in a table beside it),
scales with its container through `viewBox`, and is coloured by CSS classes only, so the
page's Content-Security-Policy needs no inline styles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH, HEIGHT = 480, 220
LEFT, RIGHT, TOP, BOTTOM = 44, 12, 12, 42
PLOT_W = WIDTH - LEFT - RIGHT
PLOT_H = HEIGHT - TOP - BOTTOM
MAX_X_LABELS = 6
_TIME_TICKS = (1, 10, 60, 600, 3600, 6 * 3600, 86400, 7 * 86400)


def _n(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _open(chart_id: str, title: str, desc: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" id="{chart_id}" '
        'xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(desc)}</desc>',
    ]


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent: float = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return float(step * exponent)
    return 10.0 * exponent


def _y_axis(top: float, fmt: str = "count") -> list[str]:
    parts = []
    for fraction in (0.0, 0.5, 1.0):
        y = TOP + PLOT_H * (1 - fraction)
        value = top * fraction
        text = f"{value:.0%}" if fmt == "percent" else _n(value)
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_n(y)}" y2="{_n(y)}"/>'
            f'<text class="tick" x="{LEFT - 6}" y="{_n(y + 4)}" text-anchor="end">{text}</text>'
        )
    return parts


def _x_labels(labels: Sequence[str], centres: Sequence[float]) -> list[str]:
    step = max(1, math.ceil(len(labels) / MAX_X_LABELS))
    parts = []
    for i, (label, x) in enumerate(zip(labels, centres, strict=True)):
        if i % step == 0:
            parts.append(
                f'<text class="tick" x="{_n(x)}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    return parts


def _centres(count: int) -> list[float]:
    slot = PLOT_W / max(count, 1)
    return [LEFT + slot * (i + 0.5) for i in range(count)]


def stacked_bars(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
    *,
    by_position: bool = False,
) -> Markup:
    """One bar per label, stacked by series; classes `series-<name>` colour the parts (or
    `series-<n>` by the series' position, for names the style sheet cannot know)."""
    totals = [sum(values[i] for _, values in series) for i in range(len(labels))]
    top = _nice_max(max(totals, default=0))
    slot = PLOT_W / max(len(labels), 1)
    bar = max(min(slot * 0.7, 48.0), 1.0)
    parts = _open(chart_id, title, desc) + _y_axis(top)
    for i, x in enumerate(_centres(len(labels))):
        base = 0.0
        for position, (name, values) in enumerate(series):
            value = values[i]
            if not value:
                continue
            height = PLOT_H * value / top
            y = TOP + PLOT_H - (base + height)
            css = f"series-{position % 4}" if by_position else f"series-{escape(name)}"
            parts.append(
                f'<rect class="{css}" x="{_n(x - bar / 2)}" y="{_n(y)}" '
                f'width="{_n(bar)}" height="{_n(height)}">'
                f"<title>{escape(labels[i])}: {value} {escape(name)}</title></rect>"
            )
            base += height
    parts += _x_labels(labels, _centres(len(labels)))
    parts.append(_axis_line())
    parts.append("</svg>")
    return Markup("".join(parts))


def bars(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    css_class: str = "bar",
) -> Markup:
    top = _nice_max(max(values, default=0))
    slot = PLOT_W / max(len(labels), 1)
    bar = max(min(slot * 0.7, 64), 1.0)
    parts = _open(chart_id, title, desc) + _y_axis(top)
    centres = _centres(len(labels))
    for label, value, x in zip(labels, values, centres, strict=True):
        height = PLOT_H * value / top
        parts.append(
            f'<rect class="{css_class}" x="{_n(x - bar / 2)}" y="{_n(TOP + PLOT_H - height)}" '
            f'width="{_n(bar)}" height="{_n(height)}">'
            f"<title>{escape(label)}: {_n(value)}</title></rect>"
        )
    # Every category label matters here (tiers, bins), so all of them are drawn, smaller.
    for label, x in zip(labels, centres, strict=True):
        parts.append(
            f'<text class="tick small" x="{_n(x)}" y="{HEIGHT - BOTTOM + 16}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(_axis_line())
    parts.append("</svg>")
    return Markup("".join(parts))


def rate_line(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    rates: Sequence[float | None],
    *,
    warn_below: float | None = None,
    warn_above: float | None = None,
    target: tuple[float, float] | None = None,
) -> Markup:
    """A 0..100% line with optional shaded warning bands below/above the given rates and
    a target band (green, labelled "target"), drawn as different things: a rate between
    the target and a warning line is off target but not yet a warning sign."""
    highest = max((r for r in rates if r is not None), default=0.0)
    top = 1.0 if highest > 0.5 or (warn_above is not None and warn_above > 0.25) else 0.5

    def y_of(rate: float) -> float:
        return TOP + PLOT_H * (1 - min(rate, top) / top)

    parts = _open(chart_id, title, desc)
    if target is not None:
        low, high = target
        parts.append(
            f'<rect class="target" x="{LEFT}" y="{_n(y_of(high))}" width="{PLOT_W}" '
            f'height="{_n(y_of(low) - y_of(high))}"/>'
            f'<text class="tick target-label" x="{LEFT + 4}" y="{_n(y_of(high) + 13)}">'
            f"target {low:.0%}-{high:.0%}</text>"
        )
    if warn_below is not None:
        parts.append(
            f'<rect class="band" x="{LEFT}" y="{_n(y_of(warn_below))}" width="{PLOT_W}" '
            f'height="{_n(TOP + PLOT_H - y_of(warn_below))}"/>'
        )
    if warn_above is not None:
        parts.append(
            f'<rect class="band" x="{LEFT}" y="{TOP}" width="{PLOT_W}" '
            f'height="{_n(y_of(warn_above) - TOP)}"/>'
        )
    parts += _y_axis(top, "percent")
    for limit, side in ((warn_below, "warn below"), (warn_above, "warn above")):
        if limit is not None:
            y = _n(y_of(limit))
            parts.append(
                f'<line class="limit" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>'
                f'<text class="tick limit-label" x="{WIDTH - RIGHT - 2}" y="{_n(y_of(limit) - 3)}" '
                f'text-anchor="end">{side} {limit:.0%}</text>'
            )
    centres = _centres(len(labels))
    run: list[str] = []
    for rate, x, label in zip(rates, centres, labels, strict=True):
        if rate is None:
            if len(run) > 1:
                parts.append(f'<polyline class="line" points="{" ".join(run)}"/>')
            run = []
            continue
        run.append(f"{_n(x)},{_n(y_of(rate))}")
        parts.append(
            f'<circle class="dot" cx="{_n(x)}" cy="{_n(y_of(rate))}" r="3">'
            f"<title>{escape(label)}: {rate:.0%}</title></circle>"
        )
    if len(run) > 1:
        parts.append(f'<polyline class="line" points="{" ".join(run)}"/>')
    parts += _x_labels(labels, centres)
    parts.append(_axis_line())
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class Point:
    x_seconds: float
    y_rate: float
    label: str
    flagged: bool = False


def scatter(
    chart_id: str,
    title: str,
    desc: str,
    points: Sequence[Point],
    *,
    corner: tuple[float, float] = (5.0, 0.98),
) -> Markup:
    """Approval rate (y) against median seconds to decide (x, log scale from 1 s); the
    shaded `corner` (faster than its seconds, approving at least its rate) is flagged."""
    highest = max((p.x_seconds for p in points), default=60.0)
    decades = max(2, math.ceil(math.log10(max(highest, 10.0))))

    def x_of(seconds: float) -> float:
        return LEFT + PLOT_W * min(math.log10(max(seconds, 1.0)) / decades, 1.0)

    def y_of(rate: float) -> float:
        return TOP + PLOT_H * (1 - rate)

    parts = _open(chart_id, title, desc)
    # The rubber-stamp corner: fast and approving nearly everything.
    parts.append(
        f'<rect class="band" x="{LEFT}" y="{TOP}" width="{_n(x_of(corner[0]) - LEFT)}" '
        f'height="{_n(y_of(corner[1]) - TOP)}"/>'
    )
    parts += _y_axis(1.0, "percent")
    for tick in _TIME_TICKS:
        if tick <= 10**decades:
            parts.append(
                f'<text class="tick" x="{_n(x_of(tick))}" y="{HEIGHT - BOTTOM + 16}" '
                f'text-anchor="middle">{_duration(tick)}</text>'
            )
    for point in points:
        css = "dot flagged" if point.flagged else "dot"
        parts.append(
            f'<circle class="{css}" cx="{_n(x_of(point.x_seconds))}" '
            f'cy="{_n(y_of(point.y_rate))}" r="5"><title>{escape(point.label)}: '
            f"{point.y_rate:.0%} approved, median {_duration(point.x_seconds)}</title></circle>"
        )
    parts.append(
        f'<text class="tick" x="{LEFT + PLOT_W / 2}" y="{HEIGHT - 6}" text-anchor="middle">'
        "median time to decide (log)</text>"
    )
    parts.append(_axis_line())
    parts.append("</svg>")
    return Markup("".join(parts))


def _axis_line() -> str:
    y = TOP + PLOT_H
    return f'<line class="axis" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}"/>'


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.0f}h"
    return f"{seconds / 86400:.0f}d"
