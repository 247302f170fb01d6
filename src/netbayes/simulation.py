r"""Simulate the published survival design from known parameters and summarise it as the paper did.

Used by the simulation-coverage benchmark (``benchmarks/survival_coverage.py``) and its smoke
test. NumPy and SciPy for the simulation; the Kaplan-Meier summaries use **lifelines** (an
implementation independent of ours), imported lazily (it is a test/benchmark dependency).

Design (the Rotterdam Table 5 PFS rows; their n and which rows printed a CI):

* For each tumour type, the R-PRRT patients: first-line PFS :math:`x_1` from the type's
  first-line Weibull *truncated at the 18-month selection*, then R-PRRT PFS from the salvage
  Weibull given :math:`x_1` (AFT, cumulative 44.7 GBq). Their first-line PFS is fully observed
  (all progressed before retreatment); their R-PRRT PFS is censored by loss to follow-up.
* RR-PRRT patients: drawn from that type's R-PRRT patients who progressed at :math:`\ge` 14
  months (the selection rule), topped up with fresh patients from the same truncated chain
  when too few qualify; cumulative 59.7 GBq.
* Control rows: first-line PFS (truncated at 18 months, control offset), censored.
* Censoring: each censored row's patients get a follow-up of :math:`U(0.5, 4)` times the
  row's sample median (for the truncated control rows, times its excess over 18 months), so
  some patients (about 1 in 7) are censored before the median. The
  model ignores censoring before the median: this design tests that approximation.
* Summaries per row, as the paper reported them: the Kaplan-Meier median (lifelines), its SE
  from Greenwood's variance at the median divided by a density estimated from the KM curve
  between :math:`\hat S = 0.55` and :math:`0.45` (Collett 2015, §2.4), the symmetric Wald
  95% CI (lower bound clipped at 0). SEs are dropped where the paper printed "N/A"; a median
  not reached is dropped (NaN). The Spearman correlation of first-line PFS with (observed)
  R-PRRT PFS over all R-PRRT patients, as published.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from netbayes import vocab
from netbayes.calibration import survival_calibration
from netbayes.cohorts import Z95
from netbayes.families import DEFAULT_FAMILY, SurvivalFamily, get_family
from netbayes.models.survival import calibration_constants
from netbayes.spec import GBQ_REF as _GBQ_REF
from netbayes.spec import GBQ_UNIT as _GBQ_UNIT
from netbayes.spec import X_REF as _X_REF

__all__ = [
    "SimulatedStudy",
    "draw_survival_truth",
    "km_summary",
    "simulate_survival_patients",
    "simulate_survival_study",
    "survival_targets",
]

N_TYPES = len(vocab.TUMOUR_TYPES)


def draw_survival_truth(priors: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One draw of the PFS model's parameters from its priors.

    Parameters
    ----------
    priors : netbayes.models.survival.SurvivalPriors
    rng : numpy.random.Generator

    Returns
    -------
    dict of str to ndarray
        ``alpha1, alpha2, k1, k2, sigma1, sigma2, z1, z2, beta_x, beta_gbq, gamma_rr,
        delta_control`` (``z1, z2`` of shape (6,)).
    """
    p = priors
    t: dict[str, Any] = {
        "alpha1": p["alpha1"].sample(rng),
        "alpha2": p["alpha2"].sample(rng),
        "k1": p["k1"].sample(rng),
        "k2": p["k2"].sample(rng),
        "sigma1": p["sigma1"].sample(rng),
        "sigma2": p["sigma2"].sample(rng),
        "z1": rng.normal(size=N_TYPES),
        "z2": rng.normal(size=N_TYPES),
        "beta_x": p["beta_x"].sample(rng),
        "beta_gbq": p["beta_gbq"].sample(rng),
        "gamma_rr": p["gamma_rr"].sample(rng),
        "delta_control": p["delta_control"].sample(rng),
    }
    return {k: np.asarray(v, dtype=float) for k, v in t.items()}


def survival_targets(
    params: dict[str, np.ndarray], family: str = DEFAULT_FAMILY
) -> dict[str, np.ndarray]:
    """Named scalar targets of the coverage study, from a truth or from posterior draws.

    ``k1``, ``k2``, ``beta_x``; ``median1[type]``, the (untruncated) first-line median PFS;
    ``median2[type]``, the R-PRRT median PFS at prior PFS 36 months and 44.7 GBq. Posterior
    draws have draws on axis 0 (``z1``/``z2`` shaped (draws, 6)).
    """
    k1, k2 = np.asarray(params["k1"]), np.asarray(params["k2"])
    out = {"k1": k1, "k2": k2, "beta_x": np.asarray(params["beta_x"])}
    lam1 = np.exp(params["alpha1"][..., None] + params["sigma1"][..., None] * params["z1"])
    lam2 = np.exp(params["alpha2"][..., None] + params["sigma2"][..., None] * params["z2"])
    fam = get_family(family)
    m1 = fam.median(k1[..., None], lam1)
    m2 = fam.median(k2[..., None], lam2)
    for j, t in enumerate(vocab.TUMOUR_TYPES):
        out[f"median1[{t}]"] = m1[..., j]
        out[f"median2[{t}]"] = m2[..., j]
    return out


# ---------------------------------------------------------------------------------------------
# Kaplan-Meier summaries (lifelines)
# ---------------------------------------------------------------------------------------------
def km_summary(time: np.ndarray, event: np.ndarray) -> tuple[float, float]:
    """Kaplan-Meier median and its Greenwood-based standard error, as a paper reports them.

    Parameters
    ----------
    time : ndarray
        Follow-up times (> 0).
    event : ndarray
        1 = event, 0 = censored.

    Returns
    -------
    median, se : float
        The KM median (NaN if not reached). The SE is
        :math:`\\sqrt{\\widehat{Var}_{Greenwood}\\hat S(m)} / \\hat f(m)` with
        :math:`\\hat f(m) = (\\hat S(u) - \\hat S(l)) / (l - u)`, :math:`u` the last event time
        with :math:`\\hat S \\ge 0.55` (0 if none), :math:`l` the first with
        :math:`\\hat S \\le 0.45`; NaN where undefined (fewer than 3 patients, no time with
        :math:`\\hat S \\le 0.45`, or an infinite Greenwood term).
    """
    from lifelines import KaplanMeierFitter

    time = np.asarray(time, dtype=float)
    event = np.asarray(event, dtype=int)
    kmf = KaplanMeierFitter().fit(time, event)
    median = float(kmf.median_survival_time_)
    if not np.isfinite(median):
        return math.nan, math.nan
    if len(time) < 3:
        return median, math.nan
    et = kmf.event_table
    et = et[et["observed"] > 0]
    t = et.index.to_numpy(float)
    s = kmf.survival_function_at_times(t).to_numpy(float)
    d, n = et["observed"].to_numpy(float), et["at_risk"].to_numpy(float)
    with np.errstate(divide="ignore"):
        green = np.cumsum(d / (n * (n - d)))
    i_m = int(np.searchsorted(t, median))
    if not np.isfinite(green[i_m]):
        return median, math.nan
    var_s = s[i_m] ** 2 * green[i_m]
    above = np.flatnonzero(s >= 0.55)
    below = np.flatnonzero(s <= 0.45)
    if below.size == 0:
        return median, math.nan
    u, s_u = (t[above[-1]], s[above[-1]]) if above.size else (0.0, 1.0)
    low, s_l = t[below[0]], s[below[0]]
    dens = (s_u - s_l) / (low - u)
    if not dens > 0:
        return median, math.nan
    return median, float(math.sqrt(var_s) / dens)


# ---------------------------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------------------------
def _trunc(
    fam: SurvivalFamily, rng: np.random.Generator, k: float, lam: Any, lower: float, size: Any
):
    """Inverse-CDF draws of the family's law (k, lam) conditioned on T >= lower."""
    return fam.truncated_quantile(rng.uniform(size=size), k, lam, lower)


def _salvage_scale(truth: dict[str, np.ndarray], j: int, x: Any, gbq: float, rr: bool):
    return np.exp(
        truth["alpha2"]
        + truth["sigma2"] * truth["z2"][j]
        + truth["beta_x"] * np.log(np.asarray(x) / _X_REF)
        + truth["beta_gbq"] * (gbq - _GBQ_REF) / _GBQ_UNIT
        + (truth["gamma_rr"] if rr else 0.0)
    )


def _censor(
    rng: np.random.Generator, t: np.ndarray, spread: tuple[float, float], lower: float = 0.0
):
    """Follow-up ``lower + (median - lower) * U(spread)``: past ``lower`` for a truncated row."""
    follow = lower + (np.median(t) - lower) * rng.uniform(*spread, size=t.shape)
    return np.minimum(t, follow), (t <= follow).astype(int)


@dataclass
class SimulatedStudy:
    """A simulated Rotterdam-style study.

    Attributes
    ----------
    summaries : pandas.DataFrame
        Table 5 PFS layout (``survival_summaries("pfs")`` columns used by the model) with the
        simulated medians, SEs and Wald CIs; the "all tumours" rows are summarised too.
    spearman : float
        Spearman correlation of first-line with R-PRRT PFS over all R-PRRT patients, on the
        observed (partly censored) R-PRRT times, as published.
    patients : pandas.DataFrame
        The individual patients behind the summaries (one row per patient and line).
    spearman_uncensored : float
        The same coefficient on the uncensored R-PRRT times: not observable in a real study;
        for checking the attenuation by censoring (``benchmarks/survival_spearman_check.py``).
    """

    summaries: pd.DataFrame
    spearman: float
    patients: pd.DataFrame
    spearman_uncensored: float


def simulate_survival_study(
    truth: dict[str, np.ndarray],
    rng: np.random.Generator,
    *,
    thresholds: tuple[float, float] | None = None,
    gbq: tuple[float, float] | None = None,
    follow_up: tuple[float, float] = (0.5, 4.0),
    family: str = DEFAULT_FAMILY,
) -> SimulatedStudy:
    """Simulate patients with the published PFS design and summarise them like Table 5.

    Parameters
    ----------
    truth : dict
        Parameters as from :func:`draw_survival_truth`.
    rng : numpy.random.Generator
    thresholds : (float, float), optional
        Selection for R-PRRT (first-line PFS, months) and RR-PRRT (R-PRRT PFS); default the
        published rule (:func:`~netbayes.models.survival.calibration_constants`).
    gbq : (float, float), optional
        Cumulative activity after R-PRRT and after RR-PRRT; default the published medians.
    follow_up : (float, float)
        Follow-up as a uniform multiple of each row's sample median (censoring).
    family : str
        The survival family of the truth (:data:`netbayes.families.FAMILIES`).

    Returns
    -------
    SimulatedStudy
    """
    fam = get_family(family)
    design = survival_calibration("pfs").summaries["pfs"]
    c = calibration_constants()
    thr_r, thr_rr = thresholds or (c["threshold_r"], c["threshold_rr"])
    gbq = gbq or (c["gbq_r"], c["gbq_rr"])
    lam1 = np.exp(truth["alpha1"] + truth["sigma1"] * truth["z1"])
    k1, k2 = float(truth["k1"]), float(truth["k2"])
    rows: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pts = []

    def add(key: str, t: np.ndarray, e: np.ndarray, j: int, line: str, x=None, d=None) -> None:
        rows[key] = (t, e)
        pts.append(
            pd.DataFrame(
                {
                    "time_months": t,
                    "event": e,
                    "line": line,
                    "tumour_type": vocab.TUMOUR_TYPES[j],
                    "prior_pfs_months": np.nan if x is None else x,
                    "cumulative_gbq": np.nan if d is None else d,
                    "group": "control" if key.startswith("control") else "retreatment",
                }
            )
        )

    n_of = {
        (g, ln, t): int(n)
        for g, ln, t, n in design[["group", "line", "tumour_type", "n"]].itertuples(index=False)
    }
    x1_all, t2_all, t2_latent = [], [], []
    for j, ty in enumerate(vocab.TUMOUR_TYPES):
        n_r = n_of.get(("retreatment", "R-PRRT", ty), 0)
        if n_r:
            x1 = _trunc(fam, rng, k1, lam1[j], thr_r, n_r)
            t2 = _salvage_scale(truth, j, x1, gbq[0], False) * fam.unit_sample(rng, k2, n_r)
            obs2, ev2 = _censor(rng, t2, follow_up)
            add(f"retreatment|I-PRRT|{ty}", x1, np.ones(n_r, int), j, "I-PRRT")
            add(f"retreatment|R-PRRT|{ty}", obs2, ev2, j, "R-PRRT", x1, gbq[0])
            x1_all.append(x1)
            t2_all.append(obs2)
            t2_latent.append(t2)
            n_rr = n_of.get(("retreatment", "RR-PRRT", ty), 0)
            if n_rr:
                ok = np.flatnonzero((ev2 == 1) & (obs2 >= thr_rr))
                pick = rng.permutation(ok)[:n_rr]
                x2 = list(obs2[pick])
                while len(x2) < n_rr:  # top up from the same selected chain
                    xa = _trunc(fam, rng, k1, lam1[j], thr_r, 1)
                    lam = _salvage_scale(truth, j, xa, gbq[0], False)
                    x2.append(float(_trunc(fam, rng, k2, lam, thr_rr, 1)[0]))
                x2 = np.asarray(x2)
                t3 = _salvage_scale(truth, j, x2, gbq[1], True) * fam.unit_sample(rng, k2, n_rr)
                obs3, ev3 = _censor(rng, t3, follow_up)
                add(f"retreatment|RR-PRRT|{ty}", obs3, ev3, j, "RR-PRRT", x2, gbq[1])
        n_c = n_of.get(("control", "I-PRRT", ty), 0)
        if n_c:
            lam_c = lam1[j] * math.exp(float(truth["delta_control"]))
            xc = _trunc(fam, rng, k1, lam_c, thr_r, n_c)
            obs, ev = _censor(rng, xc, follow_up, lower=thr_r)
            add(f"control|I-PRRT|{ty}", obs, ev, j, "I-PRRT")
    out = design.copy()
    med, se = [], []
    for g, ln, ty, se_pub in out[["group", "line", "tumour_type", "se_months"]].itertuples(
        index=False
    ):
        if ty == "all":
            parts = [v for k, v in rows.items() if k.startswith(f"{g}|{ln}|")]
            t = np.concatenate([p[0] for p in parts])
            e = np.concatenate([p[1] for p in parts])
        else:
            t, e = rows[f"{g}|{ln}|{ty}"]
        m, s = km_summary(t, e)
        med.append(m)
        se.append(s if np.isfinite(se_pub) else math.nan)
    out["median_months"] = med
    out["se_months"] = se
    out["ci95_lower_months"] = np.maximum(out["median_months"] - Z95 * out["se_months"], 0.0)
    out["ci95_upper_months"] = out["median_months"] + Z95 * out["se_months"]
    out["se_source"] = np.where(out["se_months"].isna(), "missing", "symmetric")
    x1_cat = np.concatenate(x1_all)
    rs = float(stats.spearmanr(x1_cat, np.concatenate(t2_all)).statistic)
    rs_latent = float(stats.spearmanr(x1_cat, np.concatenate(t2_latent)).statistic)
    return SimulatedStudy(out, rs, pd.concat(pts, ignore_index=True), rs_latent)


def simulate_survival_patients(
    truth: dict[str, np.ndarray],
    n: int,
    rng: np.random.Generator,
    *,
    gbq_range: tuple[float, float] = (40.0, 60.0),
    threshold: float | None = None,
    follow_up: tuple[float, float] = (0.5, 4.0),
    family: str = DEFAULT_FAMILY,
) -> pd.DataFrame:
    """Individual R-PRRT patients (a user's own cohort) from the same truth.

    Tumour types follow the Rotterdam R-PRRT mix; prior PFS from the first-line distribution
    truncated at ``threshold`` (default the published selection rule); cumulative activity
    uniform on ``gbq_range``; censored as in :func:`simulate_survival_study`. Columns are those of
    :data:`netbayes.models.survival.PATIENT_COLUMNS`.
    """
    fam = get_family(family)
    design = survival_calibration("pfs").summaries["pfs"]
    r = design[(design["line"] == "R-PRRT") & (design["tumour_type"] != "all")]
    w = r["n"].to_numpy(float) / r["n"].sum()
    types = rng.choice([vocab.TUMOUR_TYPES.index(t) for t in r["tumour_type"]], size=n, p=w)
    lam1 = np.exp(truth["alpha1"] + truth["sigma1"] * truth["z1"])
    if threshold is None:
        threshold = calibration_constants()["threshold_r"]
    x = _trunc(fam, rng, float(truth["k1"]), lam1[types], threshold, n)
    d = rng.uniform(*gbq_range, size=n)
    lam2 = np.exp(
        truth["alpha2"]
        + truth["sigma2"] * truth["z2"][types]
        + truth["beta_x"] * np.log(x / _X_REF)
        + truth["beta_gbq"] * (d - _GBQ_REF) / _GBQ_UNIT
    )
    t = lam2 * fam.unit_sample(rng, float(truth["k2"]), n)
    obs, ev = _censor(rng, t, follow_up)
    return pd.DataFrame(
        {
            "time_months": obs,
            "event": ev,
            "line": "R-PRRT",
            "tumour_type": [vocab.TUMOUR_TYPES[i] for i in types],
            "prior_pfs_months": x,
            "cumulative_gbq": d,
        }
    )
