"""Statistics over runs: means and paired differences with t intervals in two scopes, Holm's
adjustment, the probability of improvement, runs needed.

Runs are few (often 3-20), so intervals use the t distribution, not the normal one. A difference
whose interval contains zero is "no evidence" of an effect, never a win.

Two scopes (docs/statistics.md). Where the split varies between runs (resplit, k-fold) a comparison
can answer two questions. "this": averaged over the ways *this data set* can be split and the network
initialised, the runs' independent draws are the units of a plain t (each (seed, split) with resplit;
with cv each repeat's mean over its folds, since the folds of one repeat partition the data). "new":
on *new data of this size*, the training sets of different runs overlap, and Nadeau and Bengio's
(2003) corrected resampled t widens the variance of the mean to s^2 (1/J + n_test/n_train). With a
fixed split only "this" exists, and it covers initialisation and order on that one split.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special  # the t and normal quantiles scipy.stats computes with, without its 0.5 s import

LEVEL = 0.95
POWER = 0.8
SCOPES = ("this", "new")
# Differences this small relative to their size count as exactly equal (float round-off).
_ZERO_SPREAD = 1e-12
UNBOUNDED = (-math.inf, math.inf)


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


def t_critical(df, level=LEVEL):
    """The two-sided Student-t critical value at `df` degrees of freedom (which may be fractional)."""
    return float(special.stdtrit(df, 0.5 + level / 2)) if df >= 1 else math.nan


def t_quantile(n, level=LEVEL):
    """The two-sided Student-t critical value for a mean of `n` values; NaN when n < 2."""
    return t_critical(n - 1, level) if n >= 2 else math.nan


def standard_error(spread, n, ratio=0.0):
    """Standard error of a mean of `n` runs with sample std `spread`: spread * sqrt(1/n + ratio).

    ratio 0 is the plain (independent runs) error; ratio = n_test / n_train is Nadeau and
    Bengio's correction for runs whose training sets overlap."""
    return spread * math.sqrt(1 / n + ratio)


@dataclass(frozen=True)
class Design:
    """How the runs were drawn: `ratio` = n_test / n_train where the split varies between runs (resplit,
    cv), 0 for one fixed split; `folds` = K of a repeated K-fold (0 without cv), whose fold f belongs to
    repeat f // K."""

    ratio: float = 0.0
    folds: int = 0

    @property
    def scopes(self):
        """The scopes these runs can answer for: ("this", "new"), or ("this",) for a fixed split."""
        return SCOPES if self.ratio else SCOPES[:1]


@dataclass(frozen=True)
class Estimate:
    """A mean over `n` independent units with its standard error `se`, its t's degrees of freedom `df`,
    and the per-unit spread `sd` (se = sd * sqrt(1/n + ratio))."""

    n: int
    mean: float
    se: float
    df: float
    sd: float
    ratio: float = 0.0


def _nothing(n=0, centre=math.nan, ratio=0.0):
    return Estimate(n, centre, math.nan, math.nan, math.nan, ratio)


def _plain(values, ratio=0.0):
    """The t estimate of independent values (corrected by `ratio` when > 0)."""
    n = len(values)
    if n == 0:
        return _nothing(ratio=ratio)
    centre = float(values.mean())
    if n < 2:
        return _nothing(n, centre, ratio)
    spread = float(values.std(ddof=1))
    if spread <= _ZERO_SPREAD * max(1.0, abs(centre)):
        spread = 0.0
    return Estimate(n, centre, standard_error(spread, n, ratio), n - 1, spread, ratio)


def cells(values, folds):
    """A cv metric (Series indexed by (seed, fold)) as a seeds x repeats table of means over each
    repeat's folds; seeds that lack a repeat another seed has are left out."""
    seeds = values.index.get_level_values(0)
    repeats = values.index.get_level_values(1) // folds
    table = values.groupby([seeds, repeats]).mean().unstack()
    return table.dropna()


def _crossed(table):
    """The estimate of a seeds x repeats table's grand mean.

    One seed: the repeats are the independent units; one repeat: the seeds are (on that one partition).
    Several of both: a seed's initialisation is shared by its repeats and a repeat's partition by its
    seeds, so neither rows nor cells are independent; the variance of the grand mean is estimated as
    var(seed means)/S + var(repeat means)/R, which exceeds the unbiased two-way estimate by
    sigma_residual^2/(S R) (conservative), with Satterthwaite's degrees of freedom."""
    seeds, repeats = table.shape
    if seeds == 0 or repeats == 0:
        return _nothing()
    if repeats == 1 or seeds == 1:
        return _plain(table.to_numpy().ravel())
    centre = float(table.to_numpy().mean())
    a = float(table.mean(axis=1).var(ddof=1)) / seeds
    b = float(table.mean(axis=0).var(ddof=1)) / repeats
    n = seeds * repeats
    if a + b <= (_ZERO_SPREAD * max(1.0, abs(centre))) ** 2:
        return Estimate(n, centre, 0.0, n - 1, 0.0)
    df = (a + b) ** 2 / (a**2 / (seeds - 1) + b**2 / (repeats - 1))
    se = math.sqrt(a + b)
    return Estimate(n, centre, se, df, se * math.sqrt(n))


def estimate(values, design=Design(), scope="this"):
    """The mean of a per-run metric and its error in `scope`.

    `values`: per-run values, a Series indexed by seed (or by (seed, fold) with cv); NaN and inf are left
    out. Scope "this": the plain t over the independent units (runs; with cv the (seed, repeat) means, see
    `_crossed`). Scope "new": the corrected resampled t over all runs (NaN on a fixed split, which has no
    such scope)."""
    series = pd.Series(values, dtype=float) if not isinstance(values, pd.Series) else values.astype(float)
    series = series[np.isfinite(series)]
    if scope == "new":
        if not design.ratio:
            return _nothing(len(series), mean(series))
        return _plain(series.to_numpy(), design.ratio)
    if design.folds and isinstance(series.index, pd.MultiIndex):
        return _crossed(cells(series, design.folds))
    return _plain(series.to_numpy())


def _link(bounds):
    """(forward, slope, back) of the scale on which a metric within `bounds` gets its t interval: logit
    between two bounds, log above one, identity when unbounded."""
    low, high = bounds
    if math.isfinite(low) and math.isfinite(high):
        width = high - low
        return (
            lambda x: math.log((x - low) / (high - x)),
            lambda x: width / ((x - low) * (high - x)),
            lambda y: low + width / (1 + math.exp(-y)),
        )
    if math.isfinite(low):
        return (lambda x: math.log(x - low), lambda x: 1 / (x - low), lambda y: low + math.exp(y))
    if math.isfinite(high):
        return (lambda x: -math.log(high - x), lambda x: 1 / (high - x), lambda y: high - math.exp(-y))
    return (lambda x: x, lambda x: 1.0, lambda y: y)


def interval(est, level=LEVEL, bounds=UNBOUNDED):
    """(low, high) of an Estimate's mean: the t interval on the scale that keeps it within `bounds`
    (logit for a metric with two bounds, such as accuracy; log for one with a lower bound, such as a
    loss), back-transformed (the delta method); the plain t interval when unbounded. It follows the
    skew of a metric near its bound and never leaves its range. NaN with fewer than two units."""
    if est.n < 2 or not (math.isfinite(est.se) and math.isfinite(est.mean)):
        return math.nan, math.nan
    if est.se == 0:
        return est.mean, est.mean
    half = t_critical(est.df, level) * est.se
    low, high = bounds
    if not low < est.mean < high:  # on a bound with spread: only values outside the range do that
        return max(low, est.mean - half), min(high, est.mean + half)
    forward, slope, back = _link(bounds)
    centre, spread = forward(est.mean), half * slope(est.mean)
    return back(centre - spread), back(centre + spread)


def ci(values, level=LEVEL, design=Design(), scope="this", bounds=UNBOUNDED):
    """(low, high) interval of the mean of per-run `values` in `scope` (see `estimate` and `interval`)."""
    return interval(estimate(values, design, scope), level, bounds)


@dataclass(frozen=True)
class Paired:
    """Run-by-run difference `a - b`: pairs used, mean difference, its t interval and p-value,
    the per-unit std of the differences, the correction ratio used (0: plain paired t), the t's
    degrees of freedom and the independent units it rests on."""

    n: int
    diff: float
    ci_low: float
    ci_high: float
    p_value: float
    sd: float = math.nan
    ratio: float = 0.0
    df: float = math.nan
    units: int = 0

    def verdict(self, lower_is_better=False, p_value=None):
        """'better' / 'worse' for `a` when the interval excludes zero (or `p_value` is below
        1 - level), else 'no evidence'."""
        return verdict(self, lower_is_better, p_value)


def aligned(a, b):
    """(a, b) on the runs (index entries) both have with finite values, each run once."""
    a = pd.Series(a, dtype=float)
    b = pd.Series(b, dtype=float)
    a, b = a[~a.index.duplicated()], b[~b.index.duplicated()]
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    both = both[np.isfinite(both["a"]) & np.isfinite(both["b"])]
    return both["a"], both["b"]


def paired(a, b, level=LEVEL, design=Design(), scope="this", bounds=UNBOUNDED):
    """Compare two per-run Series (indexed by seed, or by (seed, fold)) on the runs both have.

    Scope "this" (plain paired t over the independent units) or "new" (corrected resampled t; NaN on a
    fixed split). n < 2 gives a NaN interval and p-value; identical differences on every run give a
    degenerate interval [d, d] and p = 0 (or p = 1 when d = 0), where scipy would give NaN. `bounds`:
    the range a difference can take (e.g. (-1, 1) for accuracies); an interval is cut to it."""
    a, b = aligned(a, b)
    n = len(a)
    est = estimate(a - b, design, scope)
    ratio = design.ratio if scope == "new" else 0.0
    if n == 0 or not math.isfinite(est.mean):
        return Paired(n, math.nan, math.nan, math.nan, math.nan, ratio=ratio)
    if scope == "new" and not design.ratio or est.n < 2 or not math.isfinite(est.se):
        return Paired(n, est.mean, math.nan, math.nan, math.nan, ratio=ratio, units=est.n)
    if est.se == 0:
        return Paired(
            n, est.mean, est.mean, est.mean, 1.0 if est.mean == 0 else 0.0, 0.0, ratio, est.df, est.n
        )
    half = t_critical(est.df, level) * est.se
    p_value = float(2 * special.stdtr(est.df, -abs(est.mean) / est.se))
    low, high = max(bounds[0], est.mean - half), min(bounds[1], est.mean + half)
    return Paired(n, est.mean, low, high, p_value, est.sd, ratio, est.df, est.n)


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


def wilson(successes, n, level=LEVEL):
    """Wilson's (1927) score interval for a proportion `successes` / `n` (successes may be fractional:
    ties counted as half); (NaN, NaN) when n is 0. It stays within [0, 1] and, unlike the normal
    interval, is not degenerate at 0/n or n/n."""
    if n <= 0:
        return math.nan, math.nan
    z = float(special.ndtri(0.5 + level / 2))
    share = successes / n
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Improvement:
    """On how many of `n` independent units `a` beat `b` (`wins`, `ties`), the share (ties count half)
    and its Wilson interval."""

    n: int
    wins: int
    ties: int
    share: float
    low: float
    high: float


def improvement(a, b, lower_is_better=False, design=Design(), level=LEVEL):
    """The probability of improvement, paired: the share of the units (seeds, or (seed, split); with cv
    each (seed, repeat), its metric averaged over the repeat's folds) on which `a` beats `b`, with a
    Wilson interval. Paired by unit, unlike rliable's unpaired probability of improvement."""
    a, b = aligned(a, b)
    if design.folds and isinstance(a.index, pd.MultiIndex) and len(a):
        a, b = aligned(cells(a, design.folds).stack(), cells(b, design.folds).stack())
    d = (b - a if lower_is_better else a - b).to_numpy()
    scale = np.maximum(1.0, np.maximum(np.abs(a.to_numpy()), np.abs(b.to_numpy())))
    wins, ties = int(np.sum(d > _ZERO_SPREAD * scale)), int(np.sum(np.abs(d) <= _ZERO_SPREAD * scale))
    n = len(d)
    share = (wins + ties / 2) / n if n else math.nan
    low, high = wilson(wins + ties / 2, n, level)
    return Improvement(n, wins, ties, share, low, high)


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
    z = float(special.ndtri(0.5 + level / 2) + special.ndtri(power))
    inverse = (effect / (z * spread)) ** 2 - ratio
    if inverse <= 0:
        return math.inf
    return max(2, math.ceil(1 / inverse))
