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

Several studies (the study level, issue 15): :func:`draw_study_truth` adds tau and the study
effects u_s = tau z_s to a shared truth; each :class:`StudyDesign` (size, tumour mix,
selection threshold on first-line PFS, cumulative activity, administrative censoring, rows
reported) gives one study's R-PRRT patients from the model's own law with its u_s on the
first-line and salvage log scales (:func:`simulate_study_patients`), summarised as its paper
would in the rows of ``docs/published_cohorts.md`` (:func:`simulate_studies`);
:func:`random_designs` draws heterogeneous designs (``benchmarks/study_coverage.py``). The
toxicity study level likewise: :func:`draw_toxicity_study_truth` (tau_tox and the latent study
effects), :class:`ToxicityStudyDesign`, :func:`simulate_toxicity_studies` (one grade >= III
"any" row per study) and :func:`random_toxicity_designs`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from netbayes import vocab
from netbayes.calibration import survival_calibration
from netbayes.cohorts import Z95, largest_remainder
from netbayes.families import DEFAULT_FAMILY, SurvivalFamily, get_family
from netbayes.models.survival import calibration_constants
from netbayes.spec import GBQ_REF as _GBQ_REF
from netbayes.spec import GBQ_UNIT as _GBQ_UNIT
from netbayes.spec import X_REF as _X_REF

__all__ = [
    "PAPER_FOLLOWUP_RATIO",
    "SURVIVAL_ROW_COLUMNS",
    "TOXICITY_ROW_COLUMNS",
    "SimulatedStudy",
    "StudyDesign",
    "ToxicityStudyDesign",
    "draw_os_truth",
    "draw_study_truth",
    "draw_survival_truth",
    "draw_toxicity_study_truth",
    "km_summary",
    "one_study_truth",
    "random_designs",
    "random_toxicity_designs",
    "rotterdam_mix",
    "simulate_os_study",
    "simulate_studies",
    "simulate_study_patients",
    "simulate_survival_patients",
    "simulate_survival_study",
    "simulate_toxicity_grades",
    "simulate_toxicity_studies",
    "study_rows",
    "survival_targets",
    "type_counts",
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
LIFELINES_MIN = (0, 30)
"""The oldest lifelines whose Kaplan-Meier code the simulators are checked with."""


def _lifelines_km() -> Any:
    """lifelines' ``KaplanMeierFitter``, refusing an older lifelines than
    :data:`LIFELINES_MIN`. lifelines pins ``pandas<3``, so pip next to netbayes (pandas >= 3)
    quietly picks an old release; that must be an error, not a silent change of reference."""
    try:
        import lifelines
    except ImportError:
        raise ImportError(
            "the simulation studies use lifelines' Kaplan-Meier estimator; install it with "
            "the pandas-3 override: uv pip install 'lifelines>=0.30' --override "
            "tests/overrides.txt (README, 'Set-up')"
        ) from None
    version = tuple(int(x) for x in re.findall(r"\d+", lifelines.__version__)[:2])
    if version < LIFELINES_MIN:
        raise ImportError(
            f"lifelines {lifelines.__version__} is older than "
            f"{'.'.join(map(str, LIFELINES_MIN))}: pip picked it because newer lifelines pin "
            "pandas<3; install lifelines>=0.30 with the pandas-3 override (uv pip install "
            "'lifelines>=0.30' --override tests/overrides.txt; README, 'Set-up')"
        )
    return lifelines.KaplanMeierFitter


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
    KaplanMeierFitter = _lifelines_km()
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


# ---------------------------------------------------------------------------------------------
# several studies (centres): the study level (issue 15)
# ---------------------------------------------------------------------------------------------
REPORTS = ("types", "all")
"""Which R-PRRT rows a :class:`StudyDesign` reports: ``"types"`` (one KM median per tumour
type present) and/or ``"all"`` (one median over the whole cohort, with its mix)."""


def rotterdam_mix() -> dict[str, int]:
    """Tumour-type counts of the Rotterdam R-PRRT cohort (Table 5, n = 168)."""
    design = survival_calibration("pfs").summaries["pfs"]
    r = design[
        (design["group"] == "retreatment")
        & (design["line"] == "R-PRRT")
        & (design["tumour_type"] != vocab.ALL_TUMOURS)
    ]
    return {str(t): int(n) for t, n in zip(r["tumour_type"], r["n"], strict=True)}


def type_counts(n: int, mix: Any) -> dict[str, int]:
    """Patients per fine tumour type: largest-remainder rounding of ``n`` times the mix.

    The same rule as :meth:`netbayes.predict.Predictor.cohort`, so a simulated study and a
    cohort prediction of the same design have the same type counts. Types with no patient are
    left out; the order is that of :data:`netbayes.vocab.TUMOUR_TYPES`.
    """
    w = {t: float(mix.get(t, 0.0)) for t in vocab.TUMOUR_TYPES}
    bad = sorted(set(mix) - set(vocab.TUMOUR_TYPES))
    if bad or any(not (v >= 0 and math.isfinite(v)) for v in w.values()):
        raise ValueError(
            f"mix={dict(mix)!r} is not allowed; expected counts or proportions >= 0 over the fine "
            f"types {', '.join(vocab.TUMOUR_TYPES)}"
        )
    tot = sum(w.values())
    if not tot > 0:
        raise ValueError(f"mix={dict(mix)!r} is not allowed; expected a positive total")
    return largest_remainder(n, w)


@dataclass(frozen=True)
class StudyDesign:
    """The design of one simulated salvage (R-PRRT) study.

    Attributes
    ----------
    study : str
        Study id (the ``study`` column of its rows).
    n : int
        R-PRRT patients.
    mix : mapping of str to float
        Tumour-type counts or proportions over the six fine types (normalised; patients per
        type by largest-remainder rounding, :func:`type_counts`).
    threshold : float
        Selection for R-PRRT: a patient is retreated only if the first-line PFS was at least
        this (months; 0: no rule).
    cumulative_gbq : float
        Cumulative 177Lu activity after R-PRRT (GBq), the same for every patient.
    followup : (float, float) or None
        Administrative censoring with uniform accrual: each patient's follow-up is uniform
        between the two numbers times the study's sample median R-PRRT PFS (the first is the
        minimum follow-up at the analysis, the second the follow-up of the first patient
        accrued). None: no censoring.
    report : tuple of str
        The rows the study publishes (:data:`REPORTS`): per-type medians and/or an ``all`` row.
    """

    study: str
    n: int
    mix: Any
    threshold: float = 18.0
    cumulative_gbq: float = _GBQ_REF
    followup: tuple[float, float] | None = (0.5, 4.0)
    report: tuple[str, ...] = ("types",)

    def __post_init__(self) -> None:
        if isinstance(self.n, bool) or not isinstance(self.n, (int, np.integer)) or self.n < 1:
            raise ValueError(f"StudyDesign n={self.n!r} is not allowed; expected an integer >= 1")
        if not (math.isfinite(self.threshold) and self.threshold >= 0):
            raise ValueError(f"StudyDesign threshold={self.threshold!r}; expected a number >= 0")
        if not (math.isfinite(self.cumulative_gbq) and self.cumulative_gbq >= 0):
            raise ValueError(
                f"StudyDesign cumulative_gbq={self.cumulative_gbq!r}; expected a number >= 0"
            )
        if self.followup is not None and not (0 < self.followup[0] <= self.followup[1]):
            raise ValueError(
                f"StudyDesign followup={self.followup!r}; expected (lo, hi) with 0 < lo <= hi "
                "or None"
            )
        if not self.report or set(self.report) - set(REPORTS):
            raise ValueError(
                f"StudyDesign report={self.report!r}; expected a non-empty subset of {REPORTS}"
            )
        type_counts(int(self.n), self.mix)  # validates the mix

    @property
    def counts(self) -> dict[str, int]:
        """Patients per tumour type."""
        return type_counts(int(self.n), self.mix)


def draw_study_truth(priors: Any, rng: np.random.Generator, k: int) -> dict[str, np.ndarray]:
    """One draw of the shared parameters and of ``k`` study effects from the model's priors.

    The shared part is :func:`draw_survival_truth` (the same random stream: with the same
    generator state it gives the same values), then ``tau`` from ``priors["tau"]`` and
    ``z_study`` ~ N(0, 1) for the ``k`` studies; ``u_study = tau * z_study`` is each study's
    effect on log time (first-line and salvage scales), as in the model.

    Returns
    -------
    dict of str to ndarray
        The keys of :func:`draw_survival_truth` and ``tau``, ``z_study``, ``u_study`` (shape
        (k,)).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r} is not allowed; expected an integer >= 1 (studies)")
    truth = draw_survival_truth(priors, rng)
    tau = float(np.asarray(priors["tau"].sample(rng)))
    z = rng.normal(size=int(k))
    truth.update(tau=np.asarray(tau), z_study=z, u_study=tau * z)
    return truth


INTERCEPTS = ("alpha1", "alpha2", "alpha1_os")


def one_study_truth(
    truth: dict[str, np.ndarray], priors: Any, rng: np.random.Generator
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Add the study level to a one-study truth: ``tau`` and the study's effect ``u``.

    The model with its study level (the default) fits a single published study as that
    study's intercepts ``alpha + u``, u = tau z, with ``tau`` from ``priors["tau"]`` and
    z ~ N(0, 1). A simulation that generates the study from ``alpha`` alone holds u at 0, the
    centre of its prior, and the population parameters' credible intervals, which carry the
    prior spread of u, then cover more than their level. This draws ``tau`` and z (in that
    order, after the other parameters) and returns

    * the truth with ``tau``, ``z_study`` and ``u_study`` (shape (1,)) added: the targets
      (population parameters) stay those of ``truth``;
    * the study's truth: every intercept on log time (:data:`INTERCEPTS` present in
      ``truth``) shifted by u, to simulate the study's patients from.
    """
    tau = float(np.asarray(priors["tau"].sample(rng)))
    z = rng.normal(size=1)
    full = {**truth, "tau": np.asarray(tau), "z_study": z, "u_study": tau * z}
    study = dict(full)
    for name in INTERCEPTS:
        if name in truth:
            study[name] = np.asarray(truth[name], float) + tau * float(z[0])
    return full, study


def simulate_study_patients(
    truth: dict[str, np.ndarray],
    design: StudyDesign,
    u: float,
    rng: np.random.Generator,
    family: str = DEFAULT_FAMILY,
) -> pd.DataFrame:
    """The R-PRRT patients of one study with study effect ``u`` (the model's generative law).

    Per tumour type j (in :data:`~netbayes.vocab.TUMOUR_TYPES` order): first-line PFS
    :math:`x \\sim` family(k1, exp(alpha1 + sigma1 z1_j + u)) conditioned on
    :math:`x \\ge` ``design.threshold``; R-PRRT PFS :math:`t \\sim` family(k2,
    exp(alpha2 + sigma2 z2_j + u + beta_x log(x/36) + beta_gbq (gbq - 44.7)/10)). Then the
    study's administrative censoring (:attr:`StudyDesign.followup`).

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`netbayes.models.survival.PATIENT_COLUMNS` (``study`` included)
        and ``latent_time_months`` (the R-PRRT PFS before censoring).
    """
    fam = get_family(family)
    k1, k2 = float(truth["k1"]), float(truth["k2"])
    lam1 = np.exp(truth["alpha1"] + truth["sigma1"] * truth["z1"] + u)
    thr = float(design.threshold)
    gbq = float(design.cumulative_gbq)
    types, xs, ts = [], [], []
    for ty, c in design.counts.items():
        j = vocab.TUMOUR_TYPES.index(ty)
        uu = rng.uniform(size=c)
        x = (
            fam.truncated_quantile(uu, k1, lam1[j], thr)
            if thr > 0
            else fam.quantile(uu, k1, lam1[j])
        )
        t = _salvage_scale(truth, j, x, gbq, False) * math.exp(u) * fam.unit_sample(rng, k2, c)
        types += [ty] * c
        xs.append(x)
        ts.append(t)
    x, t = np.concatenate(xs), np.concatenate(ts)
    if design.followup is None:
        obs, ev = t.copy(), np.ones(len(t), int)
    else:
        obs, ev = _censor(rng, t, design.followup)
    return pd.DataFrame(
        {
            "time_months": obs,
            "event": ev,
            "line": "R-PRRT",
            "tumour_type": types,
            "prior_pfs_months": x,
            "cumulative_gbq": gbq,
            "study": design.study,
            "latent_time_months": t,
        }
    )


SURVIVAL_ROW_COLUMNS = (
    "study", "row_id", "endpoint", "group", "line", "tumour_type",
    *(f"mix_{t}" for t in vocab.TUMOUR_TYPES),
    "n", "median_months", "se_months", "ci95_lower_months", "ci95_upper_months", "se_source",
    "selection_min_prior_pfs_months", "cumulative_gbq", "followup_months", "source",
)  # fmt: skip
"""Columns of :func:`simulate_studies` (the survival rows of ``docs/published_cohorts.md``)."""


def study_rows(patients: pd.DataFrame, design: StudyDesign) -> pd.DataFrame:
    """Summarise one study's patients as its paper would (the rows of ``design.report``).

    KM median and its SE (:func:`km_summary`), symmetric Wald 95% CI (lower bound clipped at
    0; ``se_source`` then ``"upper"``, the rule of :func:`netbayes.cohorts.wald_se`, so the SE
    implied by the CI is the SE); a median not reached is NaN. ``followup_months`` is the
    median of the patients' potential follow-up (NaN without censoring).
    """
    counts = design.counts
    follow = math.nan
    if design.followup is not None:
        lo, hi = design.followup
        follow = float(np.median(patients["latent_time_months"])) * (lo + hi) / 2
    groups: list[tuple[str, pd.DataFrame]] = []
    if "types" in design.report:
        groups += [(ty, patients[patients["tumour_type"] == ty]) for ty in counts]
    if "all" in design.report:
        groups.append((vocab.ALL_TUMOURS, patients))
    rows = []
    for ty, p in groups:
        m, se = km_summary(p["time_months"].to_numpy(), p["event"].to_numpy())
        is_all = ty == vocab.ALL_TUMOURS
        rows.append(
            {
                "study": design.study,
                "row_id": f"{design.study}_rprrt_{ty}",
                "endpoint": "pfs",
                "group": "retreatment",
                "line": "R-PRRT",
                "tumour_type": ty,
                **{
                    f"mix_{t}": (float(counts.get(t, 0)) if is_all else math.nan)
                    for t in vocab.TUMOUR_TYPES
                },
                "n": len(p),
                "median_months": m,
                "se_months": se,
                "ci95_lower_months": max(m - Z95 * se, 0.0) if np.isfinite(se) else math.nan,
                "ci95_upper_months": m + Z95 * se if np.isfinite(se) else math.nan,
                "se_source": (
                    "missing" if not np.isfinite(se) else "upper" if m < Z95 * se else "symmetric"
                ),
                "selection_min_prior_pfs_months": float(design.threshold),
                "cumulative_gbq": float(design.cumulative_gbq),
                "followup_months": follow,
                "source": "simulated",
            }
        )
    return pd.DataFrame(rows, columns=list(SURVIVAL_ROW_COLUMNS))


def simulate_studies(
    truth: dict[str, np.ndarray],
    designs: Any,
    rng: np.random.Generator,
    *,
    family: str = DEFAULT_FAMILY,
    return_patients: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate several studies from one truth and summarise each as its paper would.

    Study i (``designs[i]``) has the effect ``truth["u_study"][i]``
    (:func:`draw_study_truth`); its patients come from :func:`simulate_study_patients` and its
    rows from :func:`study_rows`.

    Parameters
    ----------
    truth : dict
        As from :func:`draw_study_truth` (``u_study`` of length ``len(designs)``).
    designs : sequence of StudyDesign
        One per study; study ids must be unique.
    rng : numpy.random.Generator
    family : str
        The survival family of the truth.
    return_patients : bool
        Also return the patients behind the rows.

    Returns
    -------
    pandas.DataFrame
        Survival rows in the layout of ``docs/published_cohorts.md`` (columns
        :data:`SURVIVAL_ROW_COLUMNS`), the studies in order; with ``return_patients``, the
        pair (rows, patients).
    """
    designs = list(designs)
    u = np.atleast_1d(np.asarray(truth["u_study"], float))
    if len(u) != len(designs):
        raise ValueError(
            f"truth has {len(u)} study effects but {len(designs)} designs were given; draw the "
            "truth with draw_study_truth(priors, rng, k=len(designs))"
        )
    ids = [d.study for d in designs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"study ids must be unique, got {ids}")
    rows, pts = [], []
    for d, us in zip(designs, u, strict=True):
        p = simulate_study_patients(truth, d, float(us), rng, family)
        rows.append(study_rows(p, d))
        pts.append(p)
    out = pd.concat(rows, ignore_index=True)
    return (out, pd.concat(pts, ignore_index=True)) if return_patients else out


def random_designs(
    k: int,
    rng: np.random.Generator,
    *,
    sizes: tuple[int, int] = (20, 170),
    thresholds: tuple[float, ...] = (0.0, 12.0, 18.0),
    gbq: tuple[float, float] = (30.0, 55.0),
    followup: tuple[float, float] = (1.5, 3.0),
    prefix: str = "sim",
) -> list[StudyDesign]:
    """``k`` heterogeneous study designs.

    Size uniform on the integers of ``sizes``; selection threshold one of ``thresholds``;
    cumulative activity uniform on ``gbq``; median follow-up uniform on ``followup`` times the
    study's median R-PRRT PFS, with uniform accrual over as long again (each patient's
    follow-up uniform on (0.5, 1.5) times that median follow-up); tumour mix Dirichlet around
    the Rotterdam R-PRRT mix (concentration 1 + 10 x its shares); rows reported either per
    tumour type or as one ``all`` row (half each; never both, whose patients would count twice).
    Study ids ``<prefix>00``, ``<prefix>01``, ...
    """
    ref = rotterdam_mix()
    share = np.array([ref.get(t, 0) for t in vocab.TUMOUR_TYPES], float)
    share /= share.sum()
    out = []
    for i in range(int(k)):
        n = int(rng.integers(sizes[0], sizes[1] + 1))
        thr = float(rng.choice(np.asarray(thresholds, float)))
        g = float(rng.uniform(*gbq))
        mf = float(rng.uniform(*followup))
        mix = rng.dirichlet(1.0 + 10.0 * share)
        report = ("types",) if rng.uniform() < 0.5 else ("all",)
        out.append(
            StudyDesign(
                study=f"{prefix}{i:02d}",
                n=n,
                mix={t: float(w) for t, w in zip(vocab.TUMOUR_TYPES, mix, strict=True)},
                threshold=thr,
                cumulative_gbq=g,
                followup=(0.5 * mf, 1.5 * mf),
                report=report,
            )
        )
    return out


# -- the toxicity study level ------------------------------------------------------------------
TOXICITY_ROW_COLUMNS = (
    "study", "row_id", "line", "cell_line", "grade", "count", "n", "planned_gbq", "prior_gbq",
    "source",
)  # fmt: skip
"""Columns of the toxicity rows :func:`simulate_toxicity_studies` writes (the grade-count layout
of ``docs/published_cohorts.md``)."""


@dataclass(frozen=True)
class ToxicityStudyDesign:
    """One simulated study of grade >= III haematotoxicity, reported as its paper would: the
    number of its ``n`` patients with a grade III or IV cytopenia on any cell line after the
    line (one ``any``/``3+`` row, the form most salvage-PRRT series print).

    Attributes
    ----------
    study : str
        Study id.
    n : int
        Patients (>= 1).
    planned_gbq : float
        Activity given in the line (GBq; 188Re-HEDP GBq on the ``188Re-HEDP`` line).
    prior_gbq : float
        Cumulative 177Lu activity before the line (GBq).
    line : str
        Treatment line (:data:`netbayes.vocab.LINES`; default R-PRRT).
    """

    study: str
    n: int
    planned_gbq: float
    prior_gbq: float
    line: str = "R-PRRT"

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"n={self.n!r}; expected an integer >= 1")
        if self.line not in vocab.LINES:
            raise ValueError(f"line={self.line!r}; allowed: {', '.join(vocab.LINES)}")
        if not (self.planned_gbq >= 0 and self.prior_gbq >= 0):
            raise ValueError("planned_gbq and prior_gbq must be >= 0 GBq")


def draw_toxicity_study_truth(priors: Any, rng: np.random.Generator, k: int) -> dict[str, Any]:
    """A toxicity truth from the priors with ``k`` study effects.

    Every parameter of :data:`netbayes.formulas.toxicity.PARAMS` from ``priors`` (a
    :class:`~netbayes.models.toxicity.ToxicityPriors`, conditional (latent) scale, as
    :func:`netbayes.models.toxicity.draw_prior_params` draws them), ``tau_tox`` (marginal probit
    scale) and the study effects on the latent scale,
    ``v_study = sqrt(1 + sigma_u^2) * tau_tox * z``, z ~ N(0, 1) (the model's
    parameterisation).
    """
    from netbayes.formulas import toxicity as ftox

    out: dict[str, Any] = {
        "c3": priors["c3"].sample(rng, 3),
        "log_gap": priors["log_gap"].sample(rng, 9).reshape(3, 3),
    }
    for name in ftox.PARAMS:
        if name not in out:
            out[name] = float(priors[name].sample(rng, 1)[0])
    out["tau_tox"] = float(priors["tau_tox"].sample(rng, 1)[0])
    out["z_study_tox"] = rng.standard_normal(int(k))
    out["v_study"] = math.sqrt(1.0 + out["sigma_u"] ** 2) * out["tau_tox"] * out["z_study_tox"]
    return out


def simulate_toxicity_grades(
    truth: dict[str, Any], design: ToxicityStudyDesign, v: float, rng: np.random.Generator
) -> np.ndarray:
    """Worst grade per patient and cell line, shape (n, 3), of one study with latent effect ``v``.

    The model's law: ``y = eta + v + u_i + N(0, 1)`` per cell line, with the patient's
    propensity ``u_i ~ N(0, sigma_u^2)`` shared by the three lines and ``eta`` the line's
    linear predictor (:func:`netbayes.formulas.toxicity.linear_predictor`; 188Re-HEDP activity
    times ``theta``; the line's effect of :data:`netbayes.formulas.toxicity.LINE_EFFECT`).
    """
    from netbayes import spec
    from netbayes.formulas import toxicity as ftox

    ls = spec.line_spec(design.line)
    act = design.planned_gbq if ls.adds_lu177 else truth["theta"] * design.planned_gbq
    key = ftox.LINE_EFFECT[design.line]
    eta = ftox.linear_predictor(
        act, design.prior_gbq, truth["beta_activity"], truth["beta_prior"],
        0.0 if key is None else truth[key],
    )  # fmt: skip
    cut = ftox.cutpoints(np.asarray(truth["c3"]), np.asarray(truth["log_gap"]))
    u = rng.normal(0.0, truth["sigma_u"], design.n)
    return ftox.simulate_grades(np.full((design.n, 3), float(eta) + v), cut, u[:, None], rng)


def simulate_toxicity_studies(
    truth: dict[str, Any], designs: Any, rng: np.random.Generator
) -> pd.DataFrame:
    """Simulate several toxicity studies from one truth; one grade >= III ``any`` row each.

    Study i has the latent effect ``truth["v_study"][i]`` (:func:`draw_toxicity_study_truth`).
    Returns rows in the layout of ``docs/published_cohorts.md`` (columns
    :data:`TOXICITY_ROW_COLUMNS`), ready for ``ToxicityModel(studies=rows)``.
    """
    designs = list(designs)
    v = np.atleast_1d(np.asarray(truth["v_study"], float))
    if len(v) != len(designs):
        raise ValueError(
            f"truth has {len(v)} study effects but {len(designs)} designs were given; draw the "
            "truth with draw_toxicity_study_truth(priors, rng, k=len(designs))"
        )
    ids = [d.study for d in designs]
    if len(set(ids)) != len(ids):
        raise ValueError(f"study ids must be unique, got {ids}")
    rows = []
    for d, vs in zip(designs, v, strict=True):
        g = simulate_toxicity_grades(truth, d, float(vs), rng)
        rows.append({
            "study": d.study, "row_id": f"{d.study}_any3", "line": d.line, "cell_line": "any",
            "grade": "3+", "count": int((g.max(axis=1) >= 3).sum()), "n": d.n,
            "planned_gbq": float(d.planned_gbq), "prior_gbq": float(d.prior_gbq),
            "source": "simulated",
        })  # fmt: skip
    return pd.DataFrame(rows, columns=list(TOXICITY_ROW_COLUMNS))


def random_toxicity_designs(
    k: int,
    rng: np.random.Generator,
    *,
    sizes: tuple[int, int] = (20, 150),
    planned_gbq: tuple[float, float] = (7.4, 22.2),
    prior_gbq: tuple[float, float] = (22.2, 37.0),
    prefix: str = "tox",
) -> list[ToxicityStudyDesign]:
    """``k`` heterogeneous R-PRRT toxicity designs: size uniform on the integers of ``sizes``,
    activity in the line uniform on ``planned_gbq`` (one to three 7.4-GBq cycles), prior
    activity uniform on ``prior_gbq`` (three to five cycles). Study ids ``<prefix>00``, ..."""
    out = []
    for i in range(int(k)):
        n = int(rng.integers(sizes[0], sizes[1] + 1))
        out.append(
            ToxicityStudyDesign(
                study=f"{prefix}{i:02d}",
                n=n,
                planned_gbq=float(rng.uniform(*planned_gbq)),
                prior_gbq=float(rng.uniform(*prior_gbq)),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# OS at the published follow-up (issue 16: censoring before the median)
# ---------------------------------------------------------------------------------------------
PAPER_FOLLOWUP_RATIO: dict[tuple[str, str, str], float] = {
    ("os", "retreatment", "I-PRRT"): 88.6 / 80.8,
    ("os", "retreatment", "R-PRRT"): 30.4 / 26.2,
    ("os", "retreatment", "RR-PRRT"): 34.5 / 39.5,
    ("os", "control", "I-PRRT"): 120.2 / 51.4,
    ("pfs", "control", "I-PRRT"): 120.2 / 35.5,
}
"""Median follow-up over the KM median of the Rotterdam "all tumours" rows (Table 5), by
``(endpoint, group, line)``: the censoring design of :func:`simulate_os_study`. The first-line
PFS of the retreated patients is complete (they progressed before retreatment)."""


def draw_os_truth(priors: Any, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One draw of the OS model's parameters from its priors: :func:`draw_survival_truth` plus
    the first-line OS block (``alpha1_os, k1_os, sigma1_os, z1_os``); the salvage block
    (``alpha2, k2, ...``) then describes OS after the salvage line."""
    t = draw_survival_truth(priors, rng)
    t["alpha1_os"] = np.asarray(priors["alpha1_os"].sample(rng), float)
    t["k1_os"] = np.asarray(priors["k1_os"].sample(rng), float)
    t["sigma1_os"] = np.asarray(priors["sigma1_os"].sample(rng), float)
    t["z1_os"] = rng.normal(size=N_TYPES)
    return t


def _followup_censor(
    rng: np.random.Generator, t: np.ndarray, ratio: float, accrual: str
) -> tuple[np.ndarray, np.ndarray, float]:
    """Censor at a potential follow-up with median F = ratio x the sample median of ``t``:
    uniform on (F/2, 3F/2) or exponential (``docs/censoring.md``). Returns (obs, event, F)."""
    f = ratio * float(np.median(t))
    if accrual == "uniform":
        c = rng.uniform(0.5 * f, 1.5 * f, size=t.shape)
    elif accrual == "exponential":
        c = rng.exponential(f / math.log(2.0), size=t.shape)
    else:
        raise ValueError(f"accrual={accrual!r} is not allowed; expected 'uniform' or 'exponential'")
    return np.minimum(t, c), (t <= c).astype(int), f


def simulate_os_study(
    truth: dict[str, np.ndarray],
    rng: np.random.Generator,
    *,
    accrual: str = "uniform",
    ratios: dict[tuple[str, str, str], float] | None = None,
    family: str = DEFAULT_FAMILY,
) -> dict[str, pd.DataFrame]:
    """Simulate the published OS design at the paper's follow-up and summarise it like Table 5.

    The model's OS law (``SurvivalModel("os")``): first-line OS of type j from the first-line
    OS block truncated at the 18-month selection (control rows with the control offset);
    OS after R-PRRT from the salvage block given the first-line PFS (truncated at 18);
    after RR-PRRT given a prior time from the salvage law truncated at 14 months, as the model
    nests it. The first-line PFS rows (complete for the retreated, censored for the control
    group) are simulated too: the OS model calibrates the prior-PFS law on them. Every censored
    row's patients get a potential follow-up with median F = the paper's follow-up/median ratio
    (:data:`PAPER_FOLLOWUP_RATIO`) times the row's sample median, uniform on (F/2, 3F/2) or
    exponential (``accrual``); the row's ``followup_months`` is F (NaN: complete).

    Parameters
    ----------
    truth : dict
        Parameters as from :func:`draw_os_truth`.
    rng : numpy.random.Generator
    accrual : {"uniform", "exponential"}
        The simulated follow-up law.
    ratios : dict, optional
        Follow-up/median ratios by ``(endpoint, group, line)`` (default the paper's).
    family : str
        The survival family of the truth.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{"pfs": ..., "os": ...}`` in the layout of the packaged summaries plus
        ``followup_months``; SEs dropped where the paper printed "N/A", a median not reached
        is NaN.
    """
    fam = get_family(family)
    ratios = PAPER_FOLLOWUP_RATIO if ratios is None else ratios
    cal = survival_calibration("os")
    c = calibration_constants()
    thr_r, thr_rr = c["threshold_r"], c["threshold_rr"]
    lam1 = np.exp(truth["alpha1"] + truth["sigma1"] * truth["z1"])
    lam1_os = np.exp(truth["alpha1_os"] + truth["sigma1_os"] * truth["z1_os"])
    k1, k1_os, k2 = float(truth["k1"]), float(truth["k1_os"]), float(truth["k2"])
    out = {}
    for ep in ("pfs", "os"):
        design = cal.summaries[ep].copy()
        rows: dict[tuple[str, str, str], tuple[np.ndarray, np.ndarray, float]] = {}
        for g, ln, ty, n in design[["group", "line", "tumour_type", "n"]].itertuples(index=False):
            if ty == vocab.ALL_TUMOURS:
                continue
            j, n = vocab.TUMOUR_TYPES.index(ty), int(n)
            ctrl = math.exp(float(truth["delta_control"])) if g == "control" else 1.0
            if ln == "I-PRRT":
                k, lam = (k1, lam1[j]) if ep == "pfs" else (k1_os, lam1_os[j])
                t = _trunc(fam, rng, k, lam * ctrl, thr_r, n)
            elif ep == "pfs":
                continue  # salvage PFS rows are not in the OS model
            else:
                x1 = _trunc(fam, rng, k1, lam1[j], thr_r, n)
                if ln == "RR-PRRT":
                    lam_r = _salvage_scale(truth, j, x1, c["gbq_r"], False)
                    x = fam.truncated_quantile(rng.uniform(size=n), k2, lam_r, thr_rr)
                    lam = _salvage_scale(truth, j, x, c["gbq_rr"], True)
                else:
                    lam = _salvage_scale(truth, j, x1, c["gbq_r"], False)
                t = lam * fam.unit_sample(rng, k2, n)
            ratio = ratios.get((ep, str(g), str(ln)))
            if ratio is None:
                rows[(str(g), str(ln), str(ty))] = (t, np.ones(n, int), math.nan)
            else:
                rows[(str(g), str(ln), str(ty))] = _followup_censor(rng, t, ratio, accrual)
        med, se, fu = [], [], []
        for g, ln, ty, se_pub in design[["group", "line", "tumour_type", "se_months"]].itertuples(
            index=False
        ):
            if ty == vocab.ALL_TUMOURS:
                parts = [v for key, v in rows.items() if key[:2] == (g, ln)]
                if not parts:
                    for col in (med, se, fu):
                        col.append(math.nan)
                    continue
                t = np.concatenate([p[0] for p in parts])
                e = np.concatenate([p[1] for p in parts])
                f = (
                    float(np.nanmedian([p[2] for p in parts]))
                    if any(np.isfinite(p[2]) for p in parts)
                    else math.nan
                )
            elif (g, ln, ty) in rows:
                t, e, f = rows[(g, ln, ty)]
            else:  # salvage PFS rows: not in the OS model
                for col in (med, se, fu):
                    col.append(math.nan)
                continue
            m, s = km_summary(t, e)
            med.append(m)
            se.append(s if np.isfinite(se_pub) else math.nan)
            fu.append(f)
        design["median_months"] = med
        design["se_months"] = se
        design["ci95_lower_months"] = np.maximum(
            design["median_months"] - Z95 * design["se_months"], 0.0
        )
        design["ci95_upper_months"] = design["median_months"] + Z95 * design["se_months"]
        design["se_source"] = np.where(design["se_months"].isna(), "missing", "symmetric")
        design["followup_months"] = fu
        out[ep] = design
    return out
