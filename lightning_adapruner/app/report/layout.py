"""Where the Pareto plots put their points (pure): axis limits on the band that matters, and the points beyond
them pinned at the edge with a label instead of stretching the axis.

The y axis (test accuracy minus full data's, pp) is chosen from the fewer-epochs curve (or, without it, the best
method) and the methods within :data:`WINDOW_PP` of it: the lower limit is ``min(lowest bound, FLOOR_PP)`` minus a
margin, the upper the highest bound. A method far below (``el2n`` at -17.5 pp when the others lie within 1 pp)
becomes a marker at the lower edge labelled ``el2n −17.5 ↓``. The x axis runs from a little under the smallest
cost to ``x_cap`` (1 for samples forwarded: soft mode's prune-then-retrain forwards more than full data) plus a
margin; a point beyond is pinned at the right edge (``adapruner_soft 1.70x →``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from lightning_adapruner.app.report.compare import ParetoPoint
from lightning_adapruner.app.report.stats import format_pp

FLOOR_PP = -2.0  # the y axis reaches at least this far below full data
WINDOW_PP = 2.0  # methods within this of the reference band widen it; the ones farther below are pinned
CI_REACH_PP = 3.0  # an error bar longer than this (two seeds: t = 12.7) is clipped by the axis, not followed
X_MARGIN = 0.05  # share of full data's cost left on either side of the points
EDGE = 0.03  # pinned markers sit this share of the axis inside its edge


class Limits(NamedTuple):
    """The axis limits of one panel."""

    x_lo: float
    x_hi: float
    y_lo: float
    y_hi: float


class Pin(NamedTuple):
    """A point outside the limits: where its marker goes (inside the edge) and the label that gives its value."""

    x: float
    y: float
    text: str
    point: ParetoPoint


def _mean(point: ParetoPoint) -> float:
    return point.diff.mean  # type: ignore[union-attr,return-value]


def _low(point: ParetoPoint) -> float:
    low = point.diff.low if point.diff.low is not None else _mean(point)  # type: ignore[union-attr]
    return max(low, _mean(point) - CI_REACH_PP)


def _high(point: ParetoPoint) -> float:
    high = point.diff.high if point.diff.high is not None else _mean(point)  # type: ignore[union-attr]
    return min(high, _mean(point) + CI_REACH_PP)


def drawable(points: Sequence[ParetoPoint]) -> list[ParetoPoint]:
    """The points with a paired difference to draw (a cell that shares no seed with full data has none)."""
    return [p for p in points if p.diff is not None and p.diff.mean is not None]


def y_limits(reference: Sequence[ParetoPoint], points: Sequence[ParetoPoint]) -> tuple[float, float]:
    """The y limits (pp) from the fewer-epochs curve ``reference`` and the methods' ``points`` near it.

    Args:
        reference: the fewer-epochs points (empty without them: the best method anchors the band instead).
        points: every other method's points.

    Example::

        >>> from lightning_adapruner.app.report.stats import PairedCI
        >>> def point(mean, low, high): return ParetoPoint(0.5, 0.9, 0.0, 0.5, PairedCI(mean, low, high, 5))
        >>> lo, hi = y_limits([point(-0.5, -1.0, 0.0)], [point(-0.2, -0.6, 0.2), point(-17.5, -18.0, -17.0)])
        >>> round(lo, 2), round(hi, 2), lo > -17.5
        (-2.11, 0.31, True)
    """
    ref, pts = drawable(reference), drawable(points)
    anchors = ref or sorted(pts, key=_mean)[-1:]
    lo = min([FLOOR_PP, *(_low(p) for p in anchors)])
    lo = min([lo, *(_low(p) for p in pts if _low(p) >= lo - WINDOW_PP)])
    shown = [p for p in [*ref, *pts] if _mean(p) >= lo]
    hi = max([0.0, *(_high(p) for p in shown)])
    pad = max(0.05 * (hi - lo), 0.1)
    return lo - pad, hi + pad


def x_limits(costs: Sequence[float], x_cap: float) -> tuple[float, float]:
    """The x limits: from a little under the smallest cost to the largest one, at most ``x_cap``, plus a margin
    (full data's cost, 1, always inside).

    Example::

        >>> x_limits([0.3, 0.7, 1.7], 1.0), x_limits([0.5, 1.0, 2.0, 7.5], 3.0)
        ((0.25, 1.05), (0.45, 2.05))
    """
    inside = [c for c in costs if c <= x_cap] + [1.0]
    return max(0.0, min(inside) - X_MARGIN), max(inside) + X_MARGIN


def limits(reference: Sequence[ParetoPoint], lines: dict[str, list[ParetoPoint]], x_cap: float) -> Limits:
    """The limits of a panel (:func:`x_limits` and :func:`y_limits` of its drawable points).

    Args:
        reference: the fewer-epochs points.
        lines: every other method's points.
        x_cap: the largest cost the x axis shows before pinning.
    """
    points = [p for ps in lines.values() for p in drawable(ps)]
    x_lo, x_hi = x_limits([p.cost for p in [*drawable(reference), *points]], x_cap)
    return Limits(x_lo, x_hi, *y_limits(reference, points))


def place(method: str, points: Sequence[ParetoPoint], box: Limits) -> tuple[list[ParetoPoint], list[Pin]]:
    """The drawable points of ``method`` inside ``box``, and a :class:`Pin` for each one outside.

    Args:
        method: the method's name, for the labels.
        points: its points.
        box: the panel's limits.

    Example::

        >>> from lightning_adapruner.app.report.stats import PairedCI
        >>> far = ParetoPoint(0.5, 0.7, 0.0, 0.5, PairedCI(-17.5, -18.0, -17.0, 3))
        >>> soft = ParetoPoint(1.7, 0.9, 0.0, 0.3, PairedCI(0.1, -0.1, 0.3, 3))
        >>> inside, pins = place("el2n", [far, soft], Limits(0.25, 1.05, -2.5, 0.5))
        >>> inside, [(round(p.x, 3), round(p.y, 2), p.text) for p in pins]
        ([], [(0.5, -2.41, 'el2n −17.5 ↓'), (1.026, 0.1, 'el2n 1.70x →')])
    """
    inside, pins = [], []
    for point in drawable(points):
        y, x = _mean(point), point.cost
        below, above, right = y < box.y_lo, y > box.y_hi, x > box.x_hi
        if not (below or above or right):
            inside.append(point)
            continue
        height, width = box.y_hi - box.y_lo, box.x_hi - box.x_lo
        pin_y = box.y_lo + EDGE * height if below else box.y_hi - EDGE * height if above else y
        pin_x = box.x_hi - EDGE * width if right else x
        text = method
        if below or above:
            text += f" {format_pp(y, 1)} {'↓' if below else '↑'}"
        if right:
            text += f" {x:.2f}x →"
        pins.append(Pin(pin_x, pin_y, text, point))
    return inside, pins
