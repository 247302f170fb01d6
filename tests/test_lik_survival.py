"""Tests for netbayes.likelihoods.survival: each term against a direct computation."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from netbayes.likelihoods.survival import (
    censored_weibull_loglik,
    implied_spearman_selected,
    implied_spearman_selected_weibull,
    implied_spearman_selected_weibull_mixture,
    km_median_order_stat_logp,
    km_se_logp,
    median_se_asymptotic,
    pearson_from_spearman_gaussian,
    spearman_fisher_logp,
    spearman_from_pearson_gaussian,
    wald_se_from_ci,
    weibull_logcdf,
    weibull_loghazard,
    weibull_logpdf,
    weibull_logsf,
    weibull_median,
)

LN2 = math.log(2.0)


@functools.cache
def _dist_fn():
    """Compiled (t, k, lam) -> (logpdf, logsf, logcdf, loghazard), compiled once."""
    t, k, lam = pt.dvector("t"), pt.dvector("k"), pt.dvector("lam")
    outs = [
        f(t, k, lam) for f in (weibull_logpdf, weibull_logsf, weibull_logcdf, weibull_loghazard)
    ]
    return pytensor.function([t, k, lam], outs)


@functools.cache
def _order_stat_fn(convention: str = "ceil"):
    """Compiled (median, n, k, lam, lower) -> log density; lower <= 0 means untruncated."""
    m, n, k, lam, lower = pt.dvector("m"), pt.dscalar("n"), *pt.dscalars("k", "lam", "lower")
    out = km_median_order_stat_logp(m, n, k, lam, lower=lower, convention=convention)
    return pytensor.function([m, n, k, lam, lower], out)


def _order_stat_logp(m, n, k, lam, lower=0.0, convention="ceil"):
    return _order_stat_fn(convention)(np.atleast_1d(np.asarray(m, float)), n, k, lam, lower)


def _weibull_grid():
    t = np.logspace(-8, 6, 29)
    k = np.array([0.3, 0.7, 1.0, 1.5, 3.0, 8.0])
    lam = np.array([0.5, 10.0, 1000.0])
    tt, kk, ll = (a.ravel() for a in np.meshgrid(t, k, lam, indexing="ij"))
    return tt, kk, ll


# --------------------------------------------------------------------------------------------
# 1. Basic Weibull functions
# --------------------------------------------------------------------------------------------


def test_weibull_functions_match_scipy_over_extreme_grid():
    t, k, lam = _weibull_grid()
    logpdf, logsf, logcdf, loghaz = _dist_fn()(t, k, lam)
    ref = stats.weibull_min(c=k, scale=lam)
    for ours, theirs in [(logpdf, ref.logpdf(t)), (logsf, ref.logsf(t))]:
        assert np.all(np.isfinite(ours))
        np.testing.assert_allclose(ours, theirs, rtol=1e-11, atol=1e-12)
    # log-CDF spans about -200 (t=1e-8, k=8, lam=1000) to -1e-300 (right tail, rounds to -0)
    ref_cdf = ref.logcdf(t)
    assert np.all(np.isfinite(logcdf)) and np.all(np.isfinite(ref_cdf))
    assert logcdf.min() < -200.0
    np.testing.assert_allclose(logcdf, ref_cdf, rtol=1e-10, atol=1e-14)
    # log h: scipy's logpdf - logsf cancels catastrophically in the right tail, so compare
    # with the direct formula log(k/lam) + (k-1) log(t/lam)
    direct = np.log(k / lam) + (k - 1) * np.log(t / lam)
    np.testing.assert_allclose(loghaz, direct, rtol=1e-12, atol=1e-12)
    ok = ref.logsf(t) > -1e3
    np.testing.assert_allclose(loghaz[ok], (ref.logpdf(t) - ref.logsf(t))[ok], atol=1e-9)


def test_logcdf_near_series_switch_is_continuous():
    # the series branch starts at log H = -20; compare both sides with scipy's log(-expm1(-H))
    k, lam = 2.0, 3.0
    logH = np.array([-20.5, -20.0 - 1e-9, -20.0, -19.5])
    t = lam * np.exp(logH / k)
    ours = _dist_fn()(t, np.full(4, k), np.full(4, lam))[2]
    np.testing.assert_allclose(ours, np.log(-np.expm1(-np.exp(logH))), rtol=1e-14)


def test_right_tail_extreme_value_and_gradients():
    # pm.Censored(pm.Weibull.dist(1.5, 10)) gives -inf here (log(1 - CDF) underflows)
    k, lam = pt.dscalars("k", "lam")
    t = 5000.0
    terms = [
        weibull_logsf(t, k, lam),
        censored_weibull_loglik(t, 0, k, lam),
        censored_weibull_loglik(t, 1, k, lam),
        weibull_logcdf(t, k, lam),
    ]
    grads = [g for term in terms for g in pytensor.grad(term, [k, lam])]
    vals = pytensor.function([k, lam], terms + grads)(1.5, 10.0)
    assert vals[0] == pytest.approx(-(500.0**1.5), rel=1e-13)
    assert vals[0] == pytest.approx(-11180.3399, abs=1e-3)
    assert vals[1] == vals[0]
    assert vals[2] == pytest.approx(stats.weibull_min.logpdf(t, 1.5, scale=10.0), rel=1e-12)
    assert all(np.isfinite(v) for v in vals)
    # d/dk -(t/lam)^k = -H log(t/lam);  d/dlam -(t/lam)^k = k H / lam
    H = 500.0**1.5
    assert vals[4] == pytest.approx(-H * math.log(500.0), rel=1e-12)
    assert vals[5] == pytest.approx(1.5 * H / 10.0, rel=1e-12)


def test_left_tail_and_zero_time_gradients_finite():
    k, lam, t = pt.dscalar("k"), pt.dscalar("lam"), pt.dvector("t")
    lcdf = weibull_logcdf(t, k, lam).sum()
    lsf = weibull_logsf(t, k, lam).sum()
    f = pytensor.function(
        [t, k, lam], [lcdf, *pytensor.grad(lcdf, [k, lam]), lsf, pytensor.grad(lsf, k)]
    )
    tv = np.array([1e-100])  # H = (1e-103)^8 underflows to 0: scipy's logcdf is -inf here
    assert stats.weibull_min.logcdf(tv, 8.0, scale=1000.0)[0] == -np.inf
    v = f(tv, 8.0, 1000.0)
    # log F = log H - H/2 + ... = log H to double precision
    assert v[0] == pytest.approx(8.0 * math.log(1e-103), rel=1e-14)
    assert v[1] == pytest.approx(math.log(1e-103), rel=1e-12)  # d log F / dk ~ log(t/lam)
    assert v[2] == pytest.approx(-8.0 / 1000.0, rel=1e-12)
    # t = 0 (e.g. an entry time meaning "no truncation"): log S = 0 with finite gradients
    v0 = f(np.array([0.0, 1.0]), 1.3, 2.0)
    assert v0[0] == -np.inf
    assert v0[3] == pytest.approx(-(0.5**1.3), rel=1e-13)
    assert np.isfinite(v0[4])


def test_accepts_numpy_and_python_scalars_in_float64():
    out = weibull_logsf(np.array([1.0, 2.0]), 1.5, 10)
    assert out.dtype == "float64"
    np.testing.assert_allclose(out.eval(), -((np.array([1.0, 2.0]) / 10) ** 1.5), rtol=1e-15)


@settings(max_examples=150, deadline=None)
@given(
    logt=st.floats(-12.0, 12.0),
    k=st.floats(0.2, 10.0),
    loglam=st.floats(-5.0, 8.0),
)
def test_property_log_probabilities_are_consistent(logt, k, loglam):
    t, lam = np.array([math.exp(logt)]), np.array([math.exp(loglam)])
    logpdf, logsf, logcdf, loghaz = (float(a[0]) for a in _dist_fn()(t, np.array([k]), lam))
    assert logsf <= 0.0 and logcdf <= 0.0
    assert np.isfinite(logcdf) and np.isfinite(logpdf)
    # F + S = 1 in log space (logsf may be hugely negative; logaddexp handles it)
    assert abs(np.logaddexp(logcdf, logsf)) < 1e-12
    assert logpdf == pytest.approx(loghaz + logsf, rel=1e-12, abs=1e-12)


# --------------------------------------------------------------------------------------------
# 2. Individual censored / truncated data
# --------------------------------------------------------------------------------------------


def test_censored_loglik_matches_scipy_sum():
    rng = np.random.default_rng(1)
    n = 40
    t = rng.weibull(1.3, n) * 15.0
    event = rng.random(n) < 0.7
    lam_i = rng.uniform(5.0, 30.0, n)  # per-patient scales broadcast with t
    ours = censored_weibull_loglik(t, event, 1.3, lam_i).eval()
    d = stats.weibull_min(1.3, scale=lam_i)
    ref = np.where(event, d.logpdf(t), d.logsf(t))
    np.testing.assert_allclose(ours, ref, rtol=1e-12)
    # integer 0/1 events give the same
    np.testing.assert_allclose(
        censored_weibull_loglik(t, event.astype(int), 1.3, lam_i).eval(), ref, rtol=1e-12
    )


def test_left_truncated_loglik_matches_scipy_conditional():
    rng = np.random.default_rng(2)
    n = 30
    entry = np.where(rng.random(n) < 0.5, 0.0, rng.uniform(1.0, 18.0, n))
    t = entry + rng.weibull(0.9, n) * 12.0
    event = rng.random(n) < 0.6
    k, lam = pt.dscalars("k", "lam")
    ll = censored_weibull_loglik(t, event, k, lam, entry=entry)
    f = pytensor.function([k, lam], [ll, *pytensor.grad(ll.sum(), [k, lam])])
    ours, gk, glam = f(0.9, 12.0)
    d = stats.weibull_min(0.9, scale=12.0)
    ref = np.where(event, d.logpdf(t), d.logsf(t)) - d.logsf(entry)
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)
    assert np.isfinite(gk) and np.isfinite(glam)  # zero entries do not poison gradients
    # impossible observation (t < entry)
    assert censored_weibull_loglik(3.0, 1, 0.9, 12.0, entry=5.0).eval() == -np.inf


# --------------------------------------------------------------------------------------------
# 3. Published KM median as an order statistic
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lower", [0.0, 18.0])
@pytest.mark.parametrize("n", [1, 2, 5, 12, 53, 168])
def test_order_stat_density_matches_beta_form_and_integrates_to_one(n, lower):
    k, lam = 1.4, 20.0
    d = stats.weibull_min(k, scale=lam)
    r = math.ceil(n / 2)
    # direct: F_L(T_(r)) ~ Beta(r, n - r + 1), density = beta.pdf(F_L(t)) f_L(t)
    t = np.linspace(lower + 0.5, 120.0, 7)
    F_L = 1.0 - d.sf(t) / d.sf(lower)
    ref = stats.beta.logpdf(F_L, r, n - r + 1) + d.logpdf(t) - d.logsf(lower)
    np.testing.assert_allclose(_order_stat_logp(t, n, k, lam, lower), ref, rtol=1e-10)

    def dens(x):
        return math.exp(_order_stat_logp(x, n, k, lam, lower)[0])

    m = float(weibull_median(k, lam, lower if lower > 0 else None).eval())
    total = (
        integrate.quad(dens, lower, m, limit=200)[0] + integrate.quad(dens, m, np.inf, limit=200)[0]
    )
    assert total == pytest.approx(1.0, abs=1e-7)
    # support: below the truncation point the density is zero
    if lower > 0:
        assert _order_stat_logp(lower - 1.0, n, k, lam, lower)[0] == -np.inf


@pytest.mark.parametrize("n", [2, 12, 53])
def test_order_stat_mid_convention_integrates_and_equals_ceil_for_odd(n):
    k, lam = 1.4, 20.0
    m = float(weibull_median(k, lam).eval())

    def dens(x):
        return math.exp(_order_stat_logp(x, n, k, lam, 0.0, "mid")[0])

    total = integrate.quad(dens, 0, m, limit=200)[0] + integrate.quad(dens, m, np.inf, limit=200)[0]
    assert total == pytest.approx(1.0, abs=1e-7)
    t = np.array([5.0, 15.0, 30.0])
    same = np.allclose(_order_stat_logp(t, n, k, lam, 0.0, "mid"), _order_stat_logp(t, n, k, lam))
    assert same == (n % 2 == 1)
    with pytest.raises(ValueError):
        km_median_order_stat_logp(1.0, 3, 1.0, 1.0, convention="median")


def test_order_stat_vectorised_and_gradients_match_finite_differences():
    # published medians of several series at once, some truncated (lower = 0: none)
    med = np.array([14.0, 22.0, 30.0, 40.0])
    n = np.array([12, 53, 5, 168])
    lower = np.array([0.0, 0.0, 18.0, 18.0])
    k, lam = pt.dscalars("k", "lam")
    lp = km_median_order_stat_logp(med, n, k, lam, lower=lower)
    f = pytensor.function([k, lam], [lp, *pytensor.grad(lp.sum(), [k, lam])])
    vals, gk, glam = f(1.4, 20.0)
    for i in range(4):
        assert vals[i] == pytest.approx(_order_stat_logp(med[i], n[i], 1.4, 20.0, lower[i])[0])
    eps = 1e-6
    fd_k = (f(1.4 + eps, 20.0)[0].sum() - f(1.4 - eps, 20.0)[0].sum()) / (2 * eps)
    fd_lam = (f(1.4, 20.0 + eps)[0].sum() - f(1.4, 20.0 - eps)[0].sum()) / (2 * eps)
    assert gk == pytest.approx(fd_k, rel=1e-6)
    assert glam == pytest.approx(fd_lam, rel=1e-6)


@pytest.mark.parametrize(("n", "lower"), [(12, 0.0), (53, 0.0), (12, 18.0), (53, 18.0)])
def test_order_stat_density_matches_monte_carlo(n, lower):
    k, lam, reps = 1.4, 20.0, 20_000
    rng = np.random.default_rng(100 + n + int(lower))
    # iid draws from the (truncated) Weibull by inversion: H(T) = H(L) + Exp(1)
    h_l = (lower / lam) ** k
    x = lam * (h_l + rng.standard_exponential((reps, n))) ** (1.0 / k)
    r = math.ceil(n / 2)
    med = np.partition(x, r - 1, axis=1)[:, r - 1]
    # CDF of our density by trapezoid on a fine grid, then the KS distance to the MC sample.
    # With 20 000 replicates P(KS > 1.95/sqrt(reps) = 0.0138) ~ 0.001; grid error is ~1e-6.
    grid = np.linspace(max(lower, 1e-9), med.max() * 1.5, 20_001)
    dens = np.exp(_order_stat_logp(grid, n, k, lam, lower))
    cdf = integrate.cumulative_trapezoid(dens, grid, initial=0.0)
    assert cdf[-1] == pytest.approx(1.0, abs=1e-4)
    emp = np.searchsorted(np.sort(med), grid, side="right") / reps
    assert np.max(np.abs(emp - cdf)) < 1.95 / math.sqrt(reps)


@pytest.mark.parametrize("n", [1, 3, 7, 11, 53, 2, 4, 10, 12, 168, 6, 8, 14])
def test_km_median_convention_against_lifelines(n):
    from lifelines import KaplanMeierFitter

    rng = np.random.default_rng(n)
    times = rng.weibull(1.4, n) * 20.0
    km = KaplanMeierFitter().fit(times)
    got = km.median_survival_time_
    srt = np.sort(times)
    r = math.ceil(n / 2)
    if n % 2 == 1:
        assert got == srt[r - 1]
        return
    # Even n: in exact arithmetic S_KM = 1/2 exactly after n/2 deaths, so the smallest t with
    # S_KM(t) <= 1/2 is T_(n/2). lifelines computes S_KM = exp(cumsum(log(1 - d/n))), which
    # for some n (6, 8, 14, 18, 20, 44, ...) rounds to 0.5000000000000001 and then reports
    # T_(n/2 + 1). Assert exactly this mechanism.
    s_at = float(km.survival_function_.loc[srt[r - 1]].iloc[0])
    assert s_at == pytest.approx(0.5, abs=1e-14)
    assert got == (srt[r - 1] if s_at <= 0.5 else srt[r])
    if n in (6, 8, 14):
        assert got == srt[r]  # the float artefact, documented in the docstring
    if n in (2, 4, 10, 12, 168):
        assert got == srt[r - 1]


# --------------------------------------------------------------------------------------------
# 4.-6. CI widths
# --------------------------------------------------------------------------------------------


def test_wald_se_from_ci_cases():
    z = stats.norm.ppf(0.975)
    se, flag = wald_se_from_ci(20.0, 15.0, 25.0)
    assert se == pytest.approx(10.0 / (2 * z)) and flag == "symmetric"
    # lower bound clipped at 0: 26.2 - (52.5 - 26.2) < 0, use the upper half only
    se, flag = wald_se_from_ci(26.2, 0.0, 52.5)
    assert se == pytest.approx(26.3 / z) and flag == "upper"
    # lower bound exactly 0 but consistent with symmetry: still symmetric
    se, flag = wald_se_from_ci(10.0, 0.0, 20.0)
    assert se == pytest.approx(20.0 / (2 * z)) and flag == "symmetric"
    se, flag = wald_se_from_ci(30.0, np.nan, np.nan)
    assert np.isnan(se) and flag == "missing"
    se, flag = wald_se_from_ci(30.0, 25.0, 35.0, level=0.90)
    assert se == pytest.approx(10.0 / (2 * stats.norm.ppf(0.95)))
    ses, flags = wald_se_from_ci([20.0, 26.2, 9.0], [15.0, 0.0, np.nan], [25.0, 52.5, 12.0])
    np.testing.assert_allclose(ses, [10.0 / (2 * z), 26.3 / z, np.nan])
    assert list(flags) == ["symmetric", "upper", "missing"]


def test_median_se_asymptotic_closed_form_and_truncated_direct():
    k, lam, n = 1.4, 20.0, 168
    m = lam * LN2 ** (1 / k)
    assert float(median_se_asymptotic(k, lam, n).eval()) == pytest.approx(
        m / (k * LN2 * math.sqrt(n)), rel=1e-13
    )
    # truncated: solve S(m)/S(L) = 1/2 numerically, SE = sqrt(1/4 / n) / (f(m) / S(L))
    from scipy.optimize import brentq

    d, lower = stats.weibull_min(k, scale=lam), 18.0
    m_l = brentq(lambda x: d.sf(x) / d.sf(lower) - 0.5, lower, 200.0, xtol=1e-14)
    assert float(weibull_median(k, lam, lower).eval()) == pytest.approx(m_l, rel=1e-12)
    ref = 0.5 / math.sqrt(n) / (d.pdf(m_l) / d.sf(lower))
    assert float(median_se_asymptotic(k, lam, n, lower=lower).eval()) == pytest.approx(
        ref, rel=1e-10
    )


@pytest.mark.parametrize("lower", [None, 18.0])
def test_median_se_asymptotic_vs_monte_carlo(lower):
    k, lam, n, reps = 1.4, 20.0, 168, 20_000
    rng = np.random.default_rng(7)
    h_l = 0.0 if lower is None else (lower / lam) ** k
    x = lam * (h_l + rng.standard_exponential((reps, n))) ** (1.0 / k)
    r = math.ceil(n / 2)
    sd_mc = np.partition(x, r - 1, axis=1)[:, r - 1].std(ddof=1)
    se = float(median_se_asymptotic(k, lam, n, lower=lower).eval())
    # MC relative SE of an SD is 1/sqrt(2 reps) = 0.5% (3 SE = 1.5%); the asymptotic formula
    # has O(1/n) relative error (~1/168 = 0.6% times a constant of order 1). Observed ~1%.
    assert sd_mc / se == pytest.approx(1.0, abs=0.04)


def test_km_se_logp_is_lognormal_measurement_density():
    k, lam, n, sigma = 1.4, 20.0, np.array([53.0, 168.0]), 0.2
    se_obs = np.array([2.5, 1.1])
    m = lam * LN2 ** (1 / k)
    se_model = m / (k * LN2 * np.sqrt(n))
    ref = stats.norm.logpdf(np.log(se_obs), np.log(se_model), sigma)
    np.testing.assert_allclose(km_se_logp(se_obs, k, lam, n, sigma).eval(), ref, rtol=1e-12)
    # truncated variant uses the truncated SE
    se_tr = float(median_se_asymptotic(k, lam, 53.0, lower=18.0).eval())
    got = float(km_se_logp(2.0, k, lam, 53.0, sigma, lower=18.0).eval())
    assert got == pytest.approx(stats.norm.logpdf(math.log(2.0), math.log(se_tr), sigma), rel=1e-12)
    # the CI width is informative about the shape: SE ~ 1/k at fixed median
    lk = pt.dscalar("k")
    grad = pytensor.grad(km_se_logp(2.5, lk, lam, 53.0, sigma), lk).eval({lk: 1.4})
    assert np.isfinite(grad) and grad != 0.0


# --------------------------------------------------------------------------------------------
# 7. Spearman
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [-0.8, 0.3, 0.6, 0.9])
def test_spearman_gaussian_copula_vs_monte_carlo(rho):
    n = 200_000
    rng = np.random.default_rng(11)
    z = rng.standard_normal((n, 2))
    x = z[:, 0]
    y = rho * x + math.sqrt(1 - rho**2) * z[:, 1]
    rs_mc = stats.spearmanr(np.exp(x), y**3).statistic  # monotone margins do not matter
    rs = float(spearman_from_pearson_gaussian(rho).eval())
    # SE of r_s ~ (1 - rs^2) sqrt(1.06 / n) <= 0.0023; tolerance ~4 SE
    assert rs == pytest.approx(rs_mc, abs=0.01)
    assert float(pearson_from_spearman_gaussian(rs).eval()) == pytest.approx(rho, rel=1e-12)


def test_spearman_fisher_logp_and_fhp_variance():
    rs_obs, rs_model, n = 0.42, 0.3, 57
    ref = stats.norm.logpdf(np.arctanh(rs_obs), np.arctanh(rs_model), math.sqrt(1.06 / (n - 3)))
    assert float(spearman_fisher_logp(rs_obs, rs_model, n).eval()) == pytest.approx(ref, rel=1e-12)
    # FHP: var(atanh r_s) ~ 1.06/(n-3) for bivariate normal samples (n = 30, rho = 0.5)
    rng = np.random.default_rng(3)
    reps, m, rho = 4000, 30, 0.5
    z = rng.standard_normal((reps, m, 2))
    x, y = z[..., 0], rho * z[..., 0] + math.sqrt(1 - rho**2) * z[..., 1]
    rx, ry = stats.rankdata(x, axis=1), stats.rankdata(y, axis=1)
    rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
    rs = (rx * ry).sum(1) / np.sqrt((rx**2).sum(1) * (ry**2).sum(1))
    # relative SE of a variance from 4000 reps: sqrt(2/4000) = 2.2%; allow 10%
    assert np.var(np.arctanh(rs)) / (1.06 / (m - 3)) == pytest.approx(1.0, abs=0.10)


# --------------------------------------------------------------------------------------------
# 8. Implied Spearman among selected pairs
# --------------------------------------------------------------------------------------------


def _mc_spearman_selected(logx, beta, k, rng):
    y = np.exp(beta * logx) * rng.standard_exponential(logx.size) ** (1.0 / k) * 7.0
    return stats.spearmanr(logx, y).statistic


@pytest.mark.parametrize(("beta", "k"), [(0.8, 1.4), (2.0, 2.0), (-0.5, 1.0)])
def test_implied_spearman_lognormal_selected_vs_monte_carlo(beta, k):
    n, mu, sigma, thr = 200_000, math.log(12.0), 0.7, 18.0
    rng = np.random.default_rng(5)
    z0 = (math.log(thr) - mu) / sigma
    logx = mu + sigma * stats.truncnorm.rvs(z0, np.inf, size=n, random_state=rng)
    rs_mc = _mc_spearman_selected(logx, beta, k, rng)
    rs = float(implied_spearman_selected(beta, k, sigma, thr, mu).eval())
    # MC SE of r_s at n = 2e5 is < 0.0023; tolerance ~4 SE
    assert rs == pytest.approx(rs_mc, abs=0.01)


@pytest.mark.parametrize(("beta", "thr"), [(0.8, 18.0), (1.5, 0.0)])
def test_implied_spearman_weibull_selected_vs_monte_carlo(beta, thr):
    n, k, k_x, lam_x = 200_000, 1.4, 1.2, 15.0
    rng = np.random.default_rng(6)
    logx = math.log(lam_x) + np.log((thr / lam_x) ** k_x + rng.standard_exponential(n)) / k_x
    rs_mc = _mc_spearman_selected(logx, beta, k, rng)
    rs = float(implied_spearman_selected_weibull(beta, k, k_x, lam_x, thr).eval())
    assert rs == pytest.approx(rs_mc, abs=0.01)


def test_implied_spearman_limits_and_selection_effect():
    assert float(implied_spearman_selected(0.0, 1.4, 0.7, 18.0, 2.5).eval()) == pytest.approx(
        0.0, abs=1e-12
    )
    # very strong dependence -> 1 - 1/N^2
    assert float(implied_spearman_selected(200.0, 5.0, 0.7, 18.0, 2.5).eval()) > 0.99
    # selection on X >= threshold attenuates the correlation (range restriction)
    full = float(implied_spearman_selected(0.8, 1.4, 0.7, 0.0, 2.5).eval())
    sel = float(implied_spearman_selected(0.8, 1.4, 0.7, 18.0, 2.5).eval())
    assert 0.0 < sel < full
    # differentiable in beta
    b = pt.dscalar("b")
    g = pytensor.grad(implied_spearman_selected(b, 1.4, 0.7, 18.0, 2.5), b).eval({b: 0.8})
    assert np.isfinite(g) and g > 0


def test_implied_spearman_mixture_vs_monte_carlo_and_single_group():
    """Pooled over three groups differing in X scale and in Y offset, against 400k MC pairs."""
    lam, a, w = np.array([60.0, 30.0, 15.0]), np.array([0.0, -0.8, 0.6]), np.array([5, 3, 2.0])
    k_x, k, beta, thr = 1.3, 1.6, 0.5, 18.0
    rng = np.random.default_rng(8)
    xs, ys = [], []
    for t in range(3):
        m = int(400_000 * w[t] / w.sum())
        x = lam[t] * ((thr / lam[t]) ** k_x + rng.standard_exponential(m)) ** (1 / k_x)
        xs.append(x)
        ys.append(np.exp(a[t] + beta * np.log(x)) * rng.standard_exponential(m) ** (1 / k))
    rs_mc = stats.spearmanr(np.concatenate(xs), np.concatenate(ys)).statistic
    args = (beta, k, k_x, np.log(lam), a, w, thr)
    rs = float(implied_spearman_selected_weibull_mixture(*args, n_grid=200).eval())
    # MC SE < 0.0016 at n = 4e5; grid error ~1e-3 at 200 points per group
    assert rs == pytest.approx(rs_mc, abs=0.006)
    # ignoring the groups (one population) is measurably different here: why the model pools
    one = float(implied_spearman_selected_weibull(beta, k, k_x, 30.0, thr).eval())
    assert abs(one - rs_mc) > 0.03
    # the default grid (40 per group) is within 0.003 of the fine one
    coarse = float(implied_spearman_selected_weibull_mixture(*args).eval())
    assert coarse == pytest.approx(rs, abs=0.003)
    # one group (or zero weight on the others) reduces to the single-population function
    single = implied_spearman_selected_weibull_mixture(
        beta, k, k_x, np.log(lam), a, np.array([0.0, 1.0, 0.0]), thr, n_grid=100
    )
    ref = implied_spearman_selected_weibull(beta, k, k_x, 30.0, thr, n_grid=100)
    assert float(single.eval()) == pytest.approx(float(ref.eval()), abs=1e-12)
    with pytest.raises(ValueError, match="weights"):
        implied_spearman_selected_weibull_mixture(*args[:5], np.array([-1.0, 1, 1]), thr)
    # per-group node counts: equal counts reproduce the scalar form; counts proportional to
    # the weights (fewer nodes for small groups) stay within 0.005 of the fine grid
    same = implied_spearman_selected_weibull_mixture(*args, n_grid=np.array([40, 40, 40]))
    assert float(same.eval()) == pytest.approx(coarse, abs=1e-12)
    prop = implied_spearman_selected_weibull_mixture(*args, n_grid=np.array([60, 36, 24]))
    assert float(prop.eval()) == pytest.approx(rs, abs=0.005)
    with pytest.raises(ValueError, match="n_grid"):
        implied_spearman_selected_weibull_mixture(*args, n_grid=np.array([40, 1, 40]))


def test_spearman_fisher_logp_attenuation():
    """atanh(r_obs) ~ N(a * atanh(rho), sqrt(1.06 / (n - 3))): the censored coefficient's mean."""
    want = stats.norm.logpdf(np.arctanh(0.3), 0.88 * np.arctanh(0.35), math.sqrt(1.06 / 165))
    got = float(spearman_fisher_logp(0.3, 0.35, 168, attenuation=0.88).eval())
    assert got == pytest.approx(want, rel=1e-12)
    # a = 1 is the unattenuated term; a symbolic a works (it is a model parameter)
    import pytensor.tensor as pt

    a = pt.dscalar("a")
    f = spearman_fisher_logp(0.3, 0.35, 168, attenuation=a)
    assert float(f.eval({a: 1.0})) == pytest.approx(
        float(spearman_fisher_logp(0.3, 0.35, 168).eval()), rel=1e-12
    )


def test_censoring_attenuates_spearman_by_about_the_prior_factor():
    """Monte Carlo check of the attenuation prior's centre: Weibull pairs with an AFT link,
    independent follow-up U(0.5, 4) x the median; slope of the censored Fisher z on the
    uncensored one over 40 large-sample worlds is within 0.10 of the prior mean 0.88 (tighter
    than the prior's +- 2 SD, 0.16)."""
    rng = np.random.default_rng(5)
    zu, zc = [], []
    for beta in np.linspace(-0.8, 0.8, 40):
        x = 18.0 + 30.0 * rng.weibull(1.4, 20_000)
        t = np.exp(beta * np.log(x / 36.0)) * 15.0 * rng.weibull(1.5, x.size)
        c = np.median(t) * rng.uniform(0.5, 4.0, x.size)
        zu.append(np.arctanh(stats.spearmanr(x, t).statistic))
        zc.append(np.arctanh(stats.spearmanr(x, np.minimum(t, c)).statistic))
    slope = np.polyfit(zu, zc, 1)[0]
    assert 0.78 < slope < 0.98
