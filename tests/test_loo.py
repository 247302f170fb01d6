"""Cross-validated (PSIS-LOO) predictive checks: weights, PITs, uniformity tests, units.

Fast tests use injected draws (a conjugate normal model with an exact leave-one-out); the
shipped posteriors are used only through properties that hold for any posterior (no shipped
number is hard-coded). The slow tests check the NumPy likelihood units against the models' own
PyTensor terms.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy import stats

from netbayes.checks.base import Posteriors
from netbayes.checks.loo import LOO_COLUMNS, loo_summary, loo_units, score_units
from netbayes.checks.loo_units import LooFigure, LooUnit
from netbayes.checks.psis import (
    gpd_fit,
    pit_summary,
    psis_log_weights,
    randomised_pit,
    weighted_quantiles,
)


# ----------------------------------------------------------------------------------------------
# a conjugate toy: y_i ~ N(mu, s^2), mu ~ N(0, 10^2), exact leave-one-out in closed form
# ----------------------------------------------------------------------------------------------
def _posterior(y: np.ndarray, s: float, prior_sd: float = 10.0) -> tuple[float, float]:
    prec = 1.0 / prior_sd**2 + len(y) / s**2
    return float(y.sum() / s**2 / prec), float(1.0 / prec)


def _toy_units(y: np.ndarray, s: float, draws: int, rng: np.random.Generator) -> list[LooUnit]:
    m, v = _posterior(y, s)
    mu = rng.normal(m, np.sqrt(v), draws)
    return [
        LooUnit(
            f"y{i}",
            stats.norm.logpdf(yi, mu, s),
            [
                LooFigure(
                    "toy",
                    f"y{i}",
                    "",
                    "",
                    str(i),
                    float(yi),
                    below=stats.norm.cdf(yi, mu, s),
                    equal=np.zeros(draws),
                    sample=rng.normal(mu, s),
                )
            ],
        )
        for i, yi in enumerate(y)
    ]


def _exact_loo_pit(y: np.ndarray, s: float) -> np.ndarray:
    out = []
    for i in range(len(y)):
        m, v = _posterior(np.delete(y, i), s)
        out.append(stats.norm.cdf(y[i], m, np.sqrt(v + s**2)))
    return np.array(out)


def test_psis_loo_pit_matches_the_exact_leave_one_out_on_a_conjugate_model():
    rng = np.random.default_rng(1)
    y = rng.normal(2.0, 1.0, 10)
    y[0] = 4.0  # an outlying observation: its weights matter most
    t = score_units(_toy_units(y, 1.0, 4000, rng))
    exact = _exact_loo_pit(y, 1.0)
    assert list(t.columns) == LOO_COLUMNS
    assert np.abs(t["pit"].to_numpy() - exact).max() < 0.02
    assert (t["khat"] < 0.7).all()
    # the in-sample PIT of the outlier is much less extreme than its leave-one-out PIT
    m, v = _posterior(y, 1.0)
    in_sample = stats.norm.cdf(y[0], m, np.sqrt(v + 1.0))
    assert exact[0] > in_sample + 0.01 and abs(t["pit"].iloc[0] - exact[0]) < 0.01
    # the leave-one-out predictive interval is the exact one
    mi, vi = _posterior(y[1:], 1.0)
    lo, hi = stats.norm.ppf([0.025, 0.975], mi, np.sqrt(vi + 1.0))
    assert t["loo_lower"].iloc[0] == pytest.approx(lo, abs=0.15)
    assert t["loo_upper"].iloc[0] == pytest.approx(hi, abs=0.15)


def test_psis_weights_agree_with_arviz():
    """The same smoothing as ArviZ's (``arviz_stats``), k-hat and weights."""
    base = pytest.importorskip("arviz_stats.base")
    rng = np.random.default_rng(3)
    lr = np.stack([rng.standard_t(3, 2000), rng.normal(0, 0.5, 2000), rng.pareto(1.2, 2000)], 1)
    lw, k = psis_log_weights(lr)
    lw_az, k_az = base.array_stats.psislw(-lr.T.copy(), r_eff=1.0)  # takes log-likelihoods
    lw_az = np.asarray(lw_az).T
    np.testing.assert_allclose(k, np.asarray(k_az), atol=1e-8)
    np.testing.assert_allclose(lw, np.asarray(lw_az), atol=1e-8)


def test_gpd_fit_recovers_a_known_shape():
    x = np.sort(stats.genpareto.rvs(0.5, scale=2.0, size=5000, random_state=4))
    k, sigma = gpd_fit(x)
    assert k == pytest.approx(0.5, abs=0.06) and sigma == pytest.approx(2.0, rel=0.1)


def test_psis_refuses_too_few_or_non_finite_ratios():
    with pytest.raises(ValueError, match="at least 25"):
        psis_log_weights(np.zeros(5))
    with pytest.raises(ValueError, match="finite"):
        psis_log_weights(np.array([np.inf] + [0.0] * 40))


def test_weighted_quantiles_and_randomised_pit():
    x = np.arange(1000.0)
    assert weighted_quantiles(x, np.ones(1000), [0.5])[0] == pytest.approx(499.5, abs=1)
    w = np.where(x < 500, 0.0, 1.0)
    assert weighted_quantiles(x, w, [0.5])[0] == pytest.approx(749.5, abs=1)
    rng = np.random.default_rng(0)
    # a binomial count: the randomised PIT is exactly uniform under the true law
    n, p = 10, 0.2
    ys = stats.binom.rvs(n, p, size=4000, random_state=5)
    pits = randomised_pit(stats.binom.cdf(ys - 1, n, p), stats.binom.pmf(ys, n, p), rng)
    assert stats.kstest(pits, "uniform").pvalue > 0.01


# ----------------------------------------------------------------------------------------------
# the uniformity test can fail: misfits are rejected, a well-specified model is not
# ----------------------------------------------------------------------------------------------
def _toy_loo_pits(seed: int, true_sd: float, model_sd: float, n: int = 40) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = rng.normal(1.0, true_sd, n)
    return score_units(_toy_units(y, model_sd, 1000, rng), seed=seed)["pit"].to_numpy()


def test_uniformity_rejects_a_misfit_and_not_a_well_specified_model():
    over = pit_summary(_toy_loo_pits(1, true_sd=3.0, model_sd=1.0))  # predictive too narrow
    under = pit_summary(_toy_loo_pits(2, true_sd=0.3, model_sd=1.0))  # too wide
    good = pit_summary(_toy_loo_pits(3, true_sd=1.0, model_sd=1.0))
    assert over.chi2_p < 0.005 and over.central[0.5] < 0.35 and over.counts[0] > over.expected
    assert under.chi2_p < 0.005 and under.central[0.5] > 0.75
    assert good.ks_p > 0.05 and good.chi2_p > 0.05
    assert "PIT bins" in good.sentence() and "KS p" in good.sentence()


def test_uniformity_test_has_its_nominal_size_on_well_specified_replicates():
    rej = [pit_summary(_toy_loo_pits(s, 1.0, 1.0, n=25)).ks_p < 0.05 for s in range(60)]
    assert np.mean(rej) < 0.15  # 5% nominal; MC SE ~3 points


def test_pit_summary_refuses_bad_values():
    with pytest.raises(ValueError, match="no PIT"):
        pit_summary([np.nan])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        pit_summary([0.2, 1.5])


# ----------------------------------------------------------------------------------------------
# the real units on the shipped posteriors (properties only, thinned draws)
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped():
    from netbayes.store import load_posterior

    return {
        "survival_pfs": load_posterior("survival-pfs"),
        "survival_os": load_posterior("survival-os"),
        "toxicity": load_posterior("toxicity"),
    }


def _thin(post, step=8):
    return dataclasses.replace(post, arrays={k: v[:, ::step] for k, v in post.arrays.items()})


@pytest.fixture(scope="module")
def thinned(shipped):
    return {k: _thin(v) for k, v in shipped.items()}


def test_every_published_figure_gets_a_loo_row(thinned):
    t = score_units(loo_units(Posteriors(**thinned)))
    assert len(t) == 101  # 24 PFS + 24 OS medians, 6 188Re OS, 32 Table 6, 15 188Re counts
    assert t.groupby("endpoint").size().to_dict() == {"PFS": 24, "OS": 30, "toxicity": 47}
    held = t[~t["in_likelihood"]]
    assert len(held) == 8 and held["figure"].str.contains(" all ").all()
    assert held["khat"].isna().all() and t[t["in_likelihood"]]["khat"].notna().all()
    assert t["pit"].between(0, 1).all()
    assert (t["loo_lower"] <= t["loo_median"]).all() and (t["loo_median"] <= t["loo_upper"]).all()
    assert (t["source"] != "").all()
    s = loo_summary(t)
    assert list(s["endpoint"]) == ["PFS", "OS", "toxicity", "all"]
    assert s["figures"].tolist() == [24, 30, 47, 101]


def test_a_shifted_survival_posterior_is_rejected(thinned):
    """Salvage and first-line PFS twice as long as fitted: the PFS PITs pile up near 0."""
    d = thinned["survival_pfs"].all_draws()
    for k in ("alpha1", "alpha2"):
        d[k] = d[k] + np.log(2.0)
    post = Posteriors(survival_pfs={k: v for k, v in d.items() if k != "u_study"})
    t = score_units(loo_units(post))
    s = loo_summary(t).set_index("endpoint")
    assert s.loc["PFS", "ks_p"] < 0.01
    assert t[t["in_likelihood"]]["pit"].median() < 0.2


def test_a_shifted_toxicity_posterior_is_rejected(thinned):
    """Cutpoints lowered by one probit unit: far more grade III/IV than published."""
    tox = thinned["toxicity"]
    arrays = dict(tox.arrays)
    arrays["c3"] = arrays["c3"] - 1.0
    t = score_units(loo_units(Posteriors(toxicity=dataclasses.replace(tox, arrays=arrays))))
    assert loo_summary(t).set_index("endpoint").loc["toxicity", "ks_p"] < 0.01


def test_cli_validate_leads_with_the_cross_validated_check(shipped_validate, capsys):
    import io

    import pandas as pd

    from netbayes.cli import main

    # `netbayes validate --csv FILE` on the shipped posteriors, end to end (the real PSIS-LOO),
    # run once per session for the tests that need it (conftest)
    rc, out = shipped_validate.rc, shipped_validate.out
    assert rc in (0, 1) and "cross-validated check (PSIS-LOO)" in out
    for e in ("PFS", "OS", "toxicity"):
        assert f"  {e} " in out
    assert "held out of the likelihood, not independent" in out and "out-of-sample" not in out
    t = pd.read_csv(io.BytesIO(shipped_validate.csv))
    assert list(t.columns) == LOO_COLUMNS and len(t) == 101
    rc = main(["validate", "--in-sample"])
    out = capsys.readouterr().out
    assert "IN-SAMPLE check" in out and "in-sample predictive interval" in out


def test_cli_validate_fails_on_a_shifted_posterior(capsys, monkeypatch):
    """The shifted PFS posterior alone (as a folder holding only it): the failure can come
    from nothing else, and the OS and toxicity units are not computed again."""
    from netbayes import validation
    from netbayes.cli import main

    real = validation._load

    def shifted(folder):
        d = real(folder)["survival_pfs"].all_draws()
        d["alpha2"] = d["alpha2"] + np.log(3.0)
        d["alpha1"] = d["alpha1"] + np.log(3.0)
        return {"survival_pfs": {k: v for k, v in d.items() if k != "u_study"}}

    monkeypatch.setattr(validation, "_load", shifted)
    assert main(["validate"]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "uniformity rejected for PFS" in out


# ----------------------------------------------------------------------------------------------
# the NumPy units are the models' own likelihood terms (PyTensor; slow: compiles the models)
# ----------------------------------------------------------------------------------------------
def _compiled_terms(model, names):
    import pytensor

    return pytensor.function(model.free_RVs, [model[n] for n in names], on_unused_input="ignore")


@pytest.mark.slow
@pytest.mark.parametrize(
    "endpoint, censoring",
    [("pfs", "none"), ("os", "none"), ("pfs", "followup"), ("os", "followup")],
)
def test_survival_units_are_the_model_likelihood(shipped, endpoint, censoring):
    import copy

    from netbayes.checks.loo_survival import re188_units, table5_units
    from netbayes.models.survival import SurvivalModel, _sampling_coordinates

    post = shipped[f"survival_{endpoint}"]
    card = copy.deepcopy(post.card)
    card["model_config"]["censoring"] = {"censoring": censoring, "accrual": "uniform"}
    p = dataclasses.replace(
        post, card=card, arrays={k: v[:, ::400] for k, v in post.arrays.items()}
    )
    posts = Posteriors(**{f"survival_{endpoint}": p})
    units = [u for u in table5_units(posts, endpoint) if u.loglik is not None]
    if endpoint == "os":
        units += re188_units(posts)
    mine = sum(u.loglik for u in units)
    sm = SurvivalModel(endpoint, censoring=censoring)
    model = sm.build()
    names = [
        q.name for q in model.potentials
        if not q.name.startswith("spearman")
        and (endpoint == "pfs" or q.name.endswith("_os") or q.name.startswith(("salvage", "re188")))
    ]  # fmt: skip
    fn = _compiled_terms(model, names)
    d = p.all_draws()
    d |= _sampling_coordinates(d, sm.priors)  # the free variables at the stored draws
    ref = [sum(fn(*[d[rv.name][s] for rv in model.free_RVs])) for s in range(len(mine))]
    np.testing.assert_allclose(mine, ref, rtol=1e-7, atol=1e-7)


@pytest.mark.slow
def test_toxicity_units_are_the_model_likelihood(shipped):
    from netbayes.checks.loo_toxicity import toxicity_config, toxicity_units
    from netbayes.models.toxicity import ToxicityModel

    p = _thin(shipped["toxicity"], 400)
    mine = sum(u.loglik for u in toxicity_units(Posteriors(toxicity=p)))
    model = ToxicityModel(margins=toxicity_config(p)["margins"]).build()
    fn = _compiled_terms(model, [q.name for q in model.potentials])
    d = p.all_draws()
    ref = [sum(fn(*[d[rv.name][s] for rv in model.free_RVs])) for s in range(len(mine))]
    np.testing.assert_allclose(mine, ref, rtol=1e-7, atol=1e-7)


def test_pit_histogram_plot_draws_on_given_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from netbayes.plots import pit_histogram_data, plot_pit_histogram

    rng = np.random.default_rng(0)
    t = pd.DataFrame({"endpoint": ["PFS"] * 20 + ["toxicity"] * 30, "pit": rng.uniform(size=50)})
    data = pit_histogram_data(t)
    assert data.groupby("endpoint")["count"].sum().to_dict() == {"PFS": 20, "toxicity": 30}
    fig, axes = plt.subplots(1, 2)
    assert plot_pit_histogram(t, ax=axes) is fig
    assert "KS p" in axes[0].get_title() and len(axes[1].patches) == 6  # 5 bars + band
    with pytest.raises(ValueError, match="one per endpoint"):
        plot_pit_histogram(t, ax=axes[:1])
    plt.close("all")
