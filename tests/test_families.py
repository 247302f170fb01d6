"""Survival families: NumPy closed forms against SciPy, PyTensor terms against NumPy.

Each family is an AFT location-scale law on log time (``log T = log lam + eps / k``). The
references are SciPy's ``weibull_min(c=k, scale=lam)`` and ``lognorm(s=1/k, scale=lam)``;
tolerances are floating-point ones (the formulas are exact), except the Monte Carlo checks of
the samplers, whose tolerances are argued from the binomial SE of an empirical CDF.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, stats

from netbayes.families import FAMILIES, LOGNORMAL, WEIBULL, get_family

T = np.array([0.3, 1.0, 4.5, 12.0, 30.0, 90.0])
K = np.array([0.7, 1.5, 3.0])
LAM = np.array([2.0, 14.0, 40.0])


def scipy_law(name: str, k: float, lam: float):
    if name == "weibull":
        return stats.weibull_min(c=k, scale=lam)
    if name == "lognormal":
        return stats.lognorm(s=1.0 / k, scale=lam)
    raise AssertionError(name)


FAMILY_NAMES = sorted(FAMILIES)


def test_registry_lookup_and_error():
    assert get_family("weibull") is WEIBULL and get_family("lognormal") is LOGNORMAL
    assert get_family(WEIBULL) is WEIBULL
    with pytest.raises(ValueError, match=r"family='gompertz' is not allowed; expected one of"):
        get_family("gompertz")


@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("k", K)
@pytest.mark.parametrize("lam", LAM)
def test_numpy_closed_forms_match_scipy(name, k, lam):
    fam, ref = get_family(name), scipy_law(name, k, lam)
    np.testing.assert_allclose(fam.sf(T, k, lam), ref.sf(T), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(fam.pdf(T, k, lam), ref.pdf(T), rtol=1e-11, atol=1e-300)
    ok = ref.sf(T) > 1e-250
    h_ref = np.exp(ref.logpdf(T) - ref.logsf(T))
    np.testing.assert_allclose(fam.hazard(T, k, lam)[ok], h_ref[ok], rtol=1e-9)
    np.testing.assert_allclose(fam.cumhaz(T, k, lam)[ok], -ref.logsf(T)[ok], rtol=1e-9)
    p = np.array([0.05, 0.25, 0.5, 0.9])
    np.testing.assert_allclose(fam.quantile(p, k, lam), ref.ppf(p), rtol=1e-11)
    np.testing.assert_allclose(fam.median(k, lam), ref.median(), rtol=1e-12)
    assert fam.sf(0.0, k, lam) == 1.0 and fam.sf(-1.0, k, lam) == 1.0


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_truncated_quantile_is_the_conditional_law(name):
    fam, k, lam, lower = get_family(name), 1.4, 20.0, 18.0
    u = np.array([0.0, 0.1, 0.5, 0.9])
    x = fam.truncated_quantile(u, k, lam, lower)
    ref = scipy_law(name, k, lam)
    # P(T <= x | T >= L) = u
    np.testing.assert_allclose((ref.cdf(x) - ref.cdf(lower)) / ref.sf(lower), u, atol=1e-12)
    assert x[0] == pytest.approx(lower, rel=1e-12)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_samplers_follow_the_law(name):
    """Empirical CDF of 40,000 draws vs the law: binomial SE <= 0.0025, tolerance 5 SE."""
    fam, k, lam, n = get_family(name), 1.6, 12.0, 40_000
    rng = np.random.default_rng(3)
    q = fam.quantile(np.array([0.2, 0.5, 0.8]), k, lam)
    for draws in (
        fam.sample(rng, k, lam, (n,)),
        lam * fam.unit_sample(rng, k, n),
    ):
        np.testing.assert_allclose((draws[:, None] <= q).mean(axis=0), [0.2, 0.5, 0.8], atol=0.0125)
    lower = 15.0
    tr = fam.truncated_sample(rng, k, lam, lower, (n,))
    assert tr.min() >= lower
    qt = fam.truncated_quantile(np.array([0.2, 0.5, 0.8]), k, lam, lower)
    np.testing.assert_allclose((tr[:, None] <= qt).mean(axis=0), [0.2, 0.5, 0.8], atol=0.0125)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_mixture_median_solves_half(name):
    fam = get_family(name)
    k = np.array([1.2, 2.5])
    lam = np.array([[8.0, 20.0, 40.0], [5.0, 5.5, 30.0]])
    w = np.array([0.2, 0.5, 0.3])
    m = fam.mixture_median(k, lam, w)
    s = (fam.sf(m[:, None], k[:, None], lam) * w).sum(axis=1)
    np.testing.assert_allclose(s, 0.5, atol=1e-12)
    np.testing.assert_allclose(fam.mixture_sf(m, k, lam, w).diagonal(), 0.5, atol=1e-12)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_density_integrates_to_the_cdf(name):
    fam, k, lam = get_family(name), 1.3, 10.0
    val, _ = integrate.quad(lambda t: float(fam.pdf(t, k, lam)), 0.0, 25.0, limit=200)
    assert val == pytest.approx(1.0 - float(fam.sf(25.0, k, lam)), abs=1e-8)


# -- PyTensor half -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pt():
    return pytest.importorskip("pytensor.tensor")


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_pytensor_terms_match_numpy(pt, name):
    fam = get_family(name)
    t, k, lam = T[:, None], K[None, :], 11.0
    for j, kj in enumerate(K):  # SciPy's log-scale functions are accurate in the tails
        ref = scipy_law(name, kj, lam)
        np.testing.assert_allclose(fam.logsf(t, k, lam).eval()[:, j], ref.logsf(T), rtol=1e-9)
        np.testing.assert_allclose(fam.logcdf(t, k, lam).eval()[:, j], ref.logcdf(T), rtol=1e-9)
        np.testing.assert_allclose(fam.logpdf(t, k, lam).eval()[:, j], ref.logpdf(T), rtol=1e-9)
    ev = np.array([1, 0, 1, 0, 1, 1])[:, None]
    ll = fam.censored_loglik(t, ev, k, lam).eval()
    ref = np.where(ev == 1, fam.logpdf(t, k, lam).eval(), fam.logsf(t, k, lam).eval())
    np.testing.assert_allclose(ll, ref, rtol=1e-10)
    k_t = pt.as_tensor_variable(K)
    np.testing.assert_allclose(fam.median_pt(k_t, 11.0).eval(), fam.median(K, 11.0), rtol=1e-12)
    u = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(
        fam.truncated_quantile_pt(u, pt.as_tensor_variable(np.array(1.5)), 20.0, 18.0).eval(),
        fam.truncated_quantile(u, 1.5, 20.0, 18.0),
        rtol=1e-10,
    )


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_far_tails_are_finite(pt, name):
    """Far tails stay finite (no log(0)): log S at t = 1e4 lam, log F at t = 1e-4 lam."""
    fam = get_family(name)
    assert np.isfinite(fam.logsf(1e4 * 10.0, 2.0, 10.0).eval())
    assert np.isfinite(fam.logcdf(1e-4 * 10.0, 2.0, 10.0).eval())


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_km_median_logp_is_the_order_statistic_density(pt, name):
    """Generic order-statistic density == Beta(r, n-r+1) density of F(m) times f(m)."""
    fam, k, lam, lower = get_family(name), 1.5, 20.0, 18.0
    m, n = np.array([19.0, 25.0, 40.0]), np.array([5.0, 12.0, 53.0])
    r = np.ceil(n / 2)
    s_l = fam.sf(lower, k, lam)
    f_trunc = (fam.cdf(m, k, lam) - fam.cdf(lower, k, lam)) / s_l
    dens = fam.pdf(m, k, lam) / s_l
    ref = stats.beta(r, n - r + 1).logpdf(f_trunc) + np.log(dens)
    got = fam.km_median_logp(m, n, k, lam, lower=lower).eval()
    np.testing.assert_allclose(got, ref, rtol=1e-9)
    # the base-class (generic) formula agrees with the Weibull closed form
    from netbayes.families.base import SurvivalFamily

    generic = SurvivalFamily.km_median_logp(fam, m, n, k, lam, lower=lower).eval()
    np.testing.assert_allclose(generic, got, rtol=1e-9)
    assert fam.km_median_logp(17.0, 5.0, k, lam, lower=lower).eval() == -np.inf


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_difference_law_matches_simulation(pt, name):
    """P(eps1 - eps2 <= x) vs 200,000 simulated pairs (SE <= 0.0011; tolerance 5 SE)."""
    fam = get_family(name)
    rng = np.random.default_rng(11)
    e = np.log(fam.unit_sample(rng, 1.0, (200_000, 2)))
    x = np.array([-1.5, 0.0, 0.7])
    emp = ((e[:, 0] - e[:, 1])[:, None] <= x).mean(axis=0)
    np.testing.assert_allclose(fam.diff_cdf_pt(x).eval(), emp, atol=0.0056)


def test_generic_spearman_reduces_to_the_weibull_closed_form(pt):
    """The family-generic implied Spearman term, evaluated for the Weibull family through the
    base-class methods, equals the Weibull closed form (same quadrature nodes)."""
    from netbayes.families.base import SurvivalFamily
    from netbayes.likelihoods import survival as L

    class GenericWeibull(SurvivalFamily):  # the Weibull law through the generic code only
        name = "generic-weibull"
        sf0 = WEIBULL.sf0
        logpdf0 = WEIBULL.logpdf0
        ppf0 = WEIBULL.ppf0
        logsf0_pt = WEIBULL.logsf0_pt
        logcdf0_pt = WEIBULL.logcdf0_pt
        logpdf0_pt = WEIBULL.logpdf0_pt
        ppf0_pt = WEIBULL.ppf0_pt
        diff_cdf_pt = WEIBULL.diff_cdf_pt

    args = (
        0.6,
        1.7,
        1.4,
        np.log([30.0, 45.0, 25.0]),
        np.array([0.1, -0.2, 0.3]),
        np.array([5.0, 54.0, 53.0]),
        18.0,
        np.array([8, 40, 40]),
    )
    closed = L.implied_spearman_selected_mixture(WEIBULL, *args).eval()
    generic = L.implied_spearman_selected_mixture(GenericWeibull(), *args).eval()
    assert generic == pytest.approx(closed, abs=1e-10)
    ln = L.implied_spearman_selected_mixture(LOGNORMAL, *args).eval()
    assert -1.0 < ln < 1.0 and abs(ln - closed) > 1e-3  # a different law, a different value


def test_weibull_truncated_quantile_at_zero_has_finite_gradients():
    """A lower bound of 0 (a study without a selection rule) is the plain quantile, with
    finite gradients for k < 1 too (``(0/lam)**k`` had a NaN gradient in lam: 347 divergent
    transitions in a K = 8 simulated fit, 0 with this guard); positive bounds are unchanged."""
    import pytensor
    import pytensor.tensor as pt

    fam = get_family("weibull")
    k, lam, lt = pt.dscalar("k"), pt.dscalar("lam"), pt.dscalar("lt")
    u = np.array([0.1, 0.5, 0.9])
    plain = 20.0 * (-np.log1p(-u)) ** (1 / 0.8)
    for lower, extra in ((0.0, []), (np.zeros(3), []), (lt, [0.0])):
        x = fam.truncated_quantile_pt(u, k, lam, lower)
        f = pytensor.function(
            [k, lam, *([lt] if extra else [])], [x, *pytensor.grad(x.sum(), [k, lam])]
        )
        val, *grads = f(0.8, 20.0, *extra)
        np.testing.assert_allclose(val, plain, rtol=1e-12)
        assert np.isfinite(grads).all()
    mixed = fam.truncated_quantile_pt(u, k, lam, np.array([0.0, 12.0, 18.0]))
    positive = fam.truncated_quantile_pt(u[1:], k, lam, np.array([12.0, 18.0]))  # old path
    a, b = pytensor.function([k, lam], [mixed, positive])(1.3, 20.0)
    np.testing.assert_array_equal(a[1:], b)


# -- RMST, quantiles, hazards of components and mixtures (flexsurv's summary types) -------------
@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("k", K)
@pytest.mark.parametrize("lam", LAM)
def test_rmst_closed_form_matches_quadrature_and_generic(name, k, lam):
    """RMST(tau) = int_0^tau S(t) dt = E min(T, tau): the family's closed form against adaptive
    quadrature of SciPy's survival function, against the generic Gauss-Legendre form of the
    base class, and against the Monte Carlo mean of min(T, tau)."""
    from netbayes.families.base import SurvivalFamily

    fam, ref = get_family(name), scipy_law(name, k, lam)
    taus = np.array([0.5, 6.0, 24.0, 120.0])
    got = fam.rmst(taus, k, lam)
    want = [integrate.quad(ref.sf, 0.0, t, epsabs=1e-13, epsrel=1e-12, limit=200)[0] for t in taus]
    np.testing.assert_allclose(got, want, rtol=1e-9)
    # the generic form: 64 Gauss-Legendre nodes after t = tau s^2 (k >= 0.7 here)
    np.testing.assert_allclose(SurvivalFamily.rmst(fam, taus, k, lam), want, rtol=2e-6)
    assert fam.rmst(0.0, k, lam) == 0.0 and fam.rmst(-3.0, k, lam) == 0.0
    # E min(T, tau) by simulation: 200,000 draws, SE <= tau / sqrt(4 n) ~ 0.0011 tau; 5 SE
    x = ref.rvs(size=200_000, random_state=np.random.default_rng(7))
    np.testing.assert_allclose(np.minimum(x, 24.0).mean(), fam.rmst(24.0, k, lam),
                               atol=5 * 24.0 / np.sqrt(4 * x.size))  # fmt: skip


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_parametric_summaries_match_lifelines(name):
    """The lifelines fitters' closed forms at their fitted parameters: S(t), h(t), H(t),
    percentile (lifelines: the time where S = p, i.e. our quantile(1 - p)) and
    ``restricted_mean_survival_time``."""
    lifelines = pytest.importorskip("lifelines")
    from lifelines.utils import restricted_mean_survival_time

    fam = get_family(name)
    rng = np.random.default_rng(3)
    t = scipy_law(name, 1.3, 15.0).rvs(size=400, random_state=rng)
    if name == "weibull":
        m = lifelines.WeibullFitter().fit(t)
        k, lam = m.rho_, m.lambda_
    else:
        m = lifelines.LogNormalFitter().fit(t)
        k, lam = 1.0 / m.sigma_, np.exp(m.mu_)
    grid = np.array([1.0, 6.0, 15.0, 40.0])
    np.testing.assert_allclose(fam.sf(grid, k, lam), m.survival_function_at_times(grid), rtol=1e-9)
    np.testing.assert_allclose(fam.hazard(grid, k, lam), m.hazard_at_times(grid), rtol=1e-9)
    np.testing.assert_allclose(
        fam.cumhaz(grid, k, lam), m.cumulative_hazard_at_times(grid), rtol=1e-9
    )
    for p in (0.25, 0.5, 0.8):
        np.testing.assert_allclose(fam.quantile(1.0 - p, k, lam), m.percentile(p), rtol=1e-6)
    # lifelines integrates its survival function numerically
    np.testing.assert_allclose(
        fam.rmst(24.0, k, lam), restricted_mean_survival_time(m, t=24.0), rtol=1e-4
    )


@pytest.fixture(scope="module")
def mixture():
    rng = np.random.default_rng(11)
    k = rng.uniform(0.8, 2.5, 7)
    lam = rng.uniform(4.0, 40.0, (7, 4))
    w = np.array([0.1, 0.0, 0.6, 0.3])  # a zero weight is ignored
    return k, lam, w


@pytest.mark.parametrize("name", FAMILY_NAMES)
@pytest.mark.parametrize("per_component_shape", [False, True])
def test_mixture_summaries_are_the_weighted_components(name, mixture, per_component_shape):
    """Mixture S, f, h, H, RMST and quantiles against their definitions from the components
    (the shape shared per draw, or one per component as a standardised population has)."""
    fam = get_family(name)
    k, lam, w = mixture
    if per_component_shape:
        k = k[:, None] * np.array([1.0, 0.5, 1.3, 0.8])
    kk = np.broadcast_to(k[:, None] if k.ndim == 1 else k, lam.shape)
    t = np.array([0.0, 2.0, 12.0, 36.0, 200.0])
    S = sum(w[j] * fam.sf(t[None, :], kk[:, j : j + 1], lam[:, j : j + 1]) for j in range(4))
    f = sum(w[j] * fam.pdf(t[None, :], kk[:, j : j + 1], lam[:, j : j + 1]) for j in range(4))
    np.testing.assert_allclose(fam.mixture_sf_any(t, k, lam, w), S, rtol=1e-12)
    np.testing.assert_allclose(fam.mixture_pdf(t, k, lam, w), f, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(fam.mixture_hazard(t, k, lam, w)[:, 1:], f[:, 1:] / S[:, 1:],
                               rtol=1e-10)  # fmt: skip
    np.testing.assert_allclose(fam.mixture_cumhaz(t, k, lam, w), -np.log(S), rtol=1e-10,
                               atol=1e-14)  # fmt: skip
    tau = np.array([6.0, 24.0])
    R = sum(w[j] * fam.rmst(tau[None, :], kk[:, j : j + 1], lam[:, j : j + 1]) for j in range(4))
    np.testing.assert_allclose(fam.mixture_rmst(tau, k, lam, w), R, rtol=1e-12)
    p = np.array([0.1, 0.5, 0.9])
    q = fam.mixture_quantile(p, k, lam, w)
    # F(q) = p to bisection precision (60 halvings of the log-time bracket)
    s_q = fam.mixture_sf_any(q.ravel(), k, lam, w)[np.repeat(np.arange(7), 3), np.arange(21)]
    np.testing.assert_allclose(1.0 - s_q.reshape(7, 3), np.tile(p, (7, 1)), atol=1e-12)
    if not per_component_shape:
        np.testing.assert_allclose(q[:, 1], fam.mixture_median(k, lam, w), rtol=1e-12)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_mixture_cumhaz_is_exact_far_in_the_tail(name):
    """Where S underflows (S < 1e-300), -log S of the mixture still comes from the
    components' log S: against SciPy's log survival functions combined by logaddexp."""
    fam = get_family(name)
    k, lam, w = np.array([2.0]), np.array([[1.0, 2.0]]), np.array([0.5, 0.5])
    t = np.array([60.0]) if name == "weibull" else np.array([1e12])
    assert fam.mixture_sf(t, k, lam, w)[0, 0] == 0.0  # underflowed
    ls = [scipy_law(name, 2.0, lam_j).logsf(t[0]) for lam_j in (1.0, 2.0)]
    want = -(np.logaddexp(*ls) + np.log(0.5))
    got = fam.mixture_cumhaz(t, k, lam, w)[0, 0]
    assert np.isfinite(got) and got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_mixture_hazard_is_finite_where_every_component_underflows(name):
    """h = sum_j w_j S_j h_j / sum_j w_j S_j with the weights formed from log S: where S
    underflows to 0 the mixture's hazard is still the (log-)weighted mean of the components'
    hazards, here dominated by the slow component."""
    fam = get_family(name)
    k, lam, w = np.array([2.0]), np.array([[1.0, 2.0]]), np.array([0.5, 0.5])
    t = np.array([60.0]) if name == "weibull" else np.array([1e12])
    ls = np.array([scipy_law(name, 2.0, lam_j).logsf(t[0]) for lam_j in (1.0, 2.0)])
    wt = np.exp(ls - ls.max()) / np.exp(ls - ls.max()).sum()
    hs = [fam.hazard(t, 2.0, lam_j)[0] for lam_j in (1.0, 2.0)]
    got = fam.mixture_hazard(t, k, lam, w)[0, 0]
    assert np.isfinite(got) and got == pytest.approx(wt @ hs, rel=1e-12)
