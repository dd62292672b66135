"""Paired statistics (pure): the mean difference of two arms paired by seed, its 95% confidence interval, and the
two verdicts the report draws from it.

- *Lossless at a budget*: non-inferior to full data at a margin of :data:`LOSSLESS_MARGIN_PP`: the interval's
  lower bound is at least ``-margin``.
- *A beats B*: the interval of the paired difference ``A - B`` excludes 0 (an interval that includes 0 is a tie).

The interval is Student's t with ``n - 1`` degrees of freedom over the ``n`` seeds both arms ran (the quantile
from :func:`t_quantile_975`; no scipy). With fewer than two pairs there is no interval and no verdict.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping
from typing import NamedTuple

LOSSLESS_MARGIN_PP = 0.3  # "lossless": the 95% CI's lower bound >= -0.3 pp of test accuracy
_ROUNDING = 1e-9  # a bound exactly at the margin counts as inside despite float rounding
Z_975 = 1.959963984540054  # the normal distribution's 0.975 quantile
T_975 = (  # Student's t 0.975 quantile for 1..30 degrees of freedom
    12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624, 2.306004, 2.262157, 2.228139,
    2.200985, 2.178813, 2.160369, 2.144787, 2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963,
    2.079614, 2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407, 2.045230, 2.042272,
)  # fmt: skip


def t_quantile_975(df: int) -> float:
    """Student's t 0.975 quantile (the factor of a two-sided 95% interval) for ``df`` degrees of freedom.

    A table for 1..30; beyond, the Cornish-Fisher expansion around the normal quantile (within 1e-5 of the
    exact value there, and tending to :data:`Z_975`).

    Args:
        df: degrees of freedom, at least 1.

    Raises:
        ValueError: if ``df < 1``.

    Example::

        >>> t_quantile_975(4), round(t_quantile_975(40), 4), round(t_quantile_975(10**6), 4)
        (2.776445, 2.0211, 1.96)
    """
    if df < 1:
        raise ValueError(f"df must be >= 1 (a 95% interval needs at least 2 pairs), got {df!r}")
    if df <= len(T_975):
        return T_975[df - 1]
    z = Z_975
    return (
        z
        + (z**3 + z) / (4 * df)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * df**3)
    )


class PairedCI(NamedTuple):
    """Mean of ``a - b`` over the seeds both ran, in percentage points, with its 95% interval.

    Attributes:
        mean: the mean difference (pp), ``None`` without a seed in common.
        low: the interval's lower bound (pp), ``None`` with fewer than two pairs.
        high: the interval's upper bound (pp), ``None`` with fewer than two pairs.
        n: the number of seeds paired.
    """

    mean: float | None
    low: float | None
    high: float | None
    n: int

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None


def paired_ci(a: Mapping[int, float], b: Mapping[int, float]) -> PairedCI:
    """Mean difference of ``a - b`` in percentage points over the seeds in both, with its 95% t interval.

    Args:
        a: test accuracy (a share, ``0.91``) per seed of one arm.
        b: the same of the arm it is compared with.

    Example::

        >>> ci = paired_ci({0: 0.90, 1: 0.92, 2: 0.91, 7: 0.5}, {0: 0.91, 1: 0.92, 2: 0.90})  # seed 7: unpaired
        >>> round(ci.mean, 6), round(ci.low, 3), round(ci.high, 3), ci.n  # diffs -1, 0, +1 pp; t(2) = 4.303
        (0.0, -2.484, 2.484, 3)
        >>> paired_ci({0: 0.90}, {0: 0.91}).n, paired_ci({0: 0.90}, {0: 0.91}).low, paired_ci({1: 0.9}, {0: 0.9})
        (1, None, PairedCI(mean=None, low=None, high=None, n=0))
    """
    diffs = [(a[seed] - b[seed]) * 100 for seed in sorted(set(a) & set(b))]
    if not diffs:
        return PairedCI(None, None, None, 0)
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return PairedCI(mean, None, None, 1)
    half = t_quantile_975(len(diffs) - 1) * statistics.stdev(diffs) / math.sqrt(len(diffs))
    return PairedCI(mean, mean - half, mean + half, len(diffs))


def is_lossless(ci: PairedCI, margin_pp: float = LOSSLESS_MARGIN_PP) -> bool | None:
    """Whether ``ci`` (an arm minus full data) is non-inferior at ``margin_pp``; ``None`` without an interval.

    Example::

        >>> is_lossless(PairedCI(-0.1, -0.3, 0.1, 5)), is_lossless(PairedCI(0.2, -0.31, 0.7, 5))
        (True, False)
        >>> is_lossless(PairedCI(0.5, None, None, 1)) is None
        True
    """
    if ci.low is None:
        return None
    return ci.low >= -margin_pp - _ROUNDING


def winner(ci: PairedCI) -> int | None:
    """Who wins in ``ci`` (the paired ``A - B``): ``1`` A beats B, ``-1`` B beats A, ``0`` a tie (the interval
    includes 0), ``None`` without an interval.

    Example::

        >>> [winner(PairedCI(m, lo, hi, n)) for m, lo, hi, n in ((1, .2, 2, 3), (-1, -2, -.1, 3), (0, 0, 1, 3))]
        [1, -1, 0]
    """
    if ci.low is None or ci.high is None:
        return None
    return 1 if ci.low > 0 else -1 if ci.high < 0 else 0


def format_pp(value: float, digits: int = 2) -> str:
    """A signed number of percentage points with a true minus sign; a value that rounds to 0 is ``+0.00``.

    Example::

        >>> format_pp(-0.0412), format_pp(0.13), format_pp(-0.001)
        ('−0.04', '+0.13', '+0.00')
    """
    text = f"{value:+.{digits}f}"
    return "+" + text[1:] if float(text) == 0 else text.replace("-", "−")


def format_ci(ci: PairedCI, unit: str = "") -> str:
    """``mean[unit] [low, high]`` in pp; ``(n=1, no interval)`` for one pair; ``n/a`` for none.

    Args:
        ci: the paired difference.
        unit: printed after the mean (``" pp"``).

    Example::

        >>> format_ci(PairedCI(-0.04, -0.21, 0.13, 5), " pp"), format_ci(PairedCI(0.5, None, None, 1))
        ('−0.04 pp [−0.21, +0.13]', '+0.50 (n=1, no interval)')
        >>> format_ci(PairedCI(None, None, None, 0))
        'n/a (no seed in common)'
    """
    if ci.mean is None:
        return "n/a (no seed in common)"
    if ci.low is None or ci.high is None:
        return f"{format_pp(ci.mean)}{unit} (n={ci.n}, no interval)"
    return f"{format_pp(ci.mean)}{unit} [{format_pp(ci.low)}, {format_pp(ci.high)}]"
