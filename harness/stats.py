"""Statistics over runs: mean, std, Student-t intervals, paired comparisons, Holm's adjustment, runs needed.

Runs are few (often 3-10), so intervals use the t distribution, not the normal one. A
difference whose interval contains zero is "no evidence" of an effect, never a win.

Where the training sets of the runs overlap (repeated hold-out, k-fold), the runs are not
independent and the plain t interval is too narrow; `ratio` = n_test / n_train switches to
the corrected resampled t of Nadeau and Bengio (2003): variance x (1/J + n_test/n_train).
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as _scipy_stats

LEVEL = 0.95
POWER = 0.8
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


def standard_error(spread, n, ratio=0.0):
    """Standard error of a mean of `n` runs with sample std `spread`: spread * sqrt(1/n + ratio).

    ratio 0 is the plain (independent runs) error; ratio = n_test / n_train is Nadeau and
    Bengio's correction for runs whose training sets overlap."""
    return spread * math.sqrt(1 / n + ratio)


def ci(values, level=LEVEL, ratio=0.0):
    """(low, high) t interval of the mean of the finite values (corrected when `ratio` > 0); NaN with
    fewer than two."""
    array = _values(values)
    if len(array) < 2:
        return math.nan, math.nan
    centre = float(array.mean())
    half = t_quantile(len(array), level) * standard_error(float(array.std(ddof=1)), len(array), ratio)
    return centre - half, centre + half


@dataclass(frozen=True)
class Paired:
    """Run-by-run difference `a - b`: pairs used, mean difference, its t interval and p-value,
    the std of the differences and the correction ratio used (0: plain paired t)."""

    n: int
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    sd: float = math.nan
    ratio: float = 0.0

    def verdict(self, lower_is_better=False, p_value=None):
        """'better' / 'worse' for `a` when the interval excludes zero (or `p_value` is below
        1 - level), else 'no evidence'."""
        return verdict(self, lower_is_better, p_value)


def paired(a, b, level=LEVEL, ratio=0.0):
    """Compare two per-run Series (indexed by seed, or by (seed, fold)) on the runs both have with finite
    values.

    `ratio` = n_test / n_train gives the corrected resampled t (training sets overlap between
    runs); 0 gives the plain paired t. n < 2 gives NaN interval and p-value; identical
    differences on every run give a degenerate interval [d, d] and p = 0 (or p = 1 when d = 0),
    where scipy would give NaN.
    """
    a = pd.Series(a, dtype=float)
    b = pd.Series(b, dtype=float)
    a, b = a[~a.index.duplicated()], b[~b.index.duplicated()]
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    both = both[np.isfinite(both["a"]) & np.isfinite(both["b"])]
    d = (both["a"] - both["b"]).to_numpy()
    n = len(d)
    if n == 0:
        return Paired(0, math.nan, math.nan, math.nan, math.nan, ratio=ratio)
    diff = float(d.mean())
    if n < 2:
        return Paired(n, diff, math.nan, math.nan, math.nan, ratio=ratio)
    spread = float(d.std(ddof=1))
    if spread <= _ZERO_SPREAD * max(1.0, abs(diff)):
        return Paired(n, diff, diff, diff, 1.0 if diff == 0 else 0.0, 0.0, ratio)
    error = standard_error(spread, n, ratio)
    half = t_quantile(n, level) * error
    p_value = float(2 * _scipy_stats.t.sf(abs(diff) / error, n - 1))
    return Paired(n, diff, diff - half, diff + half, p_value, spread, ratio)


def verdict(result, lower_is_better=False, p_value=None, level=LEVEL):
    """'better', 'worse' or 'no evidence' for a Paired result.

    Without `p_value` only an interval that excludes zero decides; with it (e.g. a
    Holm-adjusted p-value) only p < 1 - level does, in the direction of the difference."""
    if p_value is not None:
        if not (math.isfinite(p_value) and p_value < 1 - level and math.isfinite(result.diff)):
            return "no evidence"
        if result.diff == 0:
            return "no evidence"
        improved = result.diff < 0 if lower_is_better else result.diff > 0
        return "better" if improved else "worse"
    if not (math.isfinite(result.ci_low) and math.isfinite(result.ci_high)):
        return "no evidence"
    if result.ci_low <= 0 <= result.ci_high:
        return "no evidence"
    improved = result.ci_high < 0 if lower_is_better else result.ci_low > 0
    return "better" if improved else "worse"


def holm(p_values):
    """Holm's (1979) step-down adjustment of a family of p-values, in their given order.

    The i-th smallest of m p-values is multiplied by m - i + 1, then made non-decreasing
    (and capped at 1). NaN p-values stay NaN and do not count in m."""
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, math.nan)
    finite = np.flatnonzero(np.isfinite(p))
    m = len(finite)
    running = 0.0
    for i, index in enumerate(finite[np.argsort(p[finite], kind="stable")]):
        running = max(running, min(1.0, (m - i) * p[index]))
        out[index] = running
    return out.tolist()


def runs_needed(spread, effect, level=LEVEL, power=POWER, ratio=0.0):
    """Runs (pairs) a two-sided test at `level` needs to detect a true difference `effect` with `power`,
    given the std `spread` of the paired differences: the normal approximation
    n = ((z_{1-a/2} + z_power) * spread / effect)^2, rounded up and at least 2.

    With the correction (`ratio` = n_test / n_train) the error is spread * sqrt(1/n + ratio),
    so 1/n = (effect / ((z_{1-a/2} + z_power) * spread))^2 - ratio; when that is not positive no
    number of runs of this design suffices: inf. NaN when spread or effect is not known."""
    if not (math.isfinite(spread) and math.isfinite(effect)):
        return math.nan
    if effect == 0:
        return math.inf
    if spread == 0:
        return 2
    z = float(_scipy_stats.norm.ppf(0.5 + level / 2) + _scipy_stats.norm.ppf(power))
    inverse = (effect / (z * spread)) ** 2 - ratio
    if inverse <= 0:
        return math.inf
    return max(2, math.ceil(1 / inverse))
