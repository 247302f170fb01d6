"""Posterior predictive check of Table 5 rows, on injected posterior draws (no MCMC)."""

from __future__ import annotations

import math

import numpy as np

from netbayes.ppc import survival_ppc_table


def _fixed_draws(s: int = 2000, **over: float) -> dict[str, np.ndarray]:
    vals = {
        "alpha1": math.log(40.0),
        "alpha2": math.log(18.0),
        "k1": 1.5,
        "k2": 1.8,
        "sigma1": 0.0,
        "sigma2": 0.0,
        "beta_x": 0.5,
        "beta_gbq": 0.0,
        "gamma_rr": 0.0,
        "gamma_re188": 0.0,
        "delta_control": 0.0,
        "kappa_se": 3.0,
    }
    vals.update(over)
    d = {k: np.full(s, v) for k, v in vals.items()}
    d["z1"] = np.zeros((s, 6))
    d["z2"] = np.zeros((s, 6))
    return d


def test_first_line_row_matches_truncated_weibull_median_and_se():
    tab = survival_ppc_table(_fixed_draws(), "pfs", n_sims=2000, seed=3).set_index("row_id")
    r = tab.loc["t5_pfs_retre_iprrt_all"]
    k, lam, n = 1.5, 40.0, 168
    h18 = (18.0 / lam) ** k
    m = lam * (h18 + math.log(2)) ** (1 / k)  # median of the Weibull truncated at 18
    se = m / (k * (h18 + math.log(2)) * math.sqrt(n))  # asymptotic SE of the sample median
    # MC error of the median of 2000 simulated medians ~ 1.25 * se / sqrt(2000) ~ 0.03 se
    assert abs(r.predicted_median_months - m) < 0.15 * se + 0.05
    width = r.pi95_eti_upper_months - r.pi95_eti_lower_months
    assert abs(width / (2 * 1.96 * se) - 1) < 0.12  # quantile MC error ~ 5%, O(1/n) bias
    assert r.pi95_eti_lower_months < m < r.pi95_eti_upper_months


def test_table_lists_every_row_and_flags_held_out_rows():
    tab = survival_ppc_table(_fixed_draws(300), "pfs", n_sims=300)
    assert len(tab) == 24  # every PFS row of Table 5
    assert set(tab.loc[~tab["in_likelihood"], "tumour_type"]) == {"all"}
    assert tab["inside_pi95"].dtype == bool
    assert (tab["pi95_eti_lower_months"] <= tab["pi95_eti_upper_months"]).all()


def test_prior_pfs_effect_moves_salvage_medians():
    lo = survival_ppc_table(_fixed_draws(500, beta_x=0.0), "pfs", n_sims=500).set_index("row_id")
    hi = survival_ppc_table(_fixed_draws(500, beta_x=1.0), "pfs", n_sims=500).set_index("row_id")
    # selected prior PFS is mostly above the 36-month reference, so beta_x > 0 lengthens PFS
    row = "t5_pfs_retre_rprrt_all"
    assert hi.loc[row, "predicted_median_months"] > lo.loc[row, "predicted_median_months"]
    # first-line rows do not depend on beta_x at all
    r1 = "t5_pfs_retre_iprrt_all"
    assert abs(hi.loc[r1, "predicted_median_months"] - lo.loc[r1, "predicted_median_months"]) < 1
