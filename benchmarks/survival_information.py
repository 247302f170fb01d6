"""Information-matrix check of the PFS model's likelihood terms for one parameter.

For a correctly specified term, the score at the true parameter has mean 0 and variance equal
to the expected negative second derivative (the information). Over simulated data sets (truth
from the prior, paper-style summaries, :func:`netbayes.simulation.simulate_survival_study`)
this script evaluates every likelihood term (``pm.Potential``) of the compiled model at the
truth and reports, per term and in total, the mean score, ``Var(score)`` and the information,
by central finite differences in the chosen parameter (on its sampling scale: log for the
shapes). A ratio ``Var(score) / information`` above 1 means the term overstates what it knows.

The other parameters are held at the truth, so this checks each term's own information, not the
cross-information through nuisance parameters. Parameters without a true value in the
simulation (``kappa_se``, ``spearman_attenuation``; ``gamma_re188`` has no data) are held at
their prior medians/means from :class:`~netbayes.models.survival.SurvivalPriors`.

Usage::

    python benchmarks/survival_information.py [--param k2] [--datasets 240]

Session 4 result for log k2 (240 data sets): salvage medians 1.06, salvage SEs 0.92, RR-PRRT
medians 0.73, RR-PRRT SEs 5.2 (almost no information), Spearman 1.61, total 0.94. The first 40
data sets alone gave 0.54 for the Spearman term: the scores are heavy-tailed (a few
prior-extreme worlds dominate the variance), so use hundreds of data sets and read single
ratios with care.
"""

from __future__ import annotations

import argparse
import math
import warnings

import numpy as np
import pandas as pd

from netbayes.models.survival import SurvivalModel, SurvivalPriors
from netbayes.simulation import draw_survival_truth, simulate_survival_study

_P = SurvivalPriors()
NO_TRUTH = {
    "kappa_se": math.exp(_P.kappa_se.mu),
    "spearman_attenuation": _P.spearman_attenuation.mu,
    "gamma_re188": _P.gamma_re188.mu,
}


def _value_point(model, truth: dict) -> dict[str, np.ndarray]:
    """The truth on the sampler's (transformed) scale, keyed by value-variable name."""
    out = {}
    for rv in model.free_RVs:
        val = model.rvs_to_values[rv]
        x = np.asarray(truth.get(rv.name, NO_TRUTH.get(rv.name)), dtype=float)
        if model.rvs_to_transforms.get(rv) is None:
            out[val.name] = x
        elif val.name.endswith("_log__"):
            out[val.name] = np.log(x)
        elif val.name.endswith("_logodds__"):
            out[val.name] = np.log(x / (1.0 - x))
        else:
            raise ValueError(f"unhandled transform of {val.name}")
    return out


def information_table(param: str, n_datasets: int, seed: int = 77) -> pd.DataFrame:
    """Mean score, Var(score) and information per likelihood term, for ``param`` at the truth."""
    import pymc as pm
    import pytensor

    sm = SurvivalModel("pfs")
    model = sm.build()
    names = [p.name for p in model.potentials]
    fn = pytensor.function(
        model.value_vars, model.replace_rvs_by_values(model.potentials), on_unused_input="ignore"
    )
    vnames = [v.name for v in model.value_vars]
    key = next(v for v in vnames if v == param or v.startswith(param + "_"))
    h = 1e-3
    score, hess = [], []
    for r in range(n_datasets):
        rng = np.random.default_rng([seed, r])
        truth = draw_survival_truth(sm.priors, rng)
        study = simulate_survival_study(truth, rng)
        with model:
            pm.set_data(sm.data_values({"pfs": study.summaries}, study.spearman))
        p0 = _value_point(model, truth)

        def terms(d: float, p0=p0) -> np.ndarray:
            q = dict(p0)
            q[key] = p0[key] + d
            return np.array([float(x) for x in fn(*[q[v] for v in vnames])])

        f0, fp, fm = terms(0.0), terms(h), terms(-h)
        score.append((fp - fm) / (2 * h))
        hess.append((fp - 2 * f0 + fm) / h**2)
    s, hh = np.asarray(score), np.asarray(hess)
    rows = []
    for i, name in enumerate([*names, "TOTAL"]):
        si = s.sum(axis=1) if name == "TOTAL" else s[:, i]
        info = -(hh.sum(axis=1) if name == "TOTAL" else hh[:, i]).mean()
        rows.append(
            {
                "term": name,
                "mean_score": si.mean(),
                "se_mean": si.std(ddof=1) / math.sqrt(len(si)),
                "var_score": si.var(ddof=1),
                "information": info,
                "ratio": si.var(ddof=1) / info if info > 1e-12 else math.nan,
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--param", default="k2", help="a scalar parameter, e.g. k2, k1, beta_x")
    ap.add_argument("--datasets", type=int, default=240)
    a = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)
    table = information_table(a.param, a.datasets)
    print(f"{a.param}: {a.datasets} simulated data sets, other parameters at the truth")
    print(table.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
