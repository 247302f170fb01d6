"""The interval convention: labels, ETI against scipy quantiles, HDI against a direct search."""

import numpy as np
import pytest
from scipy import optimize, stats

from netbayes.intervals import DEFAULT_INTERVAL, Interval, as_interval


def test_default_is_95_eti_and_labels_carry_kind_and_level():
    assert DEFAULT_INTERVAL == Interval(0.95, "eti")
    assert DEFAULT_INTERVAL.columns == ("eti95_lower", "eti95_upper")
    assert Interval(0.89, "hdi").label == "hdi89"
    assert Interval(0.975).percent == "97.5"
    assert DEFAULT_INTERVAL.text == "95% ETI"


@pytest.mark.parametrize("prob", [0.0, 1.0, -0.1, 1.5, "0.9"])
def test_bad_prob_names_field_and_value(prob):
    with pytest.raises(ValueError, match=r"prob=.*expected a number in \(0, 1\)"):
        Interval(prob)


def test_bad_kind():
    with pytest.raises(ValueError, match=r"kind='hpd'.*'eti' or 'hdi'"):
        Interval(0.9, "hpd")


def test_eti_matches_quantiles_along_axis():
    x = np.random.default_rng(0).normal(size=(4000, 3))
    lo, hi = Interval(0.9).bounds(x, axis=0)
    np.testing.assert_allclose(lo, np.quantile(x, 0.05, axis=0))
    np.testing.assert_allclose(hi, np.quantile(x, 0.95, axis=0))


def test_hdi_of_skewed_draws_is_shorter_than_eti_and_holds_prob():
    x = np.random.default_rng(1).gamma(1.5, size=20000)
    lo, hi = Interval(0.9, "hdi").bounds(x)
    elo, ehi = Interval(0.9).bounds(x)
    assert hi - lo < ehi - elo
    assert np.mean((x >= lo) & (x <= hi)) == pytest.approx(0.9, abs=1e-3)
    # the exact HDI of Gamma(1.5): the shortest [a, ppf(cdf(a) + 0.9)]
    g = stats.gamma(1.5)
    res = optimize.minimize_scalar(
        lambda a: g.ppf(g.cdf(a) + 0.9) - a, bounds=(0, g.ppf(0.099)), method="bounded"
    )
    a = res.x
    # Monte Carlo error of sample quantiles at n = 20000 is ~0.01-0.03 here
    assert lo == pytest.approx(a, abs=0.03)
    assert hi == pytest.approx(g.ppf(g.cdf(a) + 0.9), abs=0.1)


def test_hdi_vectorised_matches_columnwise():
    x = np.random.default_rng(2).lognormal(size=(500, 4))
    lo, hi = Interval(0.8, "hdi").bounds(x, axis=0)
    for j in range(4):
        lj, hj = Interval(0.8, "hdi").bounds(x[:, j])
        assert (lo[j], hi[j]) == (lj, hj)


def test_nan_or_empty_draws_raise():
    with pytest.raises(ValueError, match="NaN"):
        DEFAULT_INTERVAL.bounds(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="zero draws"):
        DEFAULT_INTERVAL.bounds(np.array([]))


def test_describe_and_sentence():
    x = np.random.default_rng(3).normal(14.2, 1.0, size=10000)
    d = DEFAULT_INTERVAL.describe(x)
    assert set(d) == {"median", "mean", "eti95_lower", "eti95_upper"}
    s = DEFAULT_INTERVAL.sentence("median PFS after retreatment", 14.2, 11.04, 17.9, "months")
    assert s == "median PFS after retreatment 14.2 months (95% ETI 11.0-17.9)"


def test_as_interval():
    assert as_interval(None) is DEFAULT_INTERVAL
    assert as_interval(0.5) == Interval(0.5)
    with pytest.raises(TypeError, match="interval=True"):
        as_interval(True)


def test_huge_integers_are_refused_naming_the_field():
    with pytest.raises(ValueError, match=r"interval=1000000\d* is not allowed; expected"):
        as_interval(10**400)
    with pytest.raises(ValueError, match=r"prob=-1000000\d* is not allowed; expected"):
        Interval(-(10**400))
    # more digits than Python prints: still a refusal naming the field
    with pytest.raises(ValueError, match=r"interval=<an integer of 16610 bits> is not allowed"):
        as_interval(10**5000)
