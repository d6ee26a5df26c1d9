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
