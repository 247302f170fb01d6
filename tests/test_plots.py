"""Prior-vs-posterior table and plot on injected draws (no MCMC)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np

from netbayes.models.survival import SurvivalPriors
from netbayes.plots import (
    plot_prior_posterior,
    prior_posterior_data,
    prior_posterior_table,
)


def _draws():
    rng = np.random.default_rng(5)
    # beta_x learned (sd 0.14 vs prior 0.5); beta_gbq = its prior N(0, 0.15)
    return {"beta_x": rng.normal(0.5, 0.14, 8000), "beta_gbq": rng.normal(0.0, 0.15, 8000)}


def test_table_sd_ratio_tells_learned_from_prior_only():
    t = prior_posterior_table(_draws(), SurvivalPriors()).set_index("parameter")
    # sd of 8000 normal draws has relative MC error ~ 1/sqrt(2*8000) ~ 0.8%
    assert abs(t.loc["beta_x", "sd_ratio"] - 0.28) < 0.02
    assert abs(t.loc["beta_gbq", "sd_ratio"] - 1.0) < 0.03
    assert np.isclose(t.loc["beta_gbq", "prior_eti95_upper"], 1.959964 * 0.15)
    assert t.loc["beta_x", "posterior_eti95_lower"] > 0.2


def test_plot_data_densities_integrate_to_one_and_figure_has_panels():
    d = prior_posterior_data(_draws(), SurvivalPriors())
    for _, g in d.groupby("parameter"):
        x = g["x"].to_numpy()
        for col in ("prior_density", "posterior_density"):
            assert abs(np.trapezoid(g[col].to_numpy(), x) - 1) < 0.02
    fig = plot_prior_posterior(_draws(), SurvivalPriors())
    assert len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [3, 3]  # prior, posterior, zero line
