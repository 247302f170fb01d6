"""Tests for netbayes.likelihoods.ordinal, each term against a direct computation."""

from __future__ import annotations

import functools
import itertools

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numpy.polynomial.hermite_e import hermegauss
from scipy import integrate, special, stats

from netbayes.likelihoods import ordinal as o

LINKS = ("logit", "probit")
CUTS = np.array([-1.0, 0.5, 1.5, 3.0])
# three cell lines with their own cutpoints
CUTS_L = np.array([[-1.0, 0.5, 1.5, 3.0], [-0.5, 0.2, 2.0, 2.8], [-2.0, 0.0, 1.0, 2.5]])
ETA_L = np.array([0.2, -0.5, 1.0])


@pytest.fixture(autouse=True)
def _python_linker():
    """Compile with PyTensor's Python linker (FAST_COMPILE): a cold C compile of these graphs
    took ~50 s of this file's time, and the C path is not the one the models sample with
    (nutpie uses numba). The numerics checked here (tails, log1mexp, erfcx) are the same
    formulas; the Python ops call NumPy/SciPy."""
    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        yield


# ---------------------------------------------------------------------------------------------
# direct (numpy / scipy) references
# ---------------------------------------------------------------------------------------------
def cdf(z, link):
    return stats.logistic.cdf(z) if link == "logit" else stats.norm.cdf(z)


def ref_probs(eta, cuts, link):
    eta = np.asarray(eta, dtype=float)
    cum = cdf(np.asarray(cuts) - eta[..., None], link)
    zeros = np.zeros_like(cum[..., :1])
    return np.diff(np.concatenate([zeros, cum, zeros + 1.0], axis=-1), axis=-1)


def ref_logprobs_hp(eta, cuts, link):
    """High-precision log P(G = g) for a scalar eta, independent of the module's algorithm."""
    z = np.asarray(cuts, dtype=float) - eta
    out = np.empty(len(z) + 1)
    if link == "logit":
        # log F(z) = -log(1 + e^-z);  F(b) - F(a) = (e^b - e^a) / ((1 + e^a)(1 + e^b)) exactly
        out[0] = -np.logaddexp(0.0, -z[0])
        out[-1] = -np.logaddexp(0.0, z[-1])
        a, b = z[:-1], z[1:]
        out[1:-1] = b + np.log(-np.expm1(a - b)) - np.logaddexp(0.0, a) - np.logaddexp(0.0, b)
        return out
    out[0] = special.log_ndtr(z[0])
    out[-1] = special.log_ndtr(-z[-1])
    for j, (a, b) in enumerate(itertools.pairwise(z), start=1):
        if a + b > 0:  # integrate the smaller tail: Phi(b) - Phi(a) = Phi(-a) - Phi(-b)
            a, b = -b, -a
        # Phi(b) - Phi(a) = phi(b) * int_a^b exp(-(t^2 - b^2) / 2) dt, integrand <= 1 near t = b
        val, _ = integrate.quad(
            lambda t, b=b: np.exp(-0.5 * (t - b) * (t + b)), a, b, epsabs=0, epsrel=1e-13
        )
        out[j] = stats.norm.logpdf(b) + np.log(val)
    return out


def quad_expect(fun, sigma):
    """E[fun(sigma * X)], X ~ N(0, 1), by adaptive quadrature."""
    val, _ = integrate.quad(
        lambda x: stats.norm.pdf(x) * fun(sigma * x),
        -12.0,
        12.0,
        epsabs=1e-14,
        epsrel=1e-12,
        limit=500,
    )
    return val


def ref_any_line_probs_quad(eta_l, cuts_l, sigma, link):
    def prod(u, j):
        return np.prod(cdf(cuts_l[:, j] - eta_l - u, link))

    le2 = quad_expect(lambda u: prod(u, 2), sigma)
    le3 = quad_expect(lambda u: prod(u, 3), sigma)
    return np.array([le2, le3 - le2, 1.0 - le3])


def ref_marginal_quad(eta, cuts, sigma, link):
    return np.array(
        [
            quad_expect(lambda u, g=g: ref_probs(np.array(eta + u), cuts, link)[g], sigma)
            for g in range(5)
        ]
    )


# ---------------------------------------------------------------------------------------------
# compiled functions (compiled once per module run; keeps the file fast)
# ---------------------------------------------------------------------------------------------
@functools.cache
def f_logprobs(link):
    eta, cuts = pt.dvector("eta"), pt.dmatrix("cuts")
    return pytensor.function([eta, cuts], o.ordinal_logprobs(eta, cuts, link))


@functools.cache
def f_any_line(link, n_nodes=o.DEFAULT_N_NODES, rule=o.DEFAULT_RULE):
    eta, cuts, sigma = pt.dvector("eta"), pt.dmatrix("cuts"), pt.dscalar("sigma")
    out = o.any_line_probs(eta, cuts, sigma, link, n_nodes, rule=rule, log=True)
    return pytensor.function([eta, cuts, sigma], out)


@functools.cache
def f_marginal(link):
    eta, cuts, sigma = pt.dvector("eta"), pt.dmatrix("cuts"), pt.dscalar("sigma")
    return pytensor.function(
        [eta, cuts, sigma], o.marginal_line_probs(eta, cuts, sigma, link, log=True)
    )


def full_cuts(n):
    return np.broadcast_to(CUTS, (n, 4)).copy()


# ---------------------------------------------------------------------------------------------
# ordinal_logprobs
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("link", LINKS)
def test_logprobs_match_scipy_and_sum_to_one(link):
    rng = np.random.default_rng(0)
    eta = np.linspace(-5.0, 5.0, 41)
    cuts = np.sort(rng.normal(0.0, 2.0, size=(41, 4)), axis=-1)
    lp = f_logprobs(link)(eta, cuts)
    assert lp.shape == (41, 5)
    np.testing.assert_allclose(np.exp(lp), ref_probs(eta, cuts, link), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(special.logsumexp(lp, axis=-1), 0.0, atol=1e-13)


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("eta", [-800.0, -45.0, -30.0, -12.0, 12.0, 30.0, 45.0, 800.0])
def test_logprobs_tails_finite_and_exact(link, eta):
    # beyond |eta| ~ 38 (probit) / 745 (logit) log F(z) rounds to 0 in the upper tail, so the
    # interior categories are only right if the smaller tail is the one differenced
    lp = f_logprobs(link)(np.array([eta]), CUTS[None, :])[0]
    assert np.all(np.isfinite(lp))
    assert abs(special.logsumexp(lp)) < 1e-13
    ref = ref_logprobs_hp(eta, CUTS, link)
    # relative accuracy on the log scale and on the tiny log-probabilities close to 0
    np.testing.assert_allclose(lp, ref, rtol=1e-9, atol=0)


def test_logprobs_broadcasting_and_numpy_inputs():
    # eta (3, 1) against per-line cutpoints (2, 4) -> (3, 2, 5); plain numpy input works
    eta = np.array([[-1.0], [0.0], [2.0]])
    lp = o.ordinal_logprobs(eta, CUTS_L[:2], "logit").eval()
    assert lp.shape == (3, 2, 5)
    np.testing.assert_allclose(np.exp(lp), ref_probs(eta, CUTS_L[:2], "logit"), atol=1e-13)


def test_invalid_link_and_shapes_raise():
    with pytest.raises(ValueError, match="link"):
        o.ordinal_logprobs(0.0, CUTS, "cloglog")
    with pytest.raises(ValueError, match="last axis"):
        o.coarsened_counts_loglik(10, 1, 1, 0.0, CUTS[:3])
    with pytest.raises(ValueError, match="sum <= n"):
        o.coarsened_counts_loglik(3, 2, 2, 0.0, CUTS)
    with pytest.raises(ValueError, match="sum <= n"):
        o.any_line_counts_loglik(5, 4, 2, ETA_L, CUTS_L, 1.0)


# ---------------------------------------------------------------------------------------------
# count likelihoods
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("link", LINKS)
def test_full_counts_vs_scipy_multinomial(link):
    counts = np.array([[6, 4, 1, 0, 0], [0, 0, 0, 0, 3], [10, 5, 3, 2, 1]])
    eta = np.array([-0.5, 1.5, 0.3])
    got = o.full_grade_counts_loglik(counts, eta, CUTS, link).eval()
    p = ref_probs(eta, CUTS, link)
    want = [stats.multinomial.logpmf(c, c.sum(), pi) for c, pi in zip(counts, p, strict=True)]
    np.testing.assert_allclose(got, want, rtol=1e-11)


@pytest.mark.parametrize("link", LINKS)
def test_coarsened_vs_scipy_multinomial(link):
    n, n3, n4 = np.array([181, 40, 12]), np.array([14, 3, 0]), np.array([0, 2, 1])
    eta = np.array([-1.0, 0.0, 0.7])
    got = o.coarsened_counts_loglik(n, n3, n4, eta, CUTS, link).eval()
    p = ref_probs(eta, CUTS, link)
    p3 = np.stack([p[:, :3].sum(-1), p[:, 3], p[:, 4]], axis=-1)
    want = [
        stats.multinomial.logpmf([ni - a - b, a, b], ni, pi)
        for ni, a, b, pi in zip(n, n3, n4, p3, strict=True)
    ]
    np.testing.assert_allclose(got, want, rtol=1e-11)


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize(("n3", "n4"), [(1, 1), (0, 0), (2, 0)])
def test_coarsened_equals_full_summed_over_splits(link, n3, n4):
    n, eta = 6, 0.4
    rest = n - n3 - n4
    splits = [
        [k0, k1, rest - k0 - k1, n3, n4] for k0 in range(rest + 1) for k1 in range(rest + 1 - k0)
    ]
    full = o.full_grade_counts_loglik(np.array(splits), eta, CUTS, link).eval()
    coarse = o.coarsened_counts_loglik(n, n3, n4, eta, CUTS, link).eval()
    assert len(splits) == (rest + 1) * (rest + 2) // 2
    np.testing.assert_allclose(special.logsumexp(full), coarse, rtol=1e-12)


@pytest.mark.parametrize("link", LINKS)
def test_count_logliks_with_marginal_probabilities(link):
    sigma, eta = 1.3, 0.25
    pbar = ref_marginal_quad(eta, CUTS, sigma, link)
    counts = np.array([5, 3, 2, 2, 1])
    got = o.full_grade_counts_loglik(counts, eta, CUTS, link, sigma_u=sigma).eval()
    np.testing.assert_allclose(got, stats.multinomial.logpmf(counts, 13, pbar), rtol=1e-9)
    got = o.coarsened_counts_loglik(181, 14, 2, eta, CUTS, link, sigma_u=sigma).eval()
    want = stats.multinomial.logpmf([165, 14, 2], 181, [pbar[:3].sum(), pbar[3], pbar[4]])
    np.testing.assert_allclose(got, want, rtol=1e-9)


@pytest.mark.parametrize("link", LINKS)
def test_individual_grades_loglik(link):
    rng = np.random.default_rng(3)
    grades = rng.integers(0, 5, size=30)
    eta = rng.normal(0.0, 2.0, size=30)
    cuts = CUTS_L[rng.integers(0, 3, size=30)]
    want = np.array(
        [ref_logprobs_hp(e, c, link)[g] for e, c, g in zip(eta, cuts, grades, strict=True)]
    )
    pointwise = o.individual_grades_loglik(grades, eta, cuts, link, reduce=False).eval()
    np.testing.assert_allclose(pointwise, want, rtol=1e-11)
    total = o.individual_grades_loglik(grades, eta, cuts, link).eval()
    np.testing.assert_allclose(total, want.sum(), rtol=1e-11)
    with pytest.raises(ValueError, match=r"0\.\.4"):
        o.individual_grades_loglik(np.array([0, 5]), 0.0, CUTS, link)
    with pytest.raises(ValueError, match="integers"):
        o.individual_grades_loglik(np.array([0.0, 1.5]), 0.0, CUTS, link)


# ---------------------------------------------------------------------------------------------
# quadrature over the shared propensity
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rule", ["gauss-hermite", "trapezoid"])
def test_normal_quadrature_moments(rule):
    x, w = o.normal_quadrature(32, rule)
    assert w.sum() == pytest.approx(1.0, abs=1e-14)
    assert np.all(w > 0)
    np.testing.assert_allclose([w @ x, w @ x**2, w @ x**3, w @ x**4], [0, 1, 0, 3], atol=1e-11)
    xg, wg = o.gauss_hermite_nodes(20)
    x0, w0 = hermegauss(20)
    np.testing.assert_allclose(xg, x0)
    np.testing.assert_allclose(wg, w0 / np.sqrt(2 * np.pi), rtol=1e-12)
    with pytest.raises(ValueError):
        o.normal_quadrature(0)
    with pytest.raises(ValueError):
        o.normal_quadrature(8, "simpson")


@pytest.mark.parametrize("link", LINKS)
def test_any_line_probs_vs_monte_carlo(link):
    sigma, n_sim = 1.2, 400_000
    rng = np.random.default_rng(20240611)
    u = rng.normal(0.0, sigma, size=(n_sim, 1))
    eps = rng.logistic(size=(n_sim, 3)) if link == "logit" else rng.normal(size=(n_sim, 3))
    y = ETA_L + u + eps
    grade = (y[..., None] > CUTS_L).sum(-1)  # G = #{k : y > c_k}
    worst = grade.max(-1)
    freq = np.array([np.mean(worst <= 2), np.mean(worst == 3), np.mean(worst == 4)])
    p = np.exp(f_any_line(link)(ETA_L, CUTS_L, sigma))
    se = np.sqrt(p * (1 - p) / n_sim)
    assert np.all(np.abs(freq - p) < 4 * se), (freq, p, se)
    # the shared propensity matters: independence would give a visibly different answer
    p_indep = np.exp(f_any_line(link)(ETA_L, CUTS_L, 0.0))
    assert np.max(np.abs(p_indep - p)) > 10 * se.max()


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_any_line_probs_vs_quad(link, sigma):
    lp = f_any_line(link)(ETA_L, CUTS_L, sigma)
    np.testing.assert_allclose(special.logsumexp(lp), 0.0, atol=1e-13)
    ref = ref_any_line_probs_quad(ETA_L, CUTS_L, sigma, link)
    np.testing.assert_allclose(np.exp(lp), ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("link", LINKS)
def test_any_line_probs_independent_when_sigma_zero(link):
    cum3 = np.prod(cdf(CUTS_L[:, 2] - ETA_L, link))
    cum4 = np.prod(cdf(CUTS_L[:, 3] - ETA_L, link))
    want = np.array([cum3, cum4 - cum3, 1 - cum4])
    for sigma in (0.0, 1e-9):
        got = np.exp(f_any_line(link)(ETA_L, CUTS_L, sigma))
        np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-14)


def test_any_line_probs_tiny_grade4_probability_keeps_relative_precision():
    # all lines far below grade IV: P(M = IV) ~ 1e-13 must not be lost to 1 - P cancellation
    eta = np.array([-25.0, -24.0, -26.0])
    lp = f_any_line("logit")(eta, CUTS_L, 0.5)
    assert np.all(np.isfinite(lp))
    ref = ref_any_line_probs_quad(eta, CUTS_L, 0.5, "logit")
    # reference: E[1 - prod F(c4 - eta - u)] ~ sum_l E[exp(-(c4 - eta - u))] in this tail
    ref4 = np.sum(np.exp(-(CUTS_L[:, 3] - eta))) * np.exp(0.5 * 0.5**2)
    np.testing.assert_allclose(np.exp(lp[2]), ref4, rtol=1e-6)
    assert ref[2] < 1e-9  # scipy's 1 - P(M <= III) could not resolve this


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0])
def test_default_quadrature_converged(link, sigma):
    default = np.exp(f_any_line(link)(ETA_L, CUTS_L, sigma))
    fine = np.exp(f_any_line(link, 192, "trapezoid")(ETA_L, CUTS_L, sigma))
    np.testing.assert_allclose(default, fine, rtol=0, atol=1e-10)


@pytest.mark.parametrize("link", LINKS)
def test_gauss_hermite_32_vs_64(link):
    # Gauss-Hermite is converged for moderate sigma_u ...
    for sigma in (0.5, 1.0):
        p32 = np.exp(f_any_line(link, 32, "gauss-hermite")(ETA_L, CUTS_L, sigma))
        p64 = np.exp(f_any_line(link, 64, "gauss-hermite")(ETA_L, CUTS_L, sigma))
        np.testing.assert_allclose(p32, p64, rtol=0, atol=1e-8)
    # ... but not at sigma_u = 3 (why the default rule is the trapezoid rule)
    p32 = np.exp(f_any_line(link, 32, "gauss-hermite")(ETA_L, CUTS_L, 3.0))
    p64 = np.exp(f_any_line(link, 64, "gauss-hermite")(ETA_L, CUTS_L, 3.0))
    assert np.max(np.abs(p32 - p64)) > 1e-7


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("sigma", [0.7, 2.5])
def test_marginal_line_probs_vs_quad(link, sigma):
    eta = np.array([-1.0, 0.3, 2.0])
    lp = f_marginal(link)(eta, full_cuts(3), sigma)
    np.testing.assert_allclose(special.logsumexp(lp, axis=-1), 0.0, atol=1e-13)
    for i, e in enumerate(eta):
        ref = ref_marginal_quad(e, CUTS, sigma, link)
        np.testing.assert_allclose(np.exp(lp[i]), ref, rtol=1e-9, atol=1e-13)
    if link == "probit":  # closed form: P(G <= g) = Phi((c - eta) / sqrt(1 + sigma^2))
        want = ref_probs(eta / np.sqrt(1 + sigma**2), CUTS / np.sqrt(1 + sigma**2), "probit")
        np.testing.assert_allclose(np.exp(lp), want, rtol=1e-9, atol=1e-13)


def test_marginal_and_any_line_probability_scale_and_broadcasting():
    # probabilities (log=False) with a vector of sigma_u broadcasting over a batch of patients
    sig = np.array([0.5, 1.5])
    eta = np.stack([ETA_L, ETA_L - 1.0])  # (2, 3)
    cuts = np.broadcast_to(CUTS_L, (2, 3, 4))
    p = o.any_line_probs(eta, cuts, sig).eval()
    assert p.shape == (2, 3)
    for b in range(2):
        ref = ref_any_line_probs_quad(eta[b], CUTS_L, sig[b], "logit")
        np.testing.assert_allclose(p[b], ref, rtol=1e-9)
    pm = o.marginal_line_probs(eta, cuts, sig[:, None]).eval()
    assert pm.shape == (2, 3, 5)
    ref = ref_marginal_quad(eta[1, 2], CUTS_L[2], sig[1], "logit")
    np.testing.assert_allclose(pm[1, 2], ref, rtol=1e-9)


@pytest.mark.parametrize("link", LINKS)
def test_any_line_counts_loglik_vs_scipy(link):
    sigma = 0.9
    ref = ref_any_line_probs_quad(ETA_L, CUTS_L, sigma, link)
    got = o.any_line_counts_loglik(181, 20, 5, ETA_L, CUTS_L, sigma, link).eval()
    np.testing.assert_allclose(got, stats.multinomial.logpmf([156, 20, 5], 181, ref), rtol=1e-9)


# ---------------------------------------------------------------------------------------------
# cutpoints
# ---------------------------------------------------------------------------------------------
def test_ordered_cutpoints_roundtrip():
    c1 = np.array([-1.0, 0.5])
    d = np.array([[0.0, np.log(2.0), -1.0], [-5.0, 3.0, 0.2]])
    got = o.ordered_cutpoints_from_increments(c1, d).eval()
    np.testing.assert_allclose(got, o.ordered_cutpoints_from_increments_np(c1, d))
    np.testing.assert_allclose(got[0], [-1.0, 0.0, 2.0, 2.0 + np.exp(-1.0)])
    assert np.all(np.diff(got, axis=-1) > 0)
    c1b, db = o.increments_from_cutpoints_np(got)
    np.testing.assert_allclose(c1b, c1)
    np.testing.assert_allclose(db, d, atol=1e-12)
    # scalar c1 broadcasts against a batch of increments
    assert o.ordered_cutpoints_from_increments(0.0, d).eval().shape == (2, 4)
    with pytest.raises(ValueError, match="increasing"):
        o.increments_from_cutpoints_np([0.0, 1.0, 1.0, 2.0])


# ---------------------------------------------------------------------------------------------
# gradients
# ---------------------------------------------------------------------------------------------
@functools.cache
def f_total_and_grad(link):
    """Total log-likelihood of every term and its gradient w.r.t. all parameters."""
    eta = pt.dvector("eta")  # (3,) one per line
    c1 = pt.dvector("c1")  # (3,)
    d = pt.dmatrix("d")  # (3, 3)
    sigma = pt.dscalar("sigma")
    cuts = o.ordered_cutpoints_from_increments(c1, d)  # (3, 4)
    # (the conditional coarsened and marginal full-count terms reuse the same building blocks)
    total = (
        o.full_grade_counts_loglik(np.array([[6, 4, 1, 1, 1]] * 3), eta, cuts, link).sum()
        + o.coarsened_counts_loglik(181, 14, 3, eta, cuts, link, sigma_u=sigma).sum()
        + o.any_line_counts_loglik(120, 15, 4, eta, cuts, sigma, link)
        + o.individual_grades_loglik(np.array([0, 2, 4]), eta, cuts, link)
    )
    grads = pytensor.grad(total, [eta, c1, d, sigma])
    return pytensor.function([eta, c1, d, sigma], [total, *grads])


D0 = np.log(np.array([[1.5, 1.0, 1.5], [0.7, 1.8, 0.8], [2.0, 1.0, 1.5]]))
C10 = np.array([-1.0, -0.5, -2.0])


@pytest.mark.parametrize("link", LINKS)
@pytest.mark.parametrize("eta0", [-30.0, 30.0, -40.0, 40.0])
@pytest.mark.parametrize("sigma", [0.0, 1e-6, 3.0])
def test_gradients_finite_at_extremes(link, eta0, sigma):
    out = f_total_and_grad(link)(np.full(3, eta0), C10, D0, sigma)
    for v in out:
        assert np.all(np.isfinite(v)), out


@pytest.mark.parametrize("link", LINKS)
def test_gradients_match_finite_differences(link):
    f = f_total_and_grad(link)
    x0 = [ETA_L, C10, D0, 1.1]
    _, *grads = f(*x0)
    h = 1e-6
    for k, (arg, g) in enumerate(zip(x0, grads, strict=True)):
        arg = np.asarray(arg, dtype=float)
        for idx in list(np.ndindex(arg.shape))[:4]:
            plus, minus = arg.copy(), arg.copy()
            plus[idx] += h
            minus[idx] -= h
            xp = [*x0[:k], plus, *x0[k + 1 :]]
            xm = [*x0[:k], minus, *x0[k + 1 :]]
            fd = (f(*xp)[0] - f(*xm)[0]) / (2 * h)
            assert np.asarray(g)[idx] == pytest.approx(fd, rel=1e-5, abs=1e-6)


# ---------------------------------------------------------------------------------------------
# property test
# ---------------------------------------------------------------------------------------------
finite = functools.partial(st.floats, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    link=st.sampled_from(LINKS),
    eta=st.lists(finite(min_value=-40, max_value=40), min_size=3, max_size=3),
    c1=st.lists(finite(min_value=-10, max_value=10), min_size=3, max_size=3),
    d=st.lists(finite(min_value=-4, max_value=2), min_size=9, max_size=9),
    sigma=finite(min_value=0, max_value=3),
)
def test_property_valid_probabilities(link, eta, c1, d, sigma):
    eta = np.array(eta)
    cuts = o.ordered_cutpoints_from_increments_np(np.array(c1), np.array(d).reshape(3, 3))
    lp = f_logprobs(link)(eta, cuts)
    assert np.all(np.isfinite(lp)) and np.all(lp <= 1e-12)
    assert np.allclose(special.logsumexp(lp, axis=-1), 0.0, atol=1e-12)
    cum = np.cumsum(np.exp(lp), axis=-1)
    assert np.all(np.diff(cum, axis=-1) >= -1e-15)  # ordered cumulative probabilities
    np.testing.assert_allclose(cum[..., :4], cdf(cuts - eta[:, None], link), atol=1e-12)

    la = f_any_line(link)(eta, cuts, sigma)
    pa = np.exp(la)
    assert np.all(np.isfinite(la)) and np.all(la <= 1e-12)
    assert abs(pa.sum() - 1.0) < 1e-12
    # worst grade <= II needs every line <= II; the shared propensity makes the lines
    # positively dependent, so P(all <= II) lies between the product and the minimum of the
    # per-line marginal probabilities (Harris/Chebyshev inequality)
    pm_le2 = np.exp(f_marginal(link)(eta, cuts, sigma))[:, :3].sum(-1)
    assert pa[0] <= pm_le2.min() + 1e-9
    assert pa[0] >= np.prod(pm_le2) - 1e-9
