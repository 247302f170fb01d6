"""Fit machinery: diagnostics on injected posteriors (fast) and one real nutpie fit (slow)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import xarray as xr

from netbayes.fitting import ConvergenceWarning, FitResult, _problems, diagnose, sample


def _tree(post: dict[str, np.ndarray], diverging: np.ndarray | None = None) -> xr.DataTree:
    """A DataTree shaped like a sampler's output from arrays of shape (chain, draw, ...)."""
    data = {}
    for k, v in post.items():
        dims = ["chain", "draw"] + [f"{k}_dim_{i}" for i in range(v.ndim - 2)]
        data[k] = (dims, v)
    c, d = next(iter(post.values())).shape[:2]
    div = np.zeros((c, d), bool) if diverging is None else diverging
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(data),
            "sample_stats": xr.Dataset({"diverging": (["chain", "draw"], div)}),
        }
    )


def test_diagnose_iid_draws_pass():
    rng = np.random.default_rng(1)
    tree = _tree({"mu": rng.normal(size=(4, 1000)), "a": rng.normal(size=(4, 1000, 3))})
    d = diagnose(tree)
    assert list(d.index) == ["mu", "a[0]", "a[1]", "a[2]"]
    # iid draws: R-hat within MC error of 1 and bulk ESS near 4000 (sd of ESS ~ a few %)
    assert (d["r_hat"] < 1.01).all()
    assert (d["ess_bulk"] > 3000).all()
    assert _problems(d, 0) == []


def test_diagnose_flags_stuck_chain_and_low_ess():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 500))
    x[0] += 5.0  # one chain elsewhere: R-hat far above 1.01
    ar = np.cumsum(rng.normal(size=(4, 500)), axis=1)  # random walk: tiny ESS
    d = diagnose(_tree({"x": x, "w": ar}))
    assert d.loc["x", "r_hat"] > 1.5
    assert d.loc["w", "ess_bulk"] < 100
    probs = _problems(d, 3)
    assert probs[0].startswith("3 divergent transitions")
    assert any("R-hat > 1.01" in p and "worst" in p for p in probs)
    assert any("bulk ESS < 400" in p and "worst w" in p for p in probs)


def test_fitresult_draws_are_plain_arrays():
    rng = np.random.default_rng(3)
    a = rng.normal(size=(2, 50, 3))
    tree = _tree({"a": a})
    fr = FitResult(tree, diagnose(tree), 0, "nutpie", {"total": 0.0})
    got = fr.draws("a")
    assert got.shape == (100, 3)
    np.testing.assert_array_equal(got[50:], a[1])
    assert set(fr.all_draws()) == {"a"}
    with pytest.raises(KeyError, match="'b' is not a posterior variable; available: a"):
        fr.draws("b")


def test_sample_rejects_bad_settings():
    with pytest.raises(ValueError, match="draws=0"):
        sample(None, draws=0)
    with pytest.raises(ValueError, match="sampler='stan' is not allowed"):
        sample(None, sampler="stan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="adaptation='full' is not allowed; expected 'diag' or"):
        sample(None, adaptation="full")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="adaptation='low_rank' is not allowed with sampler='py"):
        sample(None, sampler="pymc", adaptation="low_rank")


@pytest.mark.slow
def test_sample_nutpie_recovers_a_normal_mean():
    import pymc as pm

    rng = np.random.default_rng(4)
    y = rng.normal(2.0, 1.0, size=200)
    with pm.Model() as m:
        mu = pm.Normal("mu", 0, 10)
        pm.Normal("y", mu, 1.0, observed=y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fit = sample(m, draws=1000, tune=500, chains=2, progress=False, seed=7)
    assert fit.converged and fit.n_divergences == 0
    # posterior of mu is N(mean(y), 1/200) up to the N(0, 10) prior: MC SE ~ 0.07/sqrt(ESS)
    post = fit.draws("mu")
    assert abs(post.mean() - y.mean()) < 0.02
    assert abs(post.std() - 1 / np.sqrt(200)) < 0.01
    fit2 = sample(m, draws=1000, tune=500, chains=2, progress=False, seed=7)
    np.testing.assert_array_equal(fit2.draws("mu"), post)  # same seed, same draws


def test_sample_pymc_runs_pymc_own_nuts():
    """``sampler="pymc"`` must be PyMC's NUTS: PyMC >= 6 would silently pick nutpie when it is
    installed. PyMC's sample stats carry per-draw timings (``perf_counter_diff``); nutpie's do
    not, so the stats tell which sampler ran."""
    import pymc as pm

    rng = np.random.default_rng(5)
    y = rng.normal(-1.0, 1.0, size=100)
    with pm.Model() as m:
        mu = pm.Normal("mu", 0, 10)
        pm.Normal("y", mu, 1.0, observed=y)
    fit = sample(m, draws=300, tune=300, chains=2, progress=False, seed=3, sampler="pymc")
    assert "perf_counter_diff" in fit.posterior["sample_stats"].dataset
    # posterior mean of mu is mean(y) (prior negligible); SD 0.1, ESS >= 200: MC SE <= 0.007
    assert abs(fit.draws("mu").mean() - y.mean()) < 0.03
