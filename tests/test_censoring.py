"""Censoring-aware summary terms (issue 16): n_eff from Greenwood's variance, the order
statistic at a non-integer n, and the model option (``docs/censoring.md``)."""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from _graphs import potentials_at
from scipy import integrate, stats

from netbayes.families import FAMILIES, LOGNORMAL, WEIBULL
from netbayes.likelihoods.censoring import (
    censoring_excess,
    followup_survival,
    greenwood_nodes,
    km_median_neff_logp,
    n_eff_ratio,
)
from netbayes.likelihoods.survival import km_median_order_stat_logp


def _law_terms(fam, k, lam, m, nodes):
    """log S, log F, log f at the median and log S, log f at the nodes (NumPy)."""
    return (
        np.log(fam.sf(m, k, lam)),
        np.log(fam.cdf(m, k, lam)),
        fam.logpdf_np(m, k, lam),
        fam.logsf_np(nodes, k, lam),
        fam.logpdf_np(nodes, k, lam),
    )


# -- the order statistic at a non-integer sample size ------------------------------------------
@pytest.mark.parametrize("n", [1, 3, 7, 25, 53])
def test_beta_a_a_equals_the_order_statistic_for_odd_n(n):
    """For odd n, Beta(a, a) with a = (n + 1)/2 on F(m) times f(m) is the density of the
    ceil(n/2)-th order statistic, and km_median_neff_logp(n_eff = n) is that density."""
    k, lam = 1.4, 20.0
    m = np.array([5.0, 14.6, 30.0])
    a = (n + 1) / 2
    ref = stats.beta.logpdf(WEIBULL.cdf(m, k, lam), a, a) + WEIBULL.logpdf_np(m, k, lam)
    order = km_median_order_stat_logp(m, n, k, lam).eval()
    ls, lc, lf = np.log(WEIBULL.sf(m, k, lam)), np.log(WEIBULL.cdf(m, k, lam)), None
    lf = WEIBULL.logpdf_np(m, k, lam)
    got = km_median_neff_logp(lc, ls, lf, np.full(3, float(n)), np.full(3, float(n))).eval()
    np.testing.assert_allclose(order, ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [2, 6, 14, 54, 168])
def test_n_eff_equal_n_recovers_the_ceil_order_statistic_for_even_n(n):
    k, lam = 0.9, 30.0
    m = np.array([2.0, 20.0, 90.0])
    ls, lc = np.log(WEIBULL.sf(m, k, lam)), np.log(WEIBULL.cdf(m, k, lam))
    lf = WEIBULL.logpdf_np(m, k, lam)
    nn = np.full(3, float(n))
    got = km_median_neff_logp(lc, ls, lf, nn, nn).eval()
    np.testing.assert_allclose(got, km_median_order_stat_logp(m, n, k, lam).eval(), rtol=1e-12)


@pytest.mark.parametrize("n_eff", [1.0, 2.5, 17.3, 40.0])
def test_non_integer_n_eff_is_a_beta_on_the_cdf(n_eff):
    """Odd n: Beta((n_eff + 1)/2, (n_eff + 1)/2), a proper density in m (integrates to 1)."""
    n, k, lam = 41.0, 1.6, 12.0
    a = (n_eff + 1) / 2
    m = np.linspace(0.5, 40.0, 9)
    lc, ls = np.log(WEIBULL.cdf(m, k, lam)), np.log(WEIBULL.sf(m, k, lam))
    lf = WEIBULL.logpdf_np(m, k, lam)
    got = km_median_neff_logp(lc, ls, lf, np.full(9, n), np.full(9, n_eff)).eval()
    ref = stats.beta.logpdf(WEIBULL.cdf(m, k, lam), a, a) + lf
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    x = pt.dvector("x")
    f = pytensor.function(
        [x],
        km_median_neff_logp(
            pt.log(-pt.expm1(-((x / lam) ** k))), -((x / lam) ** k),
            np.log(k / lam) + (k - 1) * pt.log(x / lam) - (x / lam) ** k, n, n_eff,
        ),
    )  # fmt: skip
    total = integrate.quad(lambda t: math.exp(f(np.array([t]))[0]), 0, 200, limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-6)


# -- the Greenwood excess: quadrature, exactness without censoring, safe bounds ----------------
@pytest.mark.parametrize("fam", list(FAMILIES.values()), ids=list(FAMILIES))
@pytest.mark.parametrize("accrual", ["uniform", "exponential"])
@pytest.mark.parametrize("k", [0.7, 1.5, 4.0])
@pytest.mark.parametrize("ratio", [2.08, 1.16, 0.87])
def test_quadrature_matches_adaptive_integration(fam, accrual, k, ratio):
    """n_eff/n = 1 / int_0^m h/(S G) at the median: 24 Gauss-Legendre nodes on the part of
    [0, m] where G < 1 against scipy's adaptive quad (split at the kink F/2)."""
    m = 10.0
    lam = m / float(fam.median(k, 1.0))
    F = ratio * m

    def integrand(t):
        return fam.pdf(t, k, lam) / fam.sf(t, k, lam) ** 2 / followup_survival(t, F, accrual)

    full = integrate.quad(integrand, 0, m, points=[F / 2] if F / 2 < m else None, limit=200)[0]
    got = float(n_eff_ratio(fam, k, lam, F, accrual))
    assert got == pytest.approx(1.0 / full, rel=1e-6)
    assert 0 < got <= 1


def test_no_follow_up_or_no_censoring_gives_exactly_n():
    t, c = greenwood_nodes([14.6, 20.0, 5.0], [np.nan, 30.4, 30.4], [53, 12, 5])
    # no follow-up; uniform accrual with nobody censored before F/2 = 15.2 > median 5
    assert (c[0] == 0).all() and (c[2] == 0).all() and (c[1] > 0).all()
    r = censoring_excess(
        np.zeros_like(t), np.full_like(t, -0.1), np.full(3, -0.7), np.full(3, -0.7), c
    ).eval()
    assert r[0] == 0.0 and r[2] == 0.0 and r[1] > 0
    assert float(n_eff_ratio(WEIBULL, 1.5, 10.0, 1e12, "uniform")) == 1.0


def test_follow_up_survival_laws():
    F = 30.4
    assert followup_survival(F, F, "uniform") == pytest.approx(0.5)
    assert followup_survival(F, F, "exponential") == pytest.approx(0.5)
    g = followup_survival([0.0, 0.49 * F, 1.5 * F, 3 * F], F, "uniform")
    np.testing.assert_allclose(g, [1.0, 1.0, 0.0, 0.0], atol=1e-15)
    with pytest.raises(ValueError, match="accrual='linear' is not allowed"):
        followup_survival(1.0, F, "linear")
    with pytest.raises(ValueError, match=r"followup=-1\.0 is not allowed"):
        greenwood_nodes([10.0], [-1.0], [10])
    with pytest.raises(ValueError, match=r"n=0\.0 is not allowed"):
        greenwood_nodes([10.0], [30.0], [0])


def test_floor_bounds_n_eff_below_by_one():
    """A median at or past the end of follow-up (uniform G = 0 at 3F/2): G is floored at 1/n,
    so n_eff >= 1 and everything stays finite."""
    for n in (2, 13, 168):
        r = float(n_eff_ratio(WEIBULL, 1.5, 40.0, 20.0, "uniform", n=n))  # median 31 > 3F/2
        assert 1.0 / n - 1e-12 <= r < 1.0


@pytest.mark.parametrize("fam", list(FAMILIES.values()), ids=list(FAMILIES))
@pytest.mark.parametrize("accrual", ["uniform", "exponential"])
def test_gradients_finite_at_extreme_shapes_and_ratios(fam, accrual):
    """n_eff and the median term: finite values and gradients for shapes 0.2-12, medians far in
    either tail of the law and follow-up from 0.2 to 20 medians."""
    lk, llam = pt.dscalar("lk"), pt.dscalar("llam")
    k, lam = pt.exp(lk), pt.exp(llam)
    m = np.array([0.01, 1.0, 10.0, 100.0, 1e4])
    n = np.array([168.0, 5.0, 53.0, 2.0, 13.0])
    for ratio in (0.2, 1.16, 20.0):
        t, c = greenwood_nodes(m, ratio * m, n, 0.0, accrual)
        log_s_m, log_c_m, log_f_m = (fam.logsf(m, k, lam), fam.logcdf(m, k, lam),
                                     fam.logpdf(m, k, lam))  # fmt: skip
        r = censoring_excess(fam.logpdf(t, k, lam), fam.logsf(t, k, lam), log_s_m, log_c_m, c)
        n_eff = n / (1 + r)
        total = pt.sum(km_median_neff_logp(log_c_m, log_s_m, log_f_m, n, n_eff))
        f = pytensor.function([lk, llam], [n_eff, total, *pytensor.grad(total, [lk, llam])])
        for kv in (0.2, 1.0, 12.0):
            for lamv in (0.05, 10.0, 5000.0):
                ne, tot, g1, g2 = f(math.log(kv), math.log(lamv))
                assert np.isfinite(tot)
                assert np.all(np.isfinite(ne)) and np.all((ne >= 1 - 1e-9) & (ne <= n))
                assert np.isfinite(g1) and np.isfinite(g2), (ratio, kv, lamv)


# -- brute force: KM medians of censored samples ------------------------------------------------
def _km_median(t: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Kaplan-Meier median of each row of (R, n) times and event flags: the first event time
    with S <= 1/2 (no ties in continuous times)."""
    o = np.argsort(t, axis=1, kind="stable")
    t, e = np.take_along_axis(t, o, 1), np.take_along_axis(e, o, 1)
    at_risk = t.shape[1] - np.arange(t.shape[1])
    with np.errstate(divide="ignore"):
        log_s = np.cumsum(np.where(e, np.log1p(-1.0 / at_risk), 0.0), axis=1)
    below = log_s <= math.log(0.5) + 1e-12
    i = np.argmax(below, axis=1)
    return np.where(below.any(axis=1), t[np.arange(len(t)), i], np.nan)


def test_vectorised_km_median_matches_lifelines():
    lifelines = pytest.importorskip("lifelines")
    rng = np.random.default_rng(3)
    t = rng.weibull(1.5, size=(20, 31)) * 10
    c = rng.uniform(5, 15, size=t.shape)
    obs, ev = np.minimum(t, c), t <= c
    ours = _km_median(obs, ev)
    for i in range(20):
        ref = lifelines.KaplanMeierFitter().fit(obs[i], ev[i]).median_survival_time_
        assert ours[i] == pytest.approx(ref) or (np.isnan(ours[i]) and not np.isfinite(ref))


CASES = [  # family, shape, follow-up / median, accrual
    (WEIBULL, 1.5, 2.08, "uniform"),  # R-PRRT PFS: 30.4 / 14.6
    (WEIBULL, 1.5, 2.08, "exponential"),
    (WEIBULL, 1.5, 1.16, "uniform"),  # R-PRRT OS: 30.4 / 26.2
    (WEIBULL, 1.5, 1.16, "exponential"),
    (WEIBULL, 3.0, 1.10, "uniform"),  # I-PRRT OS: 88.6 / 80.8
    (LOGNORMAL, 1.5, 2.08, "exponential"),
    (LOGNORMAL, 1.5, 1.16, "uniform"),
    (LOGNORMAL, 0.8, 1.10, "exponential"),
]


@pytest.mark.parametrize(("fam", "k", "ratio", "accrual"), CASES)
def test_n_eff_against_simulated_km_medians(fam, k, ratio, accrual):
    """Var(KM median, censored) / Var(KM median, uncensored) = n / n_eff.

    Paired replicates (the same event times with and without censoring), n = 301 patients,
    R = 3000 replicates, seed fixed. Tolerance: 4 bootstrap SEs of the simulated ratio (its
    Monte Carlo error, 0.002-0.035 here) plus 3% for the asymptotic approximation at n = 301
    (the O(1/n) terms of the median's variance; the largest gap seen over seeds was 3.5% of
    the ratio with 1.3% Monte Carlo SE). A formula off by a factor 2 (n / (2 int h/(SG))) or
    ignoring G (ratio 1 where it should be 1.2-1.5) fails by far.
    """
    rng = np.random.default_rng(20240616)
    n, reps, m = 301, 3000, 10.0
    lam = m / float(fam.median(k, 1.0))
    F = ratio * m
    t = fam.quantile(rng.uniform(size=(reps, n)), k, lam)
    if accrual == "uniform":
        c = rng.uniform(0.5 * F, 1.5 * F, size=t.shape)
    else:
        c = rng.exponential(F / math.log(2), size=t.shape)
    m0 = _km_median(t, np.ones_like(t, bool))
    m1 = _km_median(np.minimum(t, c), t <= c)
    assert np.isfinite(m1).all()
    sim = m1.var() / m0.var()
    idx = rng.integers(0, reps, size=(200, reps))
    boot = m1[idx].var(axis=1) / m0[idx].var(axis=1)
    pred = 1.0 / float(n_eff_ratio(fam, k, lam, F, accrual))
    assert abs(sim - pred) <= 4 * boot.std() + 0.03 * pred, (sim, pred, boot.std())


# -- the model option ---------------------------------------------------------------------------
_potentials = potentials_at  # compiled once per model (tests/_graphs.py)


def _points(model, seed=0, count=3):
    rng = np.random.default_rng(seed)
    ip = model.initial_point()
    return [{k: v + (0.3 * rng.standard_normal(np.shape(v)) if i else 0) for k, v in ip.items()}
            for i in range(count)]  # fmt: skip


def test_model_option_is_checked_and_recorded():
    from netbayes.models.survival import SurvivalModel

    with pytest.raises(ValueError, match="censoring='greenwood' is not allowed"):
        SurvivalModel("pfs", censoring="greenwood")
    with pytest.raises(ValueError, match="accrual='linear' is not allowed"):
        SurvivalModel("pfs", censoring="followup", accrual="linear")
    assert "censoring" not in SurvivalModel("pfs").config()  # default cards unchanged
    cfg = SurvivalModel("os", censoring="followup", accrual="exponential").config()
    assert cfg["censoring"] == {"censoring": "followup", "accrual": "exponential"}


def test_default_builds_the_old_model_and_missing_follow_up_changes_nothing():
    """censoring="none" (default) has no censoring containers; "followup" on rows without a
    follow-up gives the same potentials (to rounding: the order statistic is written as a Beta)."""
    from netbayes.calibration import survival_calibration
    from netbayes.models.survival import SurvivalModel

    old = SurvivalModel("pfs", study_level=False).build()
    assert not [v for v in old.named_vars if v.startswith("cens_")]
    rows = survival_calibration("pfs").summaries["pfs"].assign(followup_months=np.nan)
    new = SurvivalModel("pfs", summaries={"pfs": rows}, censoring="followup",
                        study_level=False).build()  # fmt: skip
    assert [v for v in new.named_vars if v.startswith("cens_c")]
    for p in _points(old):
        a, b = _potentials(old, p), _potentials(new, p)
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-11, abs=1e-11), key


def test_follow_up_lowers_n_eff_only_where_reported():
    """The packaged OS design: the rows with a follow-up change their median and SE terms, the
    first-line PFS rows (complete by design) do not; the container values are data_values'."""
    from netbayes.calibration import survival_calibration
    from netbayes.models.survival import SurvivalModel

    cal = survival_calibration("os")
    assert ("pfs", "retreatment", "I-PRRT") not in cal.followup
    assert cal.followup[("os", "retreatment", "R-PRRT")] == 30.4
    old = SurvivalModel("os", study_level=False).build()
    sm = SurvivalModel("os", censoring="followup", study_level=False)
    new = sm.build()
    values = sm.data_values(cal.summaries)
    for name in ("cens_t_first_line_os", "cens_c_salvage_r", "cens_c_first_line"):
        np.testing.assert_array_equal(values[name], new[name].get_value())
    p = _points(old, count=1)[0]
    a, b = _potentials(old, p), _potentials(new, p)
    pfs = survival_calibration("pfs").summaries["pfs"]
    first = pfs[(pfs["line"] == "I-PRRT") & (pfs["tumour_type"] != "all")]
    ctrl = (first["group"] == "control").to_numpy()
    c = new["cens_c_first_line"].get_value()
    assert (c[~ctrl] == 0).all()  # retreated patients' first-line PFS: complete
    # control PFS (follow-up 120.2, medians 35-39): uncensored before F/2 under uniform
    # accrual, censored under the exponential one
    assert (c[ctrl] == 0).all()
    m_ctrl = first["median_months"].to_numpy(float)[ctrl]
    _, c_exp = greenwood_nodes(m_ctrl, np.full(ctrl.sum(), 120.2), first["n"][ctrl], 18.0,
                               "exponential")  # fmt: skip
    assert (c_exp > 0).all()
    for key in ("first_line_medians_os", "first_line_se_os", "salvage_medians_r", "salvage_se_r"):
        assert b[key] != pytest.approx(a[key], rel=1e-6), key
    assert np.isfinite(list(b.values())).all()


def test_se_term_inflates_the_expected_se_by_sqrt_n_over_n_eff():
    from netbayes.models.survival import _se_logp

    se, log_f, n, n_eff = np.array([2.0, 5.0]), np.array([-3.0, -4.0]), np.array([53.0, 12.0]), 30.0
    got = _se_logp(se, log_f, 3.0, n, n_eff).eval()
    ref = _se_logp(se / np.sqrt(n / n_eff), log_f, 3.0, n).eval()
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_an_added_row_with_follow_up_is_the_packaged_censored_row():
    """An R-PRRT Rotterdam row with a follow-up, given as an added study, has the packaged
    row's censoring-aware terms (the two code paths build the same law)."""
    from netbayes.calibration import survival_calibration
    from netbayes.models.survival import SurvivalModel

    cal = survival_calibration("pfs")
    s = cal.summaries["pfs"]
    row = s[(s["line"] == "R-PRRT") & (s["tumour_type"] == "midgut")].assign(followup_months=20.0)
    packaged = SurvivalModel("pfs", summaries={"pfs": row}, study_level=False,
                             censoring="followup").build()  # fmt: skip
    added = row[["n", "median_months", "se_months", "line", "tumour_type"]].assign(
        study="sim",
        row_id="r",
        endpoint="pfs",
        followup_months=20.0,
        selection_min_prior_pfs_months=cal.threshold("R-PRRT"),
        cumulative_gbq=cal.cumulative_gbq["R-PRRT"],
    )
    m = SurvivalModel("pfs", studies=added, include_published=False, study_level=False,
                      censoring="followup").build()  # fmt: skip
    for p in _points(m, count=2):
        q = _points(packaged, count=1)[0] | p
        got, ref = _potentials(m, p), _potentials(packaged, q)
        assert got["study_medians_salvage"] == pytest.approx(ref["salvage_medians_r"], rel=1e-9)
        assert got["study_se_salvage"] == pytest.approx(ref["salvage_se_r"], rel=1e-9)
