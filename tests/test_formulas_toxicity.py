"""NumPy-only toxicity formulas (netbayes.formulas.toxicity): import isolation, agreement with a
Monte Carlo simulation of the latent-variable model and with the PyTensor likelihood terms,
line semantics and input validation."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from netbayes import vocab
from netbayes.formulas import toxicity as ft

# three parameter draws: moderate, strong propensity, negative activity effect
PARAMS = {
    "c3": np.array([[1.9, 2.0, 2.2], [1.2, 1.6, 1.4], [2.3, 1.8, 2.0]]),
    "log_gap": np.array(
        [
            [[-0.2, -0.6, 0.3], [0.0, -0.3, -0.1], [0.9, 0.1, 0.0]],
            [[-0.5, -0.5, -0.5], [0.2, 0.2, 0.2], [-1.0, 0.0, 0.5]],
            [[0.1, -0.2, -0.4], [-0.3, -0.8, 0.4], [0.3, 0.3, -0.3]],
        ]
    ),
    "beta_activity": np.array([0.25, 0.4, -0.1]),
    "beta_prior": np.array([0.08, 0.15, 0.02]),
    "delta_retreated": np.array([-0.2, 0.3, 0.1]),
    "delta_re188": np.array([0.2, -0.4, 0.6]),
    "theta": np.array([9.0, 4.0, 15.0]),
    "sigma_u": np.array([0.7, 1.8, 0.05]),
}
# one patient per line; the 188Re patient had an earlier 188Re cycle
PLANNED = np.array([29.6, 14.8, 7.4, 3.0])
PRIOR = np.array([0.0, 29.6, 44.4, 30.0])
LINES = np.array(["I-PRRT", "R-PRRT", "RR-PRRT", "188Re-HEDP"])
PRIOR_RE = np.array([0.0, 0.0, 0.0, 3.0])


def _simulate(n: int, rng: np.random.Generator) -> np.ndarray:
    """Grades (S, P, n, 3) from the latent-variable model, written out independently:
    y_l = eta + u + e_l, u ~ N(0, sigma_u^2), grade = number of cutpoints below y."""
    S, P = len(PARAMS["theta"]), len(PLANNED)
    g = np.empty((S, P, n, 3), dtype=np.int8)
    for s in range(S):
        p = {k: v[s] for k, v in PARAMS.items()}
        gaps = np.exp(p["log_gap"])
        c2 = p["c3"] - gaps[:, 1]
        cut = np.stack([c2 - gaps[:, 0], c2, p["c3"], p["c3"] + gaps[:, 2]], -1)  # (3, 4)
        for j in range(P):
            is_re = LINES[j] == "188Re-HEDP"
            act = p["theta"] * PLANNED[j] if is_re else PLANNED[j]
            prior = PRIOR[j] + p["theta"] * PRIOR_RE[j]
            delta = {
                "I-PRRT": 0.0,
                "R-PRRT": p["delta_retreated"],
                "RR-PRRT": p["delta_retreated"],
                "188Re-HEDP": p["delta_re188"],
            }[LINES[j]]
            eta = p["beta_activity"] * (act - 29.9) / 10 + p["beta_prior"] * prior / 10 + delta
            u = rng.normal(0.0, p["sigma_u"], (n, 1))
            y = eta + u + rng.normal(size=(n, 3))
            g[s, j] = (y[..., None] > cut).sum(-1)
    return g


@pytest.fixture(scope="module")
def simulated() -> np.ndarray:
    return _simulate(100_000, np.random.default_rng(20261121))


def _mc_check(exact: np.ndarray, freq: np.ndarray, n: int) -> None:
    """|exact - MC frequency| < 5 binomial SEs (+1e-4 for p ~ 0). With ~100 comparisons the
    chance that any exceeds 5 SE by chance is ~6e-5; the seed is fixed anyway."""
    se = np.sqrt(exact * (1 - exact) / n)
    assert np.all(np.abs(exact - freq) < 5 * se + 1e-4), np.max(np.abs(exact - freq) / (se + 1e-12))


def test_import_needs_no_pytensor_pymc_arviz():
    code = (
        "import sys, netbayes.formulas.toxicity\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('pytensor', 'pymc', 'arviz')\n"
        "       or m.startswith(('netbayes.models', 'netbayes.likelihoods'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_grade3_risk_matches_latent_variable_simulation(simulated):
    n = simulated.shape[2]
    per_line, any_line = ft.grade3_risk(PARAMS, PLANNED, PRIOR, LINES, prior_re188_gbq=PRIOR_RE)
    assert per_line.shape == (3, 4, 3) and any_line.shape == (3, 4)
    _mc_check(per_line, (simulated >= 3).mean(2), n)
    _mc_check(any_line, (simulated >= 3).any(-1).mean(2), n)
    # the cases are not trivial: risks span ~1% to ~50%
    assert per_line.min() < 0.02 and any_line.max() > 0.3


def test_grade_probs_and_worst_grade_match_simulation(simulated):
    n = simulated.shape[2]
    probs = ft.grade_probs(PARAMS, PLANNED, PRIOR, LINES, prior_re188_gbq=PRIOR_RE)
    assert probs.shape == (3, 4, 3, 5)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-12)
    freq = np.stack([(simulated == g).mean(2) for g in range(5)], -1)
    _mc_check(probs, freq, n)
    worst = ft.worst_grade_probs(PARAMS, PLANNED, PRIOR, LINES, prior_re188_gbq=PRIOR_RE)
    m = simulated.max(-1)
    _mc_check(worst, np.stack([(m <= 2).mean(2), (m == 3).mean(2), (m == 4).mean(2)], -1), n)
    # internal consistency of the three functions (exact, not MC)
    per_line, any_line = ft.grade3_risk(PARAMS, PLANNED, PRIOR, LINES, prior_re188_gbq=PRIOR_RE)
    np.testing.assert_allclose(probs[..., 3:].sum(-1), per_line, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(1.0 - worst[..., 0], any_line, rtol=1e-12, atol=1e-15)


def test_agrees_with_the_pytensor_likelihood_terms():
    """The model's likelihood (netbayes.likelihoods.ordinal) and the formulas give the same
    per-line marginal and worst-grade probabilities for the same eta, cutpoints, sigma_u."""
    import pytensor

    from netbayes.likelihoods import ordinal as lik

    with pytensor.config.change_flags(mode="FAST_COMPILE"):
        for s in range(3):
            p = {k: v[s] for k, v in PARAMS.items()}
            cut = ft.cutpoints(p["c3"], p["log_gap"])
            eta = ft.linear_predictor(29.6, 44.4, p["beta_activity"], p["beta_prior"],
                                      p["delta_retreated"])  # fmt: skip
            grades = ft.grade_probs(p, [29.6], [44.4], "RR-PRRT")[0, 0]
            ref = lik.marginal_line_probs(np.full(3, eta), cut, p["sigma_u"], "probit", 96).eval()
            np.testing.assert_allclose(grades, ref, atol=1e-12)
            worst = ft.worst_grade_probs(p, [29.6], [44.4], "RR-PRRT")[0, 0]
            ref_any = lik.any_line_probs(np.full(3, eta), cut, p["sigma_u"], "probit", 96).eval()
            np.testing.assert_allclose(worst, ref_any, atol=1e-12)


def test_line_semantics():
    one = {k: v[:1] for k, v in PARAMS.items()}
    base = ft.grade3_risk(one, [14.8] * 4, [29.6] * 4, list(vocab.LINES))[0]
    # R-PRRT and RR-PRRT share the selection effect: same risk at the same activities
    np.testing.assert_array_equal(base[:, 1], base[:, 2])
    shifted = {**one, "delta_retreated": one["delta_retreated"] + 1.0}
    moved = ft.grade3_risk(shifted, [14.8] * 4, [29.6] * 4, list(vocab.LINES))[0]
    np.testing.assert_array_equal(moved[:, 0], base[:, 0])  # I-PRRT: reference, no delta
    assert np.all(moved[:, 1:3] > base[:, 1:3])
    np.testing.assert_array_equal(moved[:, 3], base[:, 3])
    # theta converts 188Re GBq only: I-PRRT unaffected, 188Re risk rises with theta (beta_A>0)
    hot = {**one, "theta": one["theta"] * 2}
    moved = ft.grade3_risk(hot, [14.8] * 4, [29.6] * 4, list(vocab.LINES))[0]
    np.testing.assert_array_equal(moved[:, :3], base[:, :3])
    assert np.all(moved[:, 3] > base[:, 3])
    # 188Re: planned activity a is 177Lu-equivalent theta * a
    re = ft.grade3_risk(one, [3.0], [30.0], "188Re-HEDP")[0]
    lu = ft.grade3_risk({**one, "delta_retreated": one["delta_re188"]}, [27.0], [30.0], "R-PRRT")
    np.testing.assert_allclose(re, lu[0], rtol=1e-12)
    # earlier 188Re activity adds theta * GBq to the prior activity
    a = ft.grade3_risk(one, [7.4], [30.0 + 9.0 * 2.0], "R-PRRT")[0]
    b = ft.grade3_risk(one, [7.4], [30.0], "R-PRRT", prior_re188_gbq=[2.0])[0]
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_shapes_broadcasting_and_single_draw():
    single = {k: v[0] for k, v in PARAMS.items()}  # no draw axis
    per_line, any_line = ft.grade3_risk(single, [7.4, 14.8, 29.6], [0.0], "I-PRRT")
    assert per_line.shape == (1, 3, 3) and any_line.shape == (1, 3)
    # beta_activity > 0 in draw 0: risk increases with planned activity
    assert np.all(np.diff(per_line[0], axis=0) > 0) and np.all(np.diff(any_line[0]) > 0)
    # any line: at least the largest line, at most the sum
    assert np.all(any_line >= per_line.max(-1)) and np.all(any_line <= per_line.sum(-1))


def test_chunked_quadrature_equals_unchunked(monkeypatch):
    ref = ft.grade3_risk(PARAMS, PLANNED, PRIOR, LINES)[1]
    monkeypatch.setattr(ft, "_CHUNK_ELEMENTS", 1)  # one patient per chunk
    # same numbers up to the summation order of the matrix product (rounding only)
    np.testing.assert_allclose(ft.grade3_risk(PARAMS, PLANNED, PRIOR, LINES)[1], ref, rtol=1e-13)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"planned_gbq": [-1.0]}, r"planned_gbq=-1\.0 is not allowed.*>= 0 GBq"),
        ({"prior_gbq": [np.nan]}, r"prior_gbq=nan is not allowed"),
        ({"line": "X-PRRT"}, r"line='X-PRRT' is not allowed.*I-PRRT, R-PRRT, RR-PRRT, 188Re-HEDP"),
        ({"planned_gbq": [1.0, 2.0], "prior_gbq": [0.0, 1.0, 2.0]}, r"prior_gbq has length 3"),
        ({"planned_gbq": [[1.0]]}, r"planned_gbq must be 1-D"),
        ({"params": {"c3": PARAMS["c3"]}}, r"params is missing \['log_gap'"),
        ({"params": {**PARAMS, "c3": np.zeros((3, 2))}}, r"params\['c3'\] has shape \(3, 2\)"),
        ({"params": {**PARAMS, "theta": np.ones(5)}}, r"different numbers of draws"),
    ],
)
def test_validation_errors(kwargs, match):
    args = {"params": PARAMS, "planned_gbq": [7.4], "prior_gbq": [0.0], "line": "I-PRRT"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        ft.grade3_risk(**args)


def test_quadrature_is_shared_with_the_likelihood_module():
    from netbayes.likelihoods import ordinal as lik

    assert lik.normal_quadrature is ft.normal_quadrature
    x, w = ft.normal_quadrature()
    assert len(x) == ft.DEFAULT_N_NODES and w.sum() == pytest.approx(1.0, abs=1e-14)
    with pytest.raises(ValueError, match=r"rule='simpson' is not allowed"):
        ft.normal_quadrature(8, "simpson")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"n_nodes=0 is not allowed"):
        ft.normal_quadrature(0)


def test_params_names_are_posterior_variables():
    from netbayes.models.toxicity import ToxicityModel

    model = ToxicityModel().build()
    assert set(ft.PARAMS) <= {v.name for v in model.deterministics + model.free_RVs}
