"""Statistics over seeds: mean, std, Student-t 95% intervals and paired seed-by-seed comparisons.

Seeds are few (often 3-10), so intervals use the t distribution, not the normal one. A
difference whose interval contains zero is "no evidence" of an effect, never a win.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

LEVEL = 0.95
# Differences this small relative to their size count as exactly equal (float round-off).
_ZERO_SPREAD = 1e-12


def _values(values):
    """The finite values of `values` as a float array (NaN and inf dropped)."""
    array = np.asarray(values, dtype=float).ravel()
    return array[np.isfinite(array)]


def mean(values):
    """Mean of the finite values; NaN when there are none."""
    array = _values(values)
    return float(array.mean()) if len(array) else math.nan


def std(values):
    """Sample standard deviation (ddof=1) of the finite values; NaN with fewer than two."""
    array = _values(values)
    return float(array.std(ddof=1)) if len(array) > 1 else math.nan


def t_quantile(n, level=LEVEL):
    """The two-sided Student-t critical value for a mean of `n` values; NaN when n < 2."""
    return float(_scipy_stats.t.ppf(0.5 + level / 2, n - 1)) if n >= 2 else math.nan


def ci(values, level=LEVEL):
    """(low, high) t interval of the mean of the finite values; NaN with fewer than two."""
    array = _values(values)
    if len(array) < 2:
        return math.nan, math.nan
    centre = float(array.mean())
    half = t_quantile(len(array), level) * float(array.std(ddof=1)) / math.sqrt(len(array))
    return centre - half, centre + half


@dataclass(frozen=True)
class Paired:
    """Seed-by-seed difference `a - b`: pairs used, mean difference, its t interval and paired-t p-value."""

    n: int
    diff: float
    ci_low: float
    ci_high: float
    p_value: float

    def verdict(self, lower_is_better=False):
        """'better' / 'worse' for `a` when the interval excludes zero, else 'no evidence'."""
        return verdict(self, lower_is_better)


def paired(a, b, level=LEVEL):
    """Compare two per-seed Series (indexed by seed) on the seeds both have with finite values.

    n < 2 gives NaN interval and p-value; identical differences on every seed give a
    degenerate interval [d, d] and p = 0 (or p = 1 when d = 0), where scipy would give NaN.
    """
    a = pd.Series(a, dtype=float)
    b = pd.Series(b, dtype=float)
    a, b = a[~a.index.duplicated()], b[~b.index.duplicated()]
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    both = both[np.isfinite(both["a"]) & np.isfinite(both["b"])]
    d = (both["a"] - both["b"]).to_numpy()
    n = len(d)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan)
    diff = float(d.mean())
    if n < 2:
        return Paired(n, diff, math.nan, math.nan, math.nan)
    spread = float(d.std(ddof=1))
    if spread <= _ZERO_SPREAD * max(1.0, abs(diff)):
        return Paired(n, diff, diff, diff, 1.0 if diff == 0 else 0.0)
    half = t_quantile(n, level) * spread / math.sqrt(n)
    p_value = float(_scipy_stats.ttest_rel(both["a"], both["b"]).pvalue)
    return Paired(n, diff, diff - half, diff + half, p_value)


def verdict(result, lower_is_better=False):
    """'better', 'worse' or 'no evidence' for a Paired result: only an interval that excludes zero decides."""
    if not (math.isfinite(result.ci_low) and math.isfinite(result.ci_high)):
        return "no evidence"
    if result.ci_low <= 0 <= result.ci_high:
        return "no evidence"
    improved = result.ci_high < 0 if lower_is_better else result.ci_low > 0
    return "better" if improved else "worse"
