r"""Posterior predictive checks of the survival model against every published Table 5 row.

NumPy only (no PyMC import): works on plain posterior draws, e.g. ``FitResult.all_draws()``.
For each row the check simulates, per posterior draw, a cohort of the row's size drawn the way
the model says that row's patients arise (first-line PFS truncated at 18 months; salvage PFS
given a prior PFS drawn from the selected first-line distribution; RR-PRRT given an R-PRRT PFS
of at least 14 months), takes its Kaplan-Meier median (no censoring: the
:math:`\lceil n/2\rceil`-th order statistic, as in the likelihood) and reports the published
median against the 95% predictive interval. "All tumours" rows are mixtures over the reported
tumour-type counts; they are held out of the likelihood, but they are the same patients as the
tumour-type rows: held out, not independent (:mod:`netbayes.checks.loo` gives the
cross-validated check).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from netbayes import vocab
from netbayes.calibration import re188, rotterdam, survival_calibration, type_weight_rows
from netbayes.families import DEFAULT_FAMILY, get_family
from netbayes.formulas.survival import re188_prior_pfs_nodes
from netbayes.intervals import Interval
from netbayes.spec import GBQ_REF, GBQ_UNIT, X_REF

__all__ = ["INTERVAL", "re188_os_ppc_table", "survival_ppc_table"]

INTERVAL = 0.95
"""Probability of the predictive intervals (equal-tailed)."""


def _cohort_types(row: pd.Series, mix: pd.DataFrame) -> np.ndarray:
    """Tumour-type indices of the n patients of a row ('all' rows use the reported mix)."""
    if row["tumour_type"] != "all":
        return np.full(int(row["n"]), vocab.TUMOUR_TYPES.index(row["tumour_type"]))
    key = "RR-PRRT" if row["line"] == "RR-PRRT" else "I-PRRT/R-PRRT"
    if row["group"] == "control":
        key = "I-PRRT"
    m = mix[(mix["group"] == row["group"]) & (mix["line"].astype(str) == key)]
    m = m[m["tumour_type"] != "all"]
    idx = [
        vocab.TUMOUR_TYPES.index(t)
        for t, c in zip(m["tumour_type"], m["n"], strict=True)
        for _ in range(int(c))
    ]
    rest = int(row["n"]) - len(idx)
    if rest:  # control 'all': 16 patients of unreported types -> the retreatment mix of those
        r = mix[(mix["group"] == "retreatment") & (mix["line"].astype(str) == "I-PRRT/R-PRRT")]
        r = r[~r["tumour_type"].isin(["all", *m["tumour_type"]])]
        p = r["n"].to_numpy(float) / r["n"].sum()
        extra = np.repeat(
            [vocab.TUMOUR_TYPES.index(t) for t in r["tumour_type"]], np.round(p * rest).astype(int)
        )
        idx += list(extra[:rest]) + [int(extra[-1])] * (rest - len(extra[:rest]))
    return np.asarray(idx)


def survival_ppc_table(
    draws: dict[str, np.ndarray],
    endpoint: str = "pfs",
    n_sims: int = 1000,
    seed: int = 1,
    family: str = DEFAULT_FAMILY,
    study_effect: np.ndarray | None = None,
) -> pd.DataFrame:
    """Compare every Table 5 median with its 95% posterior predictive interval.

    Parameters
    ----------
    draws : dict of str to numpy.ndarray
        Posterior draws (first axis = draw) of the survival model's parameters.
    endpoint : {"pfs", "os"}
        Which block of Table 5.
    n_sims : int
        Posterior draws used (evenly thinned).
    seed : int
        Seed of the cohort simulation.
    family : str
        The posterior's survival family (:data:`netbayes.families.FAMILIES`).
    study_effect : numpy.ndarray, optional
        Draws of the Rotterdam study's effect on log time (a posterior with a study level):
        the rows are predicted for their own centre.

    Returns
    -------
    pandas.DataFrame
        One row per published row: ``row_id``, ``group``, ``line``, ``tumour_type``, ``n``,
        ``published_median_months``, ``predicted_median_months``, ``pi95_eti_lower_months``,
        ``pi95_eti_upper_months``, ``inside_pi95``, ``in_likelihood`` (False for the
        held-out "all tumours" rows) and ``pit`` (the predictive probability of a value at
        most the published one).
    """
    rng = np.random.default_rng(seed)
    fam = get_family(family)
    cal = survival_calibration(endpoint)
    thr_r, thr_rr = cal.threshold("R-PRRT"), cal.threshold("RR-PRRT")
    gbq_r, gbq_rr = cal.cumulative_gbq["R-PRRT"], cal.cumulative_gbq["RR-PRRT"]
    n_total = draws["alpha1"].shape[0]
    sel = np.linspace(0, n_total - 1, min(n_sims, n_total)).astype(int)
    d = {k: v[sel] for k, v in draws.items()}
    s = cal.summaries[endpoint]
    mix = rotterdam.table5_mix()
    ll1 = d["alpha1"][:, None] + d["sigma1"][:, None] * d["z1"]  # (S, 6) log scale
    type2 = d["alpha2"][:, None] + d["sigma2"][:, None] * d["z2"]
    u = None if study_effect is None else np.asarray(study_effect)[sel][:, None]
    if u is not None:  # the study shifts every log-time scale of its rows
        ll1, type2 = ll1 + u, type2 + u
    lam1 = np.exp(ll1)
    if endpoint == "os":
        ll1_end = d["alpha1_os"][:, None] + d["sigma1_os"][:, None] * d["z1_os"]
        lam1_end = np.exp(ll1_end if u is None else ll1_end + u)
        k1_end = d["k1_os"]
    else:
        lam1_end, k1_end = lam1, d["k1"]
    k1, k2 = d["k1"][:, None], d["k2"][:, None]
    rows = []
    pits: list[float] = []
    for _, row in s.iterrows():
        types = _cohort_types(row, mix)
        n = len(types)
        ctrl = d["delta_control"][:, None] if row["group"] == "control" else 0.0
        if row["line"] == "I-PRRT":
            lam = lam1_end[:, types] * np.exp(ctrl)
            t = fam.truncated_sample(rng, k1_end[:, None], lam, thr_r, lam.shape)
        else:
            x = fam.truncated_sample(rng, k1, lam1[:, types], thr_r, (len(sel), n))
            lp = type2[:, types] + d["beta_x"][:, None] * np.log(x / X_REF)
            lp_r = lp + d["beta_gbq"][:, None] * (gbq_r - GBQ_REF) / GBQ_UNIT
            if row["line"] == "RR-PRRT":
                x2 = fam.truncated_sample(rng, k2, np.exp(lp_r), thr_rr, lp_r.shape)
                lp = (
                    type2[:, types]
                    + d["beta_x"][:, None] * np.log(x2 / X_REF)
                    + d["beta_gbq"][:, None] * (gbq_rr - GBQ_REF) / GBQ_UNIT
                    + d["gamma_rr"][:, None]
                )
            else:
                lp = lp_r
            t = fam.sample(rng, k2, np.exp(lp), lp.shape)
        r = math.ceil(n / 2)
        med = np.partition(t, r - 1, axis=1)[:, r - 1]
        lo, hi = Interval(INTERVAL).bounds(med)
        pub = float(row["median_months"])
        pits.append(float(np.mean(med <= pub)))
        rows.append(
            (
                row["row_id"],
                str(row["group"]),
                str(row["line"]),
                str(row["tumour_type"]),
                int(row["n"]),
                pub,
                float(np.median(med)),
                float(lo),
                float(hi),
                bool(lo <= pub <= hi),
                row["tumour_type"] != "all",
            )
        )
    out = pd.DataFrame(
        rows,
        columns=[
            "row_id",
            "group",
            "line",
            "tumour_type",
            "n",
            "published_median_months",
            "predicted_median_months",
            "pi95_eti_lower_months",
            "pi95_eti_upper_months",
            "inside_pi95",
            "in_likelihood",
        ],
    )
    out["pit"] = pits  # P(predicted <= published): uniform over figures if calibrated
    return out


def re188_os_ppc_table(
    draws: dict[str, np.ndarray],
    n_sims: int = 4000,
    seed: int = 2,
    family: str = DEFAULT_FAMILY,
    study_effect: np.ndarray | None = None,
) -> pd.DataFrame:
    """Each 188Re-HEDP patient's OS against its 95% posterior predictive interval.

    The OS model's 188Re-HEDP block: :math:`T \\sim \\mathrm{Weibull}(k_2, \\lambda)` with
    :math:`\\log\\lambda = \\alpha_2 + \\sigma_2 z_{2j} + \\gamma_{188Re} + \\beta_x \\log(x/36)
    + \\beta_{GBq}(d - 44.7)/10` at the patient's own prior 177Lu activity :math:`d`, with the
    prior PFS :math:`x` drawn from the pilot's interval law
    (:func:`netbayes.formulas.survival.re188_prior_pfs_nodes`); a coarse "GI" type is mixed over
    foregut/midgut/hindgut with the Rotterdam weights, as in the likelihood. An observed death
    is inside if it lies in the interval; a censored time is inside if surviving past it is
    plausible (it is below the upper bound).

    Parameters
    ----------
    draws : dict of str to numpy.ndarray
        Posterior draws of the OS model (``alpha2, sigma2, z2, k2, gamma_re188, beta_x,
        beta_gbq``).
    n_sims : int
        Posterior draws used (evenly thinned), one predictive time each.
    seed : int
        Seed of the predictive simulation.
    family : str
        The posterior's survival family (:data:`netbayes.families.FAMILIES`).
    study_effect : numpy.ndarray, optional
        Draws of the pilot study's effect on log time (a posterior with a study level).

    Returns
    -------
    pandas.DataFrame
        ``patient``, ``tumour_type``, ``os_months``, ``os_event``,
        ``predicted_median_months``, ``pi95_eti_lower_months``, ``pi95_eti_upper_months``,
        ``inside_pi95``, ``pit`` (P(T <= the observed death); NaN for a censored time).
    """
    rng = np.random.default_rng(seed)
    fam = get_family(family)
    n_total = draws["k2"].shape[0]
    sel = np.linspace(0, n_total - 1, min(n_sims, n_total)).astype(int)
    names = ("alpha2", "sigma2", "z2", "k2", "gamma_re188", "beta_x", "beta_gbq")
    d = {k: draws[k][sel] for k in names}
    pts = re188.patients()
    w = type_weight_rows(pts["tumour_type"])
    lx_nodes = np.log(np.asarray(re188_prior_pfs_nodes(*re188.prior_pfs_interval())) / X_REF)
    rows = []
    pits: list[float] = []
    for i, p in pts.reset_index(drop=True).iterrows():
        j = rng.choice(len(vocab.TUMOUR_TYPES), size=len(sel), p=w[i])
        lx = lx_nodes[rng.integers(0, len(lx_nodes), size=len(sel))]
        gq = (float(p["lu177_cumulative_gbq"]) - GBQ_REF) / GBQ_UNIT
        loglam = (
            d["alpha2"] + d["sigma2"] * d["z2"][np.arange(len(sel)), j] + d["gamma_re188"]
            + d["beta_x"] * lx + d["beta_gbq"] * gq
        )  # fmt: skip
        lam = np.exp(loglam if study_effect is None else loglam + np.asarray(study_effect)[sel])
        t = fam.sample(rng, d["k2"], lam, (len(sel),))
        lo, hi = Interval(INTERVAL).bounds(t)
        med = np.median(t)
        obs, ev = float(p["os_months"]), int(p["os_event"])
        inside = (lo <= obs <= hi) if ev == 1 else obs <= hi
        pits.append(float(np.mean(t <= obs)) if ev == 1 else float("nan"))
        rows.append(
            (int(p["patient"]), str(p["tumour_type"]), obs, ev, float(med), float(lo), float(hi),
             bool(inside))
        )  # fmt: skip
    out = pd.DataFrame(
        rows,
        columns=[
            "patient",
            "tumour_type",
            "os_months",
            "os_event",
            "predicted_median_months",
            "pi95_eti_lower_months",
            "pi95_eti_upper_months",
            "inside_pi95",
        ],
    )
    out["pit"] = pits  # P(T <= observed death); NaN for a censored time
    return out
