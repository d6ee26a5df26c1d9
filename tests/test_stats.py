"""harness.stats against numbers worked out by hand (t quantiles written as literals)."""

import math

import numpy as np
import pandas as pd
import pytest

from harness import stats

T_975_DF4 = 2.7764451051977987  # Student t, 97.5% quantile, 4 degrees of freedom
T_975_DF2 = 4.302652729749464


def t_cdf_df4(t):
    """Closed-form Student-t CDF for 4 degrees of freedom (independent of scipy)."""
    u = t / math.sqrt(1 + t * t / 4)
    return 0.5 + 3 / 8 * u * (1 - t * t / (12 * (1 + t * t / 4)))


def test_mean_std_ci_of_one_to_five():
    values = [1, 2, 3, 4, 5]
    assert stats.mean(values) == 3.0
    assert stats.std(values) == pytest.approx(math.sqrt(2.5))  # sum of squares 10 over n-1 = 4
    half = T_975_DF4 * math.sqrt(2.5) / math.sqrt(5)  # 1.963243
    low, high = stats.ci(values)
    assert low == pytest.approx(3 - half, rel=1e-12) and high == pytest.approx(3 + half, rel=1e-12)
    assert half == pytest.approx(1.9632432, abs=1e-6)


def test_ci_ignores_missing_values_and_needs_two():
    low, high = stats.ci(pd.Series([2.0, float("nan"), 4.0, 6.0]))
    half = T_975_DF2 * 2.0 / math.sqrt(3)  # std of 2, 4, 6 is 2
    assert (low, high) == pytest.approx((4 - half, 4 + half))
    assert all(math.isnan(v) for v in stats.ci([1.0]))
    assert math.isnan(stats.std([1.0])) and stats.mean([1.0]) == 1.0
    assert math.isnan(stats.mean([]))


def test_paired_difference_matches_hand_computation():
    # seed: 0     1     2     3     4       (seed 9 only in a, seed 7 only in b: both ignored)
    a = pd.Series([0.90, 0.93, 0.87, 0.97, 0.93, 0.10], index=[0, 1, 2, 3, 4, 9])
    b = pd.Series(
        [0.90, 0.90, 0.87, 0.90, 0.87, 0.99], index=[4, 1, 2, 3, 0, 7]
    )  # another order: matched by seed
    # differences by seed: 0.03, 0.03, 0.00, 0.07, 0.03 -> mean 0.032
    # squared deviations: 4e-6, 4e-6, 1.024e-3, 1.444e-3, 4e-6 -> sum 2.48e-3, variance 6.2e-4
    se = math.sqrt(6.2e-4) / math.sqrt(5)
    t = 0.032 / se  # 2.8737
    result = stats.paired(a, b)
    assert result.n == 5
    assert result.diff == pytest.approx(0.032)
    assert result.ci_low == pytest.approx(0.032 - T_975_DF4 * se)
    assert result.ci_high == pytest.approx(0.032 + T_975_DF4 * se)
    assert result.ci_low == pytest.approx(0.0010826, abs=1e-6)
    assert result.p_value == pytest.approx(2 * (1 - t_cdf_df4(t)), rel=1e-9)
    assert result.p_value == pytest.approx(0.04530, abs=1e-4)
    assert result.verdict() == "better"  # higher accuracy, interval above zero
    assert result.verdict(lower_is_better=True) == "worse"  # were it a loss


def test_interval_containing_zero_is_no_evidence_even_with_a_large_mean_difference():
    a = pd.Series([0.5, 0.9, 0.6, 1.0])
    b = pd.Series([0.3, 0.4, 0.9, 0.2])  # differences 0.2, 0.5, -0.3, 0.8: mean 0.3, wide spread
    result = stats.paired(a, b)
    assert result.diff == pytest.approx(0.3)
    assert result.ci_low < 0 < result.ci_high
    assert result.verdict() == "no evidence" and result.verdict(lower_is_better=True) == "no evidence"
    assert result.p_value > 0.05


def test_too_few_pairs_gives_nan_interval_and_no_evidence():
    result = stats.paired(pd.Series([0.9], index=[3]), pd.Series([0.5, 0.1], index=[3, 4]))
    assert result.n == 1 and result.diff == pytest.approx(0.4)
    assert math.isnan(result.ci_low) and math.isnan(result.ci_high) and math.isnan(result.p_value)
    assert result.verdict() == "no evidence"
    empty = stats.paired(pd.Series([0.9], index=[1]), pd.Series([0.5], index=[2]))
    assert empty.n == 0 and math.isnan(empty.diff)


def test_zero_variance_differences():
    same_shift = stats.paired(pd.Series([0.8, 0.9, 0.7]), pd.Series([0.7, 0.8, 0.6]))
    assert same_shift.diff == pytest.approx(0.1)
    assert same_shift.ci_low == pytest.approx(0.1) and same_shift.ci_high == pytest.approx(0.1)
    assert same_shift.p_value == 0.0
    assert same_shift.verdict() == "better" and same_shift.verdict(lower_is_better=True) == "worse"
    identical = stats.paired(pd.Series([0.8, 0.9]), pd.Series([0.8, 0.9]))
    assert (identical.diff, identical.ci_low, identical.ci_high, identical.p_value) == (0.0, 0.0, 0.0, 1.0)
    assert identical.verdict() == "no evidence"


def test_t_quantile_literal():
    assert stats.t_quantile(5) == pytest.approx(T_975_DF4, rel=1e-12)
    assert math.isnan(stats.t_quantile(1))


# -- corrected resampled t (Nadeau and Bengio 2003), Holm (1979), runs needed ----------------

Z_975 = 1.959963984540054  # standard normal, 97.5% quantile
Z_80 = 0.8416212335729143  # standard normal, 80% quantile


def test_corrected_mean_interval_widens_by_the_correction():
    # 1..5: std sqrt(2.5); with n_test / n_train = 30 / 120 the error is sqrt(2.5) * sqrt(1/5 + 1/4)
    half = T_975_DF4 * math.sqrt(2.5) * math.sqrt(0.45)
    assert half == pytest.approx(2.944865, abs=1e-6)
    new = stats.Design(ratio=30 / 120)
    assert stats.ci([1, 2, 3, 4, 5], design=new, scope="new") == pytest.approx(
        (3 - half, 3 + half), rel=1e-12
    )
    # "this" scope: the plain t over the same five independent draws
    assert stats.ci([1, 2, 3, 4, 5], design=new) == pytest.approx(stats.ci([1, 2, 3, 4, 5]))
    assert all(
        math.isnan(v) for v in stats.ci([1, 2, 3, 4, 5], scope="new")
    )  # a fixed split has no such scope


def test_corrected_paired_difference_matches_hand_computation():
    a = pd.Series([0.90, 0.93, 0.87, 0.97, 0.93], index=[0, 1, 2, 3, 4])
    b = pd.Series([0.87, 0.90, 0.87, 0.90, 0.90], index=[0, 1, 2, 3, 4])
    # differences 0.03, 0.03, 0.00, 0.07, 0.03: mean 0.032, variance 6.2e-4 (as above)
    # corrected variance of the mean: 6.2e-4 * (1/5 + 30/120) = 2.79e-4
    se = math.sqrt(2.79e-4)
    t = 0.032 / se  # 1.91581
    result = stats.paired(a, b, design=stats.Design(ratio=0.25), scope="new")
    assert (result.n, result.ratio, result.df) == (5, 0.25, 4)
    assert result.sd == pytest.approx(math.sqrt(6.2e-4))
    assert result.ci_low == pytest.approx(0.032 - T_975_DF4 * se)
    assert result.ci_high == pytest.approx(0.032 + T_975_DF4 * se)
    assert (result.ci_low, result.ci_high) == pytest.approx((-0.014376, 0.078376), abs=1e-6)
    assert result.p_value == pytest.approx(2 * (1 - t_cdf_df4(t)), rel=1e-9)
    # the plain paired t on the same numbers says "better" (p = 0.045); corrected there is no evidence
    assert stats.paired(a, b).verdict() == "better"
    assert stats.paired(a, b, design=stats.Design(ratio=0.25)).verdict() == "better"  # "this" scope
    assert result.verdict() == "no evidence"


def test_holm_adjustment_by_hand():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, 0.04 x 1 = 0.04 -> kept at 0.06;
    # NaN not counted
    adjusted = stats.holm([0.01, 0.04, 0.03, float("nan"), 0.005])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and adjusted[4] == pytest.approx(0.02)
    assert math.isnan(adjusted[3])
    assert stats.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])  # 1.2 capped at 1, then non-decreasing
    assert stats.holm([0.02]) == pytest.approx([0.02])  # a family of one is not adjusted
    assert stats.holm([]) == []


def test_verdict_on_an_adjusted_p_value():
    result = stats.paired(pd.Series([0.8, 0.9, 0.7, 0.85]), pd.Series([0.7, 0.85, 0.6, 0.8]))
    assert result.p_value < 0.05 and result.verdict() == "better"
    assert result.verdict(p_value=result.p_value * 4) == "no evidence"  # adjusted above 0.05
    assert result.verdict(p_value=0.01) == "better"
    assert result.verdict(lower_is_better=True, p_value=0.01) == "worse"
    assert result.verdict(p_value=float("nan")) == "no evidence"


def test_runs_needed_is_the_closed_form_normal_approximation():
    # ((1.95996 + 0.84162) * 0.05 / 0.02)^2 = 49.06 -> 50 runs
    k = ((Z_975 + Z_80) * 0.05 / 0.02) ** 2
    assert k == pytest.approx(49.0555, abs=1e-4)
    assert stats.runs_needed(0.05, 0.02) == math.ceil(k) == 50
    assert stats.runs_needed(0.05, -0.02) == 50  # the sign of the effect does not matter
    # corrected: 1/n = 1/k - ratio -> 1 / (0.0203851 - 0.01) = 96.3 -> 97 runs
    assert stats.runs_needed(0.05, 0.02, ratio=0.01) == math.ceil(1 / (1 / k - 0.01)) == 97
    # the correction puts a floor under the error: no number of runs resolves 0.02 with 1/4 of the data
    # held out
    assert stats.runs_needed(0.05, 0.02, ratio=0.25) == math.inf
    # a stricter level needs more: z_{1-0.0125/2} for a family of 4 at 0.05
    strict = ((2.4977054744 + Z_80) * 0.05 / 0.02) ** 2
    assert stats.runs_needed(0.05, 0.02, level=1 - 0.05 / 4) == math.ceil(strict) == 70
    assert stats.runs_needed(0.5, 10.0) == 2  # never fewer than the two a t interval needs
    assert stats.runs_needed(0.05, 0.0) == math.inf
    assert math.isnan(stats.runs_needed(math.nan, 0.02))


# -- intervals inside a metric's range --------------------------------------------------------


def test_an_accuracy_interval_is_the_t_on_the_logit_scale_and_stays_below_1():
    values = [1.0, 1.0, 0.9, 1.0, 0.8]  # mean 0.94, skewed against the bound
    m, sd = 0.94, stats.std(values)
    half = T_975_DF4 * sd / math.sqrt(5)
    assert m + half > 1  # the plain t interval would leave the range
    logit = math.log(m / (1 - m))
    spread = half / (m * (1 - m))  # the delta method: d logit / dm = 1 / (m (1 - m))
    expected = tuple(1 / (1 + math.exp(-(logit + sign * spread))) for sign in (-1, 1))
    low, high = stats.ci(values, bounds=(0, 1))
    assert (low, high) == pytest.approx(expected, rel=1e-12)
    assert 0 < low < m < high < 1
    assert stats.ci([1.0, 1.0, 1.0], bounds=(0, 1)) == (1.0, 1.0)  # every run perfect: no spread


def test_a_loss_interval_is_the_t_on_the_log_scale_and_stays_above_0():
    values = [0.05, 0.02, 0.03, 2.4, 0.04]  # one split's few hard samples dominate
    m, sd = stats.mean(values), stats.std(values)
    half = T_975_DF4 * sd / math.sqrt(5)
    assert m - half < 0
    low, high = stats.ci(values, bounds=(0, math.inf))
    assert (low, high) == pytest.approx((m * math.exp(-half / m), m * math.exp(half / m)), rel=1e-12)
    assert 0 < low < m < high
    new = stats.ci(values, design=stats.Design(ratio=1.11), scope="new", bounds=(0, math.inf))
    assert 0 < new[0] < low and new[1] > high  # the corrected interval is wider, and still above 0


def test_a_difference_interval_is_cut_to_the_range_of_a_difference():
    a, b = pd.Series([1.0, 1.0, 0.0]), pd.Series([0.0, 0.0, 0.0])  # wild spread on 3 pairs
    plain = stats.paired(a, b)
    assert plain.ci_high > 1
    cut = stats.paired(a, b, bounds=(-1, 1))
    assert (cut.ci_low, cut.ci_high) == (plain.ci_low, 1) and cut.p_value == plain.p_value


# -- cross-validation: the repeats are the units ---------------------------------------------


def _cv(values_by_seed, folds):
    """A (seed, fold) Series from {seed: [value per fold]}."""
    keys = [(seed, fold) for seed, row in values_by_seed.items() for fold in range(len(row))]
    return pd.Series(
        [v for row in values_by_seed.values() for v in row], index=pd.MultiIndex.from_tuples(keys)
    )


def test_one_seed_of_a_repeated_k_fold_rests_on_its_repeats():
    # 2 folds x 3 repeats: repeat means 0.5, 0.7, 0.9 -> mean 0.7, sd 0.2 over 3 units
    values = _cv({0: [0.4, 0.6, 0.6, 0.8, 0.8, 1.0]}, 2)
    design = stats.Design(ratio=0.5, folds=2)
    est = stats.estimate(values, design)
    assert (est.n, est.mean, est.df) == (3, pytest.approx(0.7), 2)
    assert est.se == pytest.approx(0.2 / math.sqrt(3))
    new = stats.estimate(values, design, "new")  # the corrected t over all 6 (seed, fold) runs
    assert (new.n, new.df) == (6, 5) and new.se == pytest.approx(stats.std(values) * math.sqrt(1 / 6 + 0.5))


def test_seeds_crossed_with_repeats_add_both_variances():
    # 2 seeds x 2 repeats (1 fold each, for clarity): cells 1, 2 / 3, 5
    values = _cv({0: [1.0, 2.0], 1: [3.0, 5.0]}, 1)
    est = stats.estimate(values, stats.Design(ratio=0.2, folds=1))
    seed_means, repeat_means = [1.5, 4.0], [2.0, 3.5]
    a, b = stats.std(seed_means) ** 2 / 2, stats.std(repeat_means) ** 2 / 2  # 1.5625, 0.5625
    assert est.n == 4 and est.mean == pytest.approx(2.75)
    assert est.se == pytest.approx(math.sqrt(a + b))
    assert est.df == pytest.approx((a + b) ** 2 / (a**2 + b**2))  # Satterthwaite, 1 df each


# -- probability of improvement ----------------------------------------------------------------


def test_wilson_interval_by_hand():
    z = Z_975
    # 19 of 20: centre (0.95 + z^2/40) / (1 + z^2/20), half z/(1 + z^2/20) sqrt(0.95*0.05/20 + z^2/1600)
    centre = (0.95 + z * z / 40) / (1 + z * z / 20)
    half = z / (1 + z * z / 20) * math.sqrt(0.95 * 0.05 / 20 + z * z / 1600)
    assert stats.wilson(19, 20) == pytest.approx((centre - half, centre + half))
    assert stats.wilson(19, 20) == pytest.approx((0.7639, 0.9911), abs=1e-4)
    low, high = stats.wilson(20, 20)
    assert high == 1.0 and low == pytest.approx(0.8389, abs=1e-4)  # not degenerate at n/n
    assert all(math.isnan(v) for v in stats.wilson(0, 0))


def test_improvement_is_paired_by_seed_and_counts_ties_half():
    base = pd.Series([0.5, 0.6, 0.4, 0.7], index=[3, 1, 2, 0])
    remedy = pd.Series([0.2, 0.6, 0.1, 0.9, 0.3], index=[3, 1, 2, 0, 9])  # seed 9 has no pair
    found = stats.improvement(remedy, base, lower_is_better=True)
    assert (found.n, found.wins, found.ties) == (4, 2, 1)  # seeds 3 and 2 lower, seed 1 equal, seed 0 higher
    assert found.share == pytest.approx(2.5 / 4)
    assert (found.low, found.high) == pytest.approx(stats.wilson(2.5, 4))
    assert stats.improvement(remedy, base).wins == 1  # higher is better: only seed 0


# -- coverage by simulation: synthetic paired runs where the truth is known ----------------------


def test_the_this_data_set_interval_covers_the_finite_population_mean():
    """A data set has a finite population of splits; each split has its own true paired difference
    (skewed, as the iris gap is), and each run adds initialisation noise. The estimand of "this data set"
    is the mean difference over the population of splits. The plain paired t over 20 random (split,
    seed) draws covers it at about 95%; the corrected interval (n_test/n_train 1.11) is wider on every
    draw, so it covers at least as often."""
    rng = np.random.default_rng(0)
    population = rng.gamma(2.0, 0.25, size=5000) - 0.3  # per split: the true difference, skewed
    truth = population.mean()
    design = stats.Design(ratio=30 / 27)
    covered = covered_new = 0
    trials = 2000
    for _ in range(trials):
        d = population[rng.integers(0, len(population), 20)] + rng.normal(0, 0.1, 20)
        this = stats.interval(stats.estimate(d, design))
        new = stats.interval(stats.estimate(d, design, "new"))
        assert new[1] - new[0] > this[1] - this[0]
        covered += this[0] <= truth <= this[1]
        covered_new += new[0] <= truth <= new[1]
    assert 0.93 <= covered / trials <= 0.97, covered / trials
    assert covered_new >= covered


def test_the_crossed_cv_interval_covers_the_mean_over_partitions_and_seeds():
    """2 seeds x 4 repeats of a 3-fold cv: a seed's initialisation and a repeat's partition each shift
    the difference; the interval over the (seed, repeat) cells covers the true mean at least at 95%."""
    rng = np.random.default_rng(1)
    folds, seeds, repeats, trials = 3, 2, 4, 300
    covered = 0
    for _ in range(trials):
        seed_effect = rng.normal(0, 0.2, seeds)[:, None, None]
        repeat_effect = rng.normal(0, 0.3, repeats)[None, :, None]
        d = 1.0 + seed_effect + repeat_effect + rng.normal(0, 0.2, (seeds, repeats, folds))
        index = pd.MultiIndex.from_tuples(
            [(s, r * folds + f) for s in range(seeds) for r in range(repeats) for f in range(folds)]
        )
        low, high = stats.ci(pd.Series(d.ravel(), index=index), design=stats.Design(0.5, folds))
        covered += low <= 1.0 <= high
    assert covered / trials >= 0.93, covered / trials
