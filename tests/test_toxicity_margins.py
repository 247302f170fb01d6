"""Exact likelihoods of overlapping toxicity margins (issue 16 d4): enumeration, Monte Carlo
proofs, the PyTensor terms against NumPy, and the model's exact terms."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
from scipy import stats
from test_toxicity_model import _marginal_point

from netbayes.formulas import toxicity as ftox
from netbayes.formulas import toxicity_margins as tm
from netbayes.likelihoods import ordinal as lik
from netbayes.models.toxicity import (
    ToxicityData,
    ToxicityModel,
    draw_prior_params,
    exact_data_arrays,
)

Z3 = np.array([1.0, 1.4, 0.8])
SIG = 0.9


@pytest.fixture(autouse=True)
def _fast_compile():
    import pytensor

    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        yield


def _exact_pmf(n: int, z3: np.ndarray, sig: float) -> dict[tuple[int, ...], float]:
    lp = tm.pattern_logprobs(z3, sig)
    out = {}
    for k in itertools.product(range(n + 1), repeat=3):
        for w in range(n + 1):
            t, c = tm.margin_tables(n, k, w)
            if len(t):
                out[(*k, w)] = float(np.exp(tm.log_margins_pmf(t, c, lp)))
    return out


def test_pattern_probabilities_sum_to_one_and_reduce_to_independence():
    lp = tm.pattern_logprobs(Z3, SIG)
    assert np.exp(lp).sum() == pytest.approx(1.0, abs=1e-12)
    # sigma_u = 0: the lines are independent, pi_S = prod of per-line probabilities
    p = stats.norm.sf(Z3)
    ref = np.prod(np.where(tm.PATTERNS == 1, p, 1.0 - p), axis=1)
    np.testing.assert_allclose(np.exp(tm.pattern_logprobs(Z3, 0.0)), ref, rtol=1e-12)
    # each line's margin is the closed-form probit marginal Phi(-z / sqrt(1 + sigma^2))
    marg = [np.exp(lp[tm.PATTERNS[:, li] == 1]).sum() for li in range(3)]
    np.testing.assert_allclose(marg, stats.norm.sf(Z3 / np.sqrt(1 + SIG**2)), rtol=1e-10)


def test_exact_margin_pmf_is_a_distribution_with_the_pattern_moments():
    """Over every (K1, K2, K3, W) of n = 6 patients the probabilities sum to 1 (so no table is
    missed or counted twice), and their mean and covariance are n times the per-patient
    pattern mean and covariance (sums of iid patterns), to rounding."""
    n = 6
    pmf = _exact_pmf(n, Z3, SIG)
    keys = np.array(list(pmf))
    prob = np.array(list(pmf.values()))
    assert prob.sum() == pytest.approx(1.0, abs=1e-12)
    f = np.column_stack([tm.PATTERNS, tm.PATTERNS.any(1)]).astype(float)  # (8, 4)
    pi = np.exp(tm.pattern_logprobs(Z3, SIG))
    mu = pi @ f
    cov = (f * pi[:, None]).T @ f - np.outer(mu, mu)
    np.testing.assert_allclose(prob @ keys, n * mu, rtol=1e-10)
    emp = (keys - n * mu).T @ ((keys - n * mu) * prob[:, None])
    np.testing.assert_allclose(emp, n * cov, rtol=1e-9, atol=1e-12)
    # the dependence the composite likelihood ignored: per-line counts are positively
    # correlated (shared propensity), and W is far from independent of them
    assert np.all(cov[np.triu_indices(3, 1)] > 0.005)


def test_exact_margin_pmf_against_brute_force_simulation():
    """Monte Carlo of individual patients (u, then three latent lines): chi-square of the
    observed (K1, K2, K3, W) frequencies against the exact pmf over the cells with >= 5
    expected. A correct pmf fails this with probability 0.001 (fixed seed: deterministic)."""
    n, reps = 6, 200_000
    pmf = _exact_pmf(n, Z3, SIG)
    rng = np.random.default_rng(11)
    u = rng.normal(0.0, SIG, (reps, n, 1))
    y = rng.normal(size=(reps, n, 3)) + u > Z3
    keys = np.column_stack([y.sum(1), y.any(2).sum(1)])
    cnt = Counter(map(tuple, keys.tolist()))
    cells = [k for k, v in pmf.items() if reps * v >= 5]
    obs = np.array([cnt.get(k, 0) for k in cells] + [reps - sum(cnt.get(k, 0) for k in cells)])
    exp = np.array([reps * pmf[k] for k in cells] + [reps * (1 - sum(pmf[k] for k in cells))])
    chi2 = ((obs - exp) ** 2 / exp).sum()
    assert stats.chi2.sf(chi2, len(obs) - 1) > 1e-3
    # the composite (independent margins) treats K1 + K2 + K3 as having variance
    # sum Var(K_l); the truth (simulated) is larger by the shared propensity
    t = y.sum((1, 2))
    indep = sum(n * p * (1 - p) for p in stats.norm.sf(Z3 / np.sqrt(1 + SIG**2)))
    assert t.var() > 1.3 * indep


def test_margin_tables_edge_cases_and_errors():
    t, c = tm.margin_tables(10, [0, 0, 0], 0)
    assert t.tolist() == [[10, 0, 0, 0, 0, 0, 0, 0]] and c[0] == pytest.approx(0.0)
    assert len(tm.margin_tables(10, [2, 1, 0], 4)[0]) == 0  # W above sum(K)
    assert len(tm.margin_tables(10, [3, 1, 0], 2)[0]) == 0  # W below max(K)
    with pytest.raises(ValueError, match=r"k_lines\[1\]=11"):
        tm.margin_tables(10, [1, 11, 0], 2)
    with pytest.raises(ValueError, match=r"w_any=2.5"):
        tm.margin_tables(10, [1, 1, 0], 2.5)
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        tm.margin_tables(10, [1, 1], 2)


def test_poisson_multinomial_against_enumeration():
    rng = np.random.default_rng(3)
    lp = np.log(rng.dirichlet(np.ones(5), size=4))
    for counts in ([1, 2, 0, 1, 0], [0, 0, 0, 0, 4], [4, 0, 0, 0, 0]):
        ref = -np.inf
        for a in itertools.product(range(5), repeat=4):
            if np.array_equal(np.bincount(a, minlength=5), counts):
                ref = np.logaddexp(ref, sum(lp[j, a[j]] for j in range(4)))
        assert tm.log_poisson_multinomial(counts, lp) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="summing to the 4 units"):
        tm.log_poisson_multinomial([1, 1, 0, 0, 0], lp)


def test_pytensor_terms_equal_numpy():
    z = np.array([[1.0, 1.4, 0.8], [2.0, 2.2, 1.7]])
    a = tm.pattern_logprobs(z, SIG)
    b = lik.pattern_logprobs(z, SIG, n_nodes=ftox.DEFAULT_N_NODES).eval()
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
    t1, c1 = tm.margin_tables(20, [3, 4, 2], 6)
    t2, c2 = tm.margin_tables(20, [3, 4, 2], 7)
    t3, c3 = tm.margin_tables(30, [5, 4, 2], 8)
    tab = np.concatenate([t1, t2, t3])
    grp = np.r_[np.zeros(len(t1) + len(t2), int), np.ones(len(t3), int)]
    got = lik.margin_tables_loglik(tab, np.concatenate([c1, c2, c3]), grp, b, 2).eval()
    ref = [np.logaddexp(tm.log_margins_pmf(t1, c1, a[0]), tm.log_margins_pmf(t2, c2, a[0])),
           tm.log_margins_pmf(t3, c3, a[1])]  # fmt: skip
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    rng = np.random.default_rng(0)
    counts = np.array([[3, 4, 2, 2, 0], [1, 2, 3, 4, 1]])
    lp = np.log(rng.dirichlet(np.ones(5), size=(11, 2)))
    lat = tm.count_lattice(counts)
    got = lik.poisson_multinomial_lattice_loglik(
        lat["prev"], lat["row"], lat["init"], lat["final"], lp
    ).eval()
    ref = [tm.log_poisson_multinomial(counts[r], lp[:, r]) for r in range(2)]
    np.testing.assert_allclose(got, ref, rtol=1e-10)


def test_exact_model_terms_equal_the_numpy_likelihood():
    """The model's exact Table 6 and 188Re terms at a prior draw equal the NumPy formulas
    (conditional parameters; 188Re given the patients' propensities)."""
    tm_ = ToxicityModel(study_level=False)
    model = tm_.build()
    d = ToxicityData.packaged()
    rng = np.random.default_rng(5)
    th = draw_prior_params(rng)
    th["sigma_u"] = 1.3
    s = np.sqrt(1.0 + th["sigma_u"] ** 2)  # marginal scale of the grade IV check below
    point = {**_marginal_point(th), "z_re188": rng.normal(size=6)}
    pots = model.compile_fn(model.replace_rvs_by_values(model.potentials),
                            inputs=model.value_vars, on_unused_input="ignore")(point)  # fmt: skip
    names = [p.name for p in model.potentials]
    cut = ftox.cutpoints(th["c3"], th["log_gap"])
    delta = np.array([th["delta_control"], 0, th["delta_retreated"], th["delta_retreated"]])
    eta = ftox.linear_predictor(
        d.phase_activity, d.phase_prior, th["beta_activity"], th["beta_prior"], delta
    )
    lp_pi = tm.pattern_logprobs(cut[None, :, 2] - eta[:, None], th["sigma_u"], 64)
    ref = 0.0
    for p in range(4):
        k = d.line_counts[p].sum(-1)
        ll = -np.inf
        for w in {int(d.worst_counts[v, p, 1:].sum()) for v in range(2)}:
            t, c = tm.margin_tables(int(d.n[p]), k, w)
            ll = np.logaddexp(ll, tm.log_margins_pmf(t, c, lp_pi[p]))
        ref += ll
    np.testing.assert_allclose(pots[names.index("ll_table6_margins")], ref, rtol=1e-9)
    # grade IV among grade >= III, per line (marginal probit)
    m = stats.norm.sf((cut[:, 3][None] - eta[:, None]) / s)  # P(IV)
    g3 = stats.norm.sf((cut[:, 2][None] - eta[:, None]) / s)  # P(>= III)
    k3 = d.line_counts.sum(-1)
    ref_iv = stats.binom.logpmf(d.line_counts[..., 1], k3, m / g3).sum()
    np.testing.assert_allclose(pots[names.index("ll_table6_grade4")], ref_iv, rtol=1e-9)
    # 188Re: Poisson-multinomial per line given u = sigma_u z
    pats = np.unique(d.re_patient)
    u = th["sigma_u"] * point["z_re188"][np.searchsorted(pats, d.re_patient)]
    re_eq = th["theta"] * d.re_activity
    e = ftox.linear_predictor(re_eq, d.re_prior_lu + re_eq * d.re_cycle, th["beta_activity"],
                              th["beta_prior"], th["delta_re188"]) + u  # fmt: skip
    cum = stats.norm.cdf(cut[None] - e[:, None, None])  # (cycles, 3, 4)
    p5 = np.diff(np.concatenate([np.zeros((11, 3, 1)), cum, np.ones((11, 3, 1))], -1), axis=-1)
    ref_re = sum(tm.log_poisson_multinomial(d.re_counts[li], np.log(p5[:, li])) for li in range(3))
    np.testing.assert_allclose(pots[names.index("ll_re188_cycles")], ref_re, rtol=1e-9)
    arrays = exact_data_arrays(d)
    assert arrays["t6_tables"].shape[1] == 8 and arrays["re_final"].shape == (3,)


def test_margins_option_is_checked():
    with pytest.raises(ValueError, match="margins='joint'; allowed: exact, composite"):
        ToxicityModel(margins="joint")
