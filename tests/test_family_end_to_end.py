"""A second survival family end to end: simulate, fit, save, load, predict (log-normal).

The structure's proof (issue 14): ``SurvivalModel(..., family="lognormal")`` builds, fits,
saves and predicts through the same code as the Weibull default. The data are individual
R-PRRT patients simulated from a log-normal truth (``netbayes.simulation`` with the family), so
the fit must recover the truth: each checked parameter's truth lies inside its central 99%
interval (a fixed seed makes the check deterministic; 400 patients give posterior SDs of about
0.05 for ``k2``'s log and 0.1 for ``beta_x``, far narrower than the priors).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest

from netbayes.fitting import ConvergenceWarning
from netbayes.predict import Predictor
from netbayes.simulation import simulate_survival_patients

TRUTH = {
    "alpha1": np.array(math.log(40.0)),
    "k1": np.array(1.4),
    "sigma1": np.array(0.3),
    "z1": np.linspace(-1.0, 1.0, 6),
    "alpha2": np.array(math.log(15.0)),
    "k2": np.array(1.8),
    "sigma2": np.array(0.25),
    "z2": np.linspace(0.8, -0.8, 6),
    "beta_x": np.array(0.5),
    "beta_gbq": np.array(0.1),
    "gamma_rr": np.array(0.0),
    "delta_control": np.array(0.0),
}


@pytest.mark.slow
def test_lognormal_fit_recovers_truth_saves_and_predicts(tmp_path):
    from netbayes.models.survival import SurvivalModel

    rng = np.random.default_rng(2026)
    df = simulate_survival_patients(TRUTH, 400, rng, family="lognormal", follow_up=(2.0, 6.0))
    model = SurvivalModel("pfs", patients=df, include_published=False, n_grid=8, family="lognormal")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit = model.fit(draws=300, tune=300, chains=2, seed=5, progress=False)
    d = fit.all_draws()
    for name in ("k2", "beta_x", "alpha2"):
        lo, hi = np.quantile(d[name], [0.005, 0.995])
        assert lo < float(TRUTH[name]) < hi, (name, lo, hi)
    assert fit.model_info["config"]["family"] == "lognormal"
    # the survival model's sampler defaults, recorded with the fit (and so on its card)
    assert (fit.settings["target_accept"], fit.settings["adaptation"]) == (0.9, "low_rank")

    # one pointwise log-likelihood per patient: LOO on the user's own data
    import arviz as az

    ll = fit.posterior["log_likelihood"]["patients"]
    assert ll.shape == (2, 300, 400) and np.isfinite(ll.to_numpy()).all()
    loo = az.loo(fit.posterior)
    assert np.isfinite(float(loo.elpd)) and float(loo.elpd) == pytest.approx(
        float(ll.to_numpy().sum(axis=-1).mean()), abs=40.0
    )

    # the prior groups: log_prior (each parameter's log density at the posterior draws, the
    # input of power-scaling sensitivity) and prior draws
    lp = fit.posterior["log_prior"]
    assert lp["k2"].shape == (2, 300) and np.isfinite(lp["k2"].to_numpy()).all()
    pr = fit.posterior["prior"]
    assert pr["k2"].shape == (1, 1000)
    # k2's prior draws are wide, its posterior narrow (400 patients)
    assert float(pr["k2"].std()) > 3 * float(fit.posterior["posterior"]["k2"].std())
    # power-scaling sensitivity from 2 x 300 draws is noisy: over the seeds 5-8 (this fit,
    # 2026-12-07) the prior's was 0.042-0.065 and the likelihood's 0.12-0.16, so the checks
    # are "small" (< 0.1, where a prior-driven k2 would be far above) and "the likelihood's at
    # least 1.5 times the prior's" (2.0-3.4 seen), not the 0.05 of priorsense's flag itself
    sens = az.psense(fit.posterior, var_names=["k2", "beta_x"], group="prior")
    assert np.isfinite(sens["k2"].to_numpy()).all() and float(sens["k2"]) < 0.1
    sens_l = az.psense(fit.posterior, var_names=["k2"], group="likelihood")
    assert float(sens_l["k2"]) > 0.05  # the data, not the prior, decide k2
    assert float(sens_l["k2"]) > 1.5 * float(sens["k2"])

    path = fit.save(tmp_path)
    tree = az.from_netcdf(path)
    try:
        assert {"log_likelihood", "log_prior", "prior"} <= set(tree.children)
        assert float(az.psense(tree, var_names=["k2"], group="prior")["k2"]) == pytest.approx(
            float(sens["k2"]), rel=1e-9
        )
    finally:
        tree.close()
    card = json.loads((tmp_path / "survival-pfs.json").read_text())
    assert card["model_config"]["family"] == "lognormal"
    assert card["user_data_sha256"] == model.user_data_hash() is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = Predictor.load(tmp_path)
        rec = dict(tumour_type="midgut", line="R-PRRT", prior_pfs_months=30, prior_gbq=29.9,
                   planned_gbq=14.9)  # fmt: skip
        p = pred.patient(**rec, centre="typical")
        own = pred.patient(**rec, centre="user")  # the patients' own study (default label)
    assert pred.family.name == "lognormal"
    # the log-normal median is the scale itself: exp(alpha2 + sigma2 z2 + covariates)
    lam = np.exp(
        d["alpha2"]
        + d["sigma2"] * d["z2"][:, 1]
        + d["beta_x"] * math.log(30 / 36)
        + d["beta_gbq"] * (29.9 + 14.9 - 44.7) / 10
    )
    assert p.median().median == pytest.approx(float(np.median(lam)), rel=1e-9)
    assert pred.studies == ["user"]
    assert own.median().median == pytest.approx(
        float(np.median(lam * np.exp(d["u_study"][:, 0]))), rel=1e-9
    )
