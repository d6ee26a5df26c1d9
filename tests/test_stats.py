"""harness.stats against numbers worked out by hand (t quantiles written as literals)."""

import math

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
    assert stats.ci([1, 2, 3, 4, 5], ratio=30 / 120) == pytest.approx((3 - half, 3 + half), rel=1e-12)
    assert stats.ci([1, 2, 3, 4, 5], ratio=0.0) == pytest.approx(stats.ci([1, 2, 3, 4, 5]))


def test_corrected_paired_difference_matches_hand_computation():
    a = pd.Series([0.90, 0.93, 0.87, 0.97, 0.93], index=[0, 1, 2, 3, 4])
    b = pd.Series([0.87, 0.90, 0.87, 0.90, 0.90], index=[0, 1, 2, 3, 4])
    # differences 0.03, 0.03, 0.00, 0.07, 0.03: mean 0.032, variance 6.2e-4 (as above)
    # corrected variance of the mean: 6.2e-4 * (1/5 + 30/120) = 2.79e-4
    se = math.sqrt(2.79e-4)
    t = 0.032 / se  # 1.91581
    result = stats.paired(a, b, ratio=0.25)
    assert (result.n, result.ratio) == (5, 0.25)
    assert result.sd == pytest.approx(math.sqrt(6.2e-4))
    assert result.ci_low == pytest.approx(0.032 - T_975_DF4 * se)
    assert result.ci_high == pytest.approx(0.032 + T_975_DF4 * se)
    assert (result.ci_low, result.ci_high) == pytest.approx((-0.014376, 0.078376), abs=1e-6)
    assert result.p_value == pytest.approx(2 * (1 - t_cdf_df4(t)), rel=1e-9)
    # the plain paired t on the same numbers says "better" (p = 0.045); corrected there is no evidence
    assert stats.paired(a, b).verdict() == "better"
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
