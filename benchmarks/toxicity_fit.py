"""Default fit of the toxicity model on the packaged data, with the posterior predictive check.

Measures compile and sampling time separately (nutpie, 4 chains x 1000 draws after 1000 tuning
draws), checks the targets (0 divergences, R-hat <= 1.01, bulk ESS >= 400), and writes to
``benchmarks/results/``:

* ``toxicity_fit.md``: timings, diagnostics, prior vs posterior, PPC summary, risk table;
* ``toxicity_fit_diagnostics.csv``, ``toxicity_prior_posterior.csv``;
* ``toxicity_ppc.csv``: every Table 6 count and every 188Re per-cycle grade count against its
  95% posterior predictive interval (inside / outside);
* ``toxicity_risk.csv`` and ``toxicity_risk.png`` (+ ``toxicity_risk_plot_data.csv``).

Usage::

    PYTHONPATH=src python benchmarks/toxicity_fit.py
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pandas as pd

from netbayes.intervals import DEFAULT_INTERVAL
from netbayes.models.toxicity import TARGET_ACCEPT, ToxicityModel

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tm = ToxicityModel()
    fit = tm.fit(progress=False)
    d = fit.diagnostics
    ppc = tm.ppc_table(fit)
    prior = tm.prior_table(fit)
    risk = tm.risk_table(fit, planned_gbq=[7.4, 14.8, 29.6], prior_gbq=[0.0, 29.6, 44.4])
    plot_data = tm.plot_risk(fit, str(RESULTS / "toxicity_risk.png"))
    d.to_csv(RESULTS / "toxicity_fit_diagnostics.csv")
    ppc.to_csv(RESULTS / "toxicity_ppc.csv", index=False)
    prior.to_csv(RESULTS / "toxicity_prior_posterior.csv")
    risk.to_csv(RESULTS / "toxicity_risk.csv", index=False)
    plot_data.to_csv(RESULTS / "toxicity_risk_plot_data.csv", index=False)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lo, hi = DEFAULT_INTERVAL.columns
    cols = [
        "prior_mean", "prior_sd", "posterior_mean", "posterior_sd", f"posterior_{lo}",
        f"posterior_{hi}", "sd_ratio",
    ]  # fmt: skip
    md = [
        "# Toxicity model: default fit",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; 1-min load average at end "
        f"{load:.2f} (other jobs share this machine).",
        "",
        f"- sampler: {fit.sampler}, 4 chains x 1000 draws (1000 tuning), target_accept "
        f"{TARGET_ACCEPT}",
        f"- compile: {fit.seconds['compile']:.1f} s; sampling: {fit.seconds['sample']:.1f} s; "
        f"total {fit.seconds['total']:.1f} s",
        f"- divergences: {fit.n_divergences}",
        f"- max R-hat: {d['r_hat'].max():.4f} ({d['r_hat'].idxmax()})",
        f"- min bulk ESS: {d['ess_bulk'].min():.0f} ({d['ess_bulk'].idxmin()}; sampler "
        "coordinates `*_marg` and reported parameters both diagnosed)",
        f"- min tail ESS: {d['ess_tail'].min():.0f}",
        f"- converged (targets met): {fit.converged}",
        "",
        f"## Posterior predictive check: {int(ppc['inside'].sum())} of {len(ppc)} counts inside "
        f"their {DEFAULT_INTERVAL.text} predictive interval",
        "",
        ppc.to_string(index=False),
        "",
        "## Prior vs posterior (sd_ratio near 1: not informed by the data)",
        "",
        prior[cols].round(3).to_string(),
        "",
        f"## P(grade >= III): posterior mean, median and {DEFAULT_INTERVAL.text}",
        "",
        risk.round(4).to_string(index=False),
    ]
    (RESULTS / "toxicity_fit.md").write_text("\n".join(md) + "\n")
    print("\n".join(md[:14]))
    pd.set_option("display.width", 200)


if __name__ == "__main__":
    main()
