"""Default survival-model fits on the calibration data: time, diagnostics, predictive checks.

Usage::

    python benchmarks/survival_fit.py [--endpoint pfs|os|both] [--out benchmarks/results]

Writes ``survival_fit_<endpoint>.json`` (times, divergences, max R-hat, min bulk ESS, posterior
summaries with 95% equal-tailed intervals), ``survival_ppc_<endpoint>.csv`` (every Table 5
row against the 95% predictive interval of its KM median) and the prior-vs-posterior table and
plot of the prior-PFS and GBq effects (``survival_prior_posterior_<endpoint>.csv/.png``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np

from netbayes.models.survival import SurvivalModel
from netbayes.plots import plot_prior_posterior, prior_posterior_table
from netbayes.ppc import survival_ppc_table


def run(endpoint: str, out: Path, draws: int, tune: int, seed: int) -> dict:
    model = SurvivalModel(endpoint)
    t0 = time.perf_counter()
    fit = model.fit(draws=draws, tune=tune, chains=4, seed=seed, progress=False)
    wall = time.perf_counter() - t0
    d = fit.all_draws()
    scalars = [v for v in model.parameter_names() if d[v].ndim == 1]
    summary = {
        v: {
            "mean": float(d[v].mean()),
            "eti95_lower": float(np.quantile(d[v], 0.025)),
            "eti95_upper": float(np.quantile(d[v], 0.975)),
        }
        for v in scalars
    }
    ppc = survival_ppc_table(d, endpoint)
    ppc.to_csv(out / f"survival_ppc_{endpoint}.csv", index=False)
    pp = prior_posterior_table(d, model.priors)
    pp.to_csv(out / f"survival_prior_posterior_{endpoint}.csv", index=False)
    fig = plot_prior_posterior(d, model.priors)
    fig.savefig(out / f"survival_prior_posterior_{endpoint}.png", dpi=110)
    res = {
        "endpoint": endpoint,
        "machine": f"{platform.node()} {platform.processor() or platform.machine()}",
        "draws_per_chain": draws,
        "tune": tune,
        "chains": 4,
        "seconds": {k: round(v, 2) for k, v in fit.seconds.items()},
        "wall_seconds_including_build": round(wall, 2),
        "divergences": fit.n_divergences,
        "max_r_hat": float(fit.diagnostics["r_hat"].max()),
        "min_ess_bulk": float(fit.diagnostics["ess_bulk"].min()),
        "problems": fit.problems,
        "ppc_inside_pi95": f"{int(ppc['inside_pi95'].sum())}/{len(ppc)}",
        "ppc_outside_rows": ppc.loc[~ppc["inside_pi95"], "row_id"].tolist(),
        "posterior": summary,
        "prior_posterior_sd_ratio": dict(
            zip(pp["parameter"], pp["sd_ratio"].round(3).tolist(), strict=True)
        ),
    }
    (out / f"survival_fit_{endpoint}.json").write_text(json.dumps(res, indent=2))
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--endpoint", choices=["pfs", "os", "both"], default="both")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=20261121)
    a = ap.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    for ep in ["pfs", "os"] if a.endpoint == "both" else [a.endpoint]:
        r = run(ep, a.out, a.draws, a.tune, a.seed)
        print(json.dumps({k: v for k, v in r.items() if k != "posterior"}, indent=2))


if __name__ == "__main__":
    main()
