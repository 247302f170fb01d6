"""External priors of the between-study SDs: τ (survival) and τ_tox (toxicity), issue 15.

With one or two studies the SD of a study (centre) effect cannot be learned, so its prior comes
from the published heterogeneity of salvage PRRT: two random-effects meta-analyses
(``data/meta_analyses.csv``; Strosberg et al. 2021 and Kim et al.). These figures are **not
calibration data**: no likelihood reads them; this module turns them into log-normal priors.

Scales
------
* Survival: the study effect ``u_s ~ N(0, τ²)`` shifts log time (AFT), so it shifts the log
  median; τ is derived on the log-median scale.
* Toxicity: τ_tox is derived on the **marginal** probit scale of a study's grade >= III
  proportion. The model's effect sits on the latent propensity, which integrates a
  ``N(0, σ_u²)`` patient effect: marginal probit = latent / sqrt(1 + σ_u²), so
  ``τ_latent = τ_marginal · sqrt(1 + σ_u²)`` (:func:`latent_tau`).

Derivation (one meta-analysis: k studies, N patients, pooled estimate with a 95% CI)
-----------------------------------------------------------------------------------
With roughly equal within-study variances s², I² = τ²/(τ² + s²) and
Var(pooled) = (τ² + s²)/k. The SE of the pooled value on the working scale comes from the CI
(a natural-scale Wald CI: SE/estimate for log medians, SE/φ(z) for probits; an arcsine-scale CI
is mapped by the delta method). Then

* I² printed: τ² = I²·k·SE² (and s² = (1 - I²)·k·SE²);
* I² not printed: τ² = k·SE² - s², with s² the typical within-study variance at the typical
  study size n = N/k: Var(log KM median) ≈ J/(n κ² ln²2) for a Weibull of shape κ
  (J >= 1 is the Greenwood inflation by censoring before the median, 1 without censoring), and
  p(1 - p)/(n φ(z)²) for a binomial proportion on the probit scale.

Uncertainty (:func:`tau_draws`): under the equal-variance random-effects model the pooled total
variance k·SE² estimates τ² + s² with k - 1 degrees of freedom (Q ~ (1 + τ²/s²) χ²_{k-1}), so
τ² = s²·max(Q/X - 1, 0) with X ~ χ²_{k-1}, where Q = (k - 1)/(1 - I²) or (k - 1)·k·SE²/s². The
Monte Carlo also draws the nuisance parts: the Weibull shape and the follow-up window (J), the
spread of study sizes (Higgins' typical variance grows by (k - 1)/(k - 1 - CV²)), the pooled
proportion within its CI. The two meta-analyses review largely the same retreatment series, so
they are combined as an equal-weight **mixture** of their draws (not pooled as independent
evidence), and a log-normal (median, SD of log τ) is fitted to the mixture's median and 90th
percentile (the upper tail matters most for a new centre). Every Monte Carlo has a fixed seed.

The full argument, the numbers and the simulation check are in ``docs/tau_priors.md`` and
``benchmarks/tau_prior_check.py``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from netbayes.data import load_table

__all__ = [
    "SURVIVAL_ASSUMPTIONS",
    "TOXICITY_ASSUMPTIONS",
    "MetaAnalysis",
    "SurvivalAssumptions",
    "TauPrior",
    "ToxicityAssumptions",
    "binomial_probit_variance",
    "derivation_table",
    "fit_lognormal",
    "greenwood_inflation",
    "km_log_median_variance",
    "latent_tau",
    "meta_analyses",
    "pooled_se",
    "simulate_survival_meta_analyses",
    "tau_draws",
    "tau_point",
    "tau_prior",
    "tau_prior_survival",
    "tau_prior_toxicity",
]

Z95 = float(stats.norm.ppf(0.975))
LN2 = math.log(2.0)
N_DRAWS = 20_000
"""Monte Carlo draws per meta-analysis (the prior's median moves by < 0.5% between seeds)."""
SEED = 20260515

Outcome = Literal["pfs_median", "grade34_toxicity"]
CIScale = Literal["natural", "arcsine"]


@dataclass(frozen=True)
class MetaAnalysis:
    """One pooled figure of a random-effects meta-analysis, on the natural scale.

    Parameters
    ----------
    row_id : str
        Key in ``data/meta_analyses.csv`` (or a label for a simulated one).
    outcome : {"pfs_median", "grade34_toxicity"}
    k : int
        Studies pooled (assumed where not printed: see ``k_assumed``).
    n_patients : int
        Patients pooled.
    estimate, ci_low, ci_high : float
        Pooled value and 95% CI: months, or a proportion in (0, 1).
    i2 : float or None
        I² as a fraction, if printed.
    ci_scale : {"natural", "arcsine"}
        The scale on which the CI is symmetric (data/AUDIT.md M01-M03).
    k_assumed : bool
        True when k and N were not printed for this figure.
    """

    row_id: str
    outcome: Outcome
    k: int
    n_patients: int
    estimate: float
    ci_low: float
    ci_high: float
    i2: float | None = None
    ci_scale: CIScale = "natural"
    k_assumed: bool = False

    @property
    def n_typical(self) -> float:
        """Typical study size N/k (exact for the fixed-effect information Σ n_i / c)."""
        return self.n_patients / self.k


@dataclass(frozen=True)
class SurvivalAssumptions:
    """Nuisance assumptions of the survival within-study variance (medians in months).

    ``shape_median``/``shape_sd_log``: log-normal on the Weibull shape κ of a study's pooled
    PFS curve (below the model's per-type prior median 1.5: mixing tumour types and covariates
    within a study flattens the marginal curve). Follow-up (data cut-off after the start of
    retreatment) is uniform on [a, b] with a ~ U(``fu_min``) and b ~ U(``fu_max``) months.
    ``size_cv``: range of the coefficient of variation of study sizes.
    """

    shape_median: float = 1.3
    shape_sd_log: float = 0.2
    fu_min: tuple[float, float] = (0.0, 12.0)
    fu_max: tuple[float, float] = (36.0, 96.0)
    size_cv: tuple[float, float] = (0.3, 0.9)


@dataclass(frozen=True)
class ToxicityAssumptions:
    """Nuisance assumptions of the toxicity within-study variance.

    ``size_cv``: range of the coefficient of variation of study sizes. ``kim_k``: the number of
    studies assumed for Kim's haematological toxicity (not printed; the meta-analysis's 9),
    with all its 426 patients.
    """

    size_cv: tuple[float, float] = (0.3, 0.9)
    kim_k: int = 9


SURVIVAL_ASSUMPTIONS = SurvivalAssumptions()
TOXICITY_ASSUMPTIONS = ToxicityAssumptions()


@dataclass(frozen=True)
class TauPrior:
    """A log-normal prior on a between-study SD.

    Attributes
    ----------
    name : str
        ``"tau_survival"`` (log-time scale) or ``"tau_toxicity_marginal"`` (marginal probit).
    median, sd_log : float
        The prior, rounded to two significant figures: log τ ~ N(log median, sd_log²).
    median_exact, sd_log_exact : float
        The same before rounding.
    details : pandas.DataFrame
        One row per meta-analysis and one for the mixture: the intermediate numbers.
    """

    name: str
    median: float
    sd_log: float
    median_exact: float
    sd_log_exact: float
    details: pd.DataFrame = field(repr=False, compare=False)

    def quantile(self, q: float | np.ndarray) -> np.ndarray:
        """Quantiles of the (rounded) log-normal prior."""
        return self.median * np.exp(self.sd_log * stats.norm.ppf(q))


# ----------------------------------------------------------------------------------------------
# Data
# ----------------------------------------------------------------------------------------------


def meta_analyses(toxicity: ToxicityAssumptions = TOXICITY_ASSUMPTIONS) -> list[MetaAnalysis]:
    """The four published figures as :class:`MetaAnalysis` objects (proportions as fractions).

    Kim's haematological toxicity prints neither k nor N: ``toxicity.kim_k`` studies (default
    9) and the meta-analysis's 426 patients are assumed (``k_assumed``). Its CI is symmetric on
    the arcsine-square-root scale, the others on the natural scale (data/AUDIT.md M01-M03).
    """
    t = load_table("meta_analyses").set_index("row_id")
    out = []
    for row_id, r in t.iterrows():
        scale = 100.0 if r["unit"] == "percent" else 1.0
        k, n, assumed = r["k_studies"], r["n_patients"], False
        if pd.isna(k) or pd.isna(n):
            same = t[(t["meta_analysis"] == r["meta_analysis"]) & t["n_patients"].notna()]
            k, n, assumed = toxicity.kim_k, int(same["n_patients"].iloc[0]), True
        symmetric = math.isclose(
            r["estimate"] - r["ci_low"], r["ci_high"] - r["estimate"], abs_tol=0.2 + 1e-9
        )
        out.append(
            MetaAnalysis(
                row_id=str(row_id),
                outcome=str(r["outcome"]),  # type: ignore[arg-type]
                k=int(k),
                n_patients=int(n),
                estimate=float(r["estimate"]) / scale,
                ci_low=float(r["ci_low"]) / scale,
                ci_high=float(r["ci_high"]) / scale,
                i2=None if pd.isna(r["i2_pct"]) else float(r["i2_pct"]) / 100.0,
                ci_scale="natural" if symmetric else "arcsine",
                k_assumed=assumed,
            )
        )
    return out


# ----------------------------------------------------------------------------------------------
# Working-scale SE and within-study variances
# ----------------------------------------------------------------------------------------------


def pooled_se(m: MetaAnalysis, estimate: float | np.ndarray | None = None) -> np.ndarray:
    """SE of the pooled value on the working scale (log median, or probit of a proportion).

    Parameters
    ----------
    m : MetaAnalysis
    estimate : float or array, optional
        Evaluate the delta method at this value instead of ``m.estimate`` (a Monte Carlo
        draw of the pooled proportion).

    Returns
    -------
    numpy.ndarray
        ``SE/median`` for a median (natural-scale Wald CI); ``SE/φ(z)`` for a proportion with a
        natural-scale CI; ``SE_arcsine · 2 sqrt(p(1 - p)) / φ(z)`` for an arcsine-scale CI.
    """
    p = np.asarray(m.estimate if estimate is None else estimate, float)
    if m.ci_scale == "natural":
        se = (m.ci_high - m.ci_low) / (2 * Z95)
    else:
        width = math.asin(math.sqrt(m.ci_high)) - math.asin(math.sqrt(m.ci_low))
        se = width / (2 * Z95) * 2 * np.sqrt(p * (1 - p))
    if m.outcome == "pfs_median":
        return np.asarray(se / p)
    return np.asarray(se / stats.norm.pdf(stats.norm.ppf(p)))


_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(48)


def greenwood_inflation(
    shape: float | np.ndarray,
    median: float,
    fu_min: float | np.ndarray,
    fu_max: float | np.ndarray,
) -> np.ndarray:
    """Greenwood factor J = ∫_0^m h(t) / (S(t) G(t)) dt of a Weibull KM median under censoring.

    Follow-up is uniform on [``fu_min``, ``fu_max``] (G(t) = 1 before ``fu_min``, then linear
    to 0). Substituting v = H(t)/ln 2 = (t/m)^κ gives J = ln 2 ∫_0^1 2^v / G(m v^(1/κ)) dv,
    which is 1 without censoring before the median. Gauss-Legendre, 48 nodes; vectorised.

    Returns
    -------
    numpy.ndarray
        J >= 1, broadcast over the inputs.
    """
    v = (_GL_NODES + 1) / 2
    shape, fu_min, fu_max = (np.asarray(x, float)[..., None] for x in (shape, fu_min, fu_max))
    t = median * v ** (1.0 / shape)
    g = np.clip((fu_max - t) / (fu_max - fu_min), 1e-6, 1.0)
    return LN2 * np.sum(_GL_WEIGHTS / 2 * 2.0**v / g, axis=-1)


def km_log_median_variance(
    n: float | np.ndarray,
    shape: float | np.ndarray,
    inflation: float | np.ndarray = 1.0,
) -> np.ndarray:
    """Asymptotic variance of the log Kaplan-Meier median of ``n`` Weibull(κ) times.

    Var(m̂) = Var(Ŝ(m)) / f(m)² with f(m) = S(m) h(m) = κ ln2 / (2m) and
    Var(Ŝ(m)) = S(m)² J / n = J/(4n), so Var(log m̂) = J / (n κ² ln²2) (2.08/n for an
    exponential without censoring). ``benchmarks/tau_prior_check.py`` checks it by simulation.
    """
    return np.asarray(inflation) / (np.asarray(n) * np.asarray(shape) ** 2 * LN2**2)


def binomial_probit_variance(p: float | np.ndarray, n: float | np.ndarray) -> np.ndarray:
    """Delta-method variance of the probit of a binomial proportion: p(1 - p) / (n φ(z)²)."""
    p = np.asarray(p, float)
    return p * (1 - p) / (np.asarray(n) * stats.norm.pdf(stats.norm.ppf(p)) ** 2)


def _size_spread_factor(k: int, cv: float | np.ndarray) -> np.ndarray:
    """Higgins' typical within-study variance over c/(N/k) for study sizes with this CV:
    (k - 1) / (k - 1 - CV²) (1 for equal sizes)."""
    return (k - 1) / (k - 1 - np.asarray(cv) ** 2)


def _within_variance_central(
    m: MetaAnalysis, surv: SurvivalAssumptions, tox: ToxicityAssumptions
) -> float:
    """s² at the central assumptions (equal study sizes, median shape and follow-up)."""
    if m.outcome == "grade34_toxicity":
        return float(binomial_probit_variance(m.estimate, m.n_typical))
    j = greenwood_inflation(
        surv.shape_median, m.estimate, np.mean(surv.fu_min), np.mean(surv.fu_max)
    )
    return float(km_log_median_variance(m.n_typical, surv.shape_median, j))


# ----------------------------------------------------------------------------------------------
# τ: point estimate, Monte Carlo, log-normal fit
# ----------------------------------------------------------------------------------------------


def tau_point(
    m: MetaAnalysis,
    survival: SurvivalAssumptions = SURVIVAL_ASSUMPTIONS,
    toxicity: ToxicityAssumptions = TOXICITY_ASSUMPTIONS,
) -> dict[str, float]:
    """The moment estimate of τ from one meta-analysis and its intermediate numbers.

    Returns
    -------
    dict
        ``se`` (working scale), ``k_se2`` (k·SE²), ``s2`` (typical within-study variance),
        ``i2`` (printed, or implied 1 - s²/(k·SE²)), ``q`` (implied Cochran's Q), ``tau2`` and
        ``tau``; ``method`` is ``"I2"`` (τ² = I²·k·SE²) or ``"within"`` (τ² = k·SE² - s²).
    """
    se = float(pooled_se(m))
    kse2 = m.k * se**2
    if m.i2 is not None:
        i2 = m.i2
        s2 = (1 - i2) * kse2
        tau2 = i2 * kse2
        method = "I2"
    else:
        s2 = _within_variance_central(m, survival, toxicity)
        tau2 = max(kse2 - s2, 0.0)
        i2 = tau2 / kse2
        method = "within"
    q = (m.k - 1) / (1 - i2) if i2 < 1 else math.inf
    return {
        "method": method,  # type: ignore[dict-item]
        "se": se,
        "k_se2": kse2,
        "s2": s2,
        "i2": i2,
        "q": q,
        "tau2": tau2,
        "tau": math.sqrt(tau2),
    }


def tau_draws(
    m: MetaAnalysis,
    n_draws: int = N_DRAWS,
    seed: int = SEED,
    survival: SurvivalAssumptions = SURVIVAL_ASSUMPTIONS,
    toxicity: ToxicityAssumptions = TOXICITY_ASSUMPTIONS,
) -> np.ndarray:
    """Monte Carlo draws of τ from one meta-analysis (its confidence distribution).

    Under the equal-variance random-effects model Q ~ (1 + τ²/s²) χ²_{k-1}, so given the
    implied Q, τ² = s²·max(Q/X - 1, 0) with X ~ χ²_{k-1}. With I² printed, s² = (1 - I²)·k·SE²
    and Q = (k - 1)/(1 - I²) follow from the printed numbers; otherwise s² is drawn from its
    nuisance assumptions (Weibull shape, follow-up and study-size spread for survival; the
    pooled proportion within its CI and the size spread for toxicity), and
    τ² = max((k - 1)·k·SE²/X - s², 0): the printed SE is itself an estimate with k - 1 df.

    Returns
    -------
    numpy.ndarray
        ``n_draws`` values of τ >= 0 (exact zeros where the draw leaves no heterogeneity).
    """
    rng = np.random.default_rng(seed)
    x = rng.chisquare(m.k - 1, n_draws)
    if m.i2 is not None:
        kse2 = m.k * float(pooled_se(m)) ** 2
        s2 = (1 - m.i2) * kse2
        q = (m.k - 1) / (1 - m.i2)
        return np.sqrt(s2 * np.maximum(q / x - 1, 0.0))
    if m.outcome == "pfs_median":
        a = survival
        shape = a.shape_median * np.exp(a.shape_sd_log * rng.standard_normal(n_draws))
        j = greenwood_inflation(
            shape, m.estimate, rng.uniform(*a.fu_min, n_draws), rng.uniform(*a.fu_max, n_draws)
        )
        s2 = km_log_median_variance(m.n_typical, shape, j)
        s2 = s2 * _size_spread_factor(m.k, rng.uniform(*a.size_cv, n_draws))
        kse2 = m.k * float(pooled_se(m)) ** 2
    else:
        se_nat = (m.ci_high - m.ci_low) / (2 * Z95)
        p = np.clip(m.estimate + se_nat * rng.standard_normal(n_draws), 0.005, 0.5)
        s2 = binomial_probit_variance(p, m.n_typical)
        s2 = s2 * _size_spread_factor(m.k, rng.uniform(*toxicity.size_cv, n_draws))
        kse2 = m.k * pooled_se(m, p) ** 2
    return np.sqrt(np.maximum((m.k - 1) * kse2 / x - s2, 0.0))


def fit_lognormal(draws: np.ndarray, upper: float = 0.9) -> tuple[float, float]:
    """Log-normal (median, SD of log) matching the draws' median and ``upper`` quantile.

    The lower tail of a τ confidence distribution has mass at or near zero (log τ -> -inf),
    which a log-normal cannot follow; the median and the upper tail (how large a centre effect
    can be) are what a prior on τ must get right, so those two are matched. When more than half
    the draws are 0 (a meta-analysis with I² = 0) the pair (0.75, 0.95), then (0.9, 0.99), is
    matched instead; all zero gives (0, 0).
    """
    pairs = ((0.5, upper), (0.75, 0.95), (0.9, 0.99))
    for lo, hi in pairs:
        q_lo, q_hi = np.quantile(draws, [lo, hi])
        if q_lo > 0:
            z_lo, z_hi = stats.norm.ppf([lo, hi])
            sd = math.log(q_hi / q_lo) / float(z_hi - z_lo)
            return float(q_lo * math.exp(-z_lo * sd)), sd
    return 0.0, 0.0


def _round2(x: float) -> float:
    return float(f"{x:.2g}")


def _summary(label: str, draws: np.ndarray) -> dict[str, float | str]:
    med, sdl = fit_lognormal(draws)
    q = np.quantile(draws, [0.05, 0.25, 0.75, 0.95])
    return {
        "source": label,
        "mc_median": med,
        "mc_q05": q[0],
        "mc_q25": q[1],
        "mc_q75": q[2],
        "mc_q95": q[3],
        "p_zero": float(np.mean(draws == 0)),
        "median": med,
        "sd_log": sdl,
    }


def tau_prior(
    figures: list[MetaAnalysis],
    name: str,
    n_draws: int = N_DRAWS,
    seed: int = SEED,
    survival: SurvivalAssumptions = SURVIVAL_ASSUMPTIONS,
    toxicity: ToxicityAssumptions = TOXICITY_ASSUMPTIONS,
) -> TauPrior:
    """Combine meta-analyses into a log-normal prior on τ (equal-weight mixture of draws).

    Parameters
    ----------
    figures : list of MetaAnalysis
        Figures on the same outcome (their draws get seeds ``seed + i``).
    name : str
        The prior's name.
    n_draws, seed : int
        Monte Carlo size and seed.
    survival, toxicity : assumptions
        The nuisance assumptions (defaults: :data:`SURVIVAL_ASSUMPTIONS`,
        :data:`TOXICITY_ASSUMPTIONS`).

    Returns
    -------
    TauPrior
    """
    rows, all_draws = [], []
    for i, m in enumerate(figures):
        d = tau_draws(m, n_draws, seed + i, survival, toxicity)
        all_draws.append(d)
        pt = tau_point(m, survival, toxicity)
        rows.append(
            {
                "row_id": m.row_id,
                "k": m.k,
                "n_patients": m.n_patients,
                "n_typical": m.n_typical,
                "k_assumed": m.k_assumed,
                "ci_scale": m.ci_scale,
                **pt,
                **_summary(m.row_id, d),
            }
        )
    mix = np.concatenate(all_draws)
    med, sdl = fit_lognormal(mix)
    rows.append({"row_id": "mixture", **_summary("mixture", mix)})
    details = pd.DataFrame(rows).drop(columns="source")
    return TauPrior(name, _round2(med), _round2(sdl), med, sdl, details)


@cache
def tau_prior_survival() -> TauPrior:
    """The prior on τ, the SD of the study effect on log time (log median), from both PFS
    meta-analyses. See ``docs/tau_priors.md`` for the values and the argument."""
    figs = [m for m in meta_analyses() if m.outcome == "pfs_median"]
    return tau_prior(figs, "tau_survival")


@cache
def tau_prior_toxicity() -> TauPrior:
    """The prior on τ_tox on the **marginal** probit scale of a study's grade >= III
    proportion, from both toxicity figures (convert with :func:`latent_tau`)."""
    figs = [m for m in meta_analyses() if m.outcome == "grade34_toxicity"]
    return tau_prior(figs, "tau_toxicity_marginal")


def latent_tau(tau_marginal: float | np.ndarray, sigma_u: float | np.ndarray) -> np.ndarray:
    """τ_tox on the latent propensity scale: τ_marginal · sqrt(1 + σ_u²).

    The toxicity model integrates a N(0, σ_u²) patient effect, so a study's marginal probit is
    its latent shift divided by sqrt(1 + σ_u²). For a log-normal prior the median scales by the
    same factor and the SD of log τ is unchanged (σ_u fixed); per posterior draw of σ_u apply it
    draw by draw.
    """
    return np.asarray(tau_marginal) * np.sqrt(1.0 + np.asarray(sigma_u) ** 2)


def derivation_table() -> pd.DataFrame:
    """The intermediate numbers of both priors, one row per meta-analysis and per mixture.

    Returns
    -------
    pandas.DataFrame
        Columns ``prior``, ``row_id``, ``k``, ``n_patients``, ``n_typical``, ``method``,
        ``se`` (working scale), ``k_se2``, ``s2``, ``i2``, ``q``, ``tau`` (moment estimate),
        ``mc_median``, ``mc_q05`` ... ``mc_q95``, ``p_zero`` (Monte Carlo), ``median`` and
        ``sd_log`` (the log-normal fitted to that row's draws).
    """
    parts = []
    for prior in (tau_prior_survival(), tau_prior_toxicity()):
        d = prior.details.copy()
        d.insert(0, "prior", prior.name)
        parts.append(d)
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------------------------
# Simulation of published-style meta-analyses (the check of the derivation)
# ----------------------------------------------------------------------------------------------


def _km_median_ci(time: np.ndarray, event: np.ndarray) -> tuple[float, float, float]:
    """Kaplan-Meier median with a Brookmeyer-Crowley 95% CI (Greenwood, linear scale).

    Returns (median, lower, upper); NaN where not reached.
    """
    order = np.argsort(time, kind="stable")
    t, e = time[order], event[order]
    n = len(t)
    at_risk = n - np.arange(n)
    ev = e > 0
    if not ev.any():
        return math.nan, math.nan, math.nan
    tt, d, r = t[ev], np.ones(ev.sum()), at_risk[ev]
    # tied event times: keep the last row of each tie (its survival accounts for all of them)
    s = np.cumprod(1 - d / r)
    gw = np.cumsum(d / (r * np.maximum(r - d, 1e-12)))
    keep = np.r_[tt[1:] != tt[:-1], True]
    tt, s, gw = tt[keep], s[keep], gw[keep]
    se = s * np.sqrt(gw)
    below = np.flatnonzero(s <= 0.5)
    med = tt[below[0]] if below.size else math.nan
    lo_i = np.flatnonzero(s - Z95 * se <= 0.5)
    hi_i = np.flatnonzero(s + Z95 * se < 0.5)
    lo = tt[lo_i[0]] if lo_i.size else math.nan
    hi = tt[hi_i[0]] if hi_i.size else math.nan
    return float(med), float(lo), float(hi)


def simulate_survival_meta_analyses(
    tau: float,
    n_meta: int,
    k: int = 8,
    n_mean: float = 53.0,
    size_cv: float = 0.6,
    median_months: float = 13.0,
    shape: tuple[float, float] = (1.0, 1.8),
    fu: tuple[float, float] = (6.0, 60.0),
    seed: int = 0,
) -> pd.DataFrame:
    """Simulate random-effects meta-analyses of KM medians, summarised as the papers print.

    Each meta-analysis: k studies with sizes ~ Gamma (mean ``n_mean``, CV ``size_cv``, at
    least 10); a study's true log median is log(``median_months``) + u, u ~ N(0, τ²); PFS
    times are Weibull with one shape per meta-analysis drawn uniformly in ``shape``;
    administrative censoring uniform on ``fu`` months. Each study reports its KM median with a
    Brookmeyer-Crowley CI; SE = width/3.92 (half of the lower width doubled when the upper
    bound is not reached; a study whose median is not reached is left out). Pooling is
    DerSimonian-Laird on the natural scale with a Wald CI, and I² = max(0, (Q - (k-1))/Q).

    Returns
    -------
    pandas.DataFrame
        One row per meta-analysis: ``tau_true``, ``k``, ``n_patients``, ``estimate``,
        ``ci_low``, ``ci_high``, ``i2``, ``shape``.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_meta):
        kappa = rng.uniform(*shape)
        sizes = np.maximum(10, np.round(rng.gamma(1 / size_cv**2, n_mean * size_cv**2, k))).astype(
            int
        )
        meds, ses, used = [], [], []
        for n in sizes:
            m_s = median_months * math.exp(tau * rng.standard_normal())
            lam = m_s / LN2 ** (1 / kappa)
            t = lam * rng.weibull(kappa, n)
            c = rng.uniform(*fu, n)
            med, lo, hi = _km_median_ci(np.minimum(t, c), (t <= c).astype(float))
            if not math.isfinite(med) or not math.isfinite(lo):
                continue
            width = (hi - lo) if math.isfinite(hi) else 2 * (med - lo)
            if width <= 0:
                continue
            meds.append(med)
            ses.append(width / (2 * Z95))
            used.append(n)
        y, v = np.array(meds), np.array(ses) ** 2
        kk = len(y)
        w = 1 / v
        mu_fe = np.sum(w * y) / w.sum()
        q = float(np.sum(w * (y - mu_fe) ** 2))
        t2 = max(0.0, (q - (kk - 1)) / (w.sum() - np.sum(w**2) / w.sum()))
        ws = 1 / (v + t2)
        mu = float(np.sum(ws * y) / ws.sum())
        se = float(1 / math.sqrt(ws.sum()))
        rows.append(
            {
                "tau_true": tau,
                "k": kk,
                "n_patients": int(np.sum(used)),
                "estimate": mu,
                "ci_low": mu - Z95 * se,
                "ci_high": mu + Z95 * se,
                "i2": max(0.0, (q - (kk - 1)) / q) if q > 0 else 0.0,
                "shape": kappa,
            }
        )
    return pd.DataFrame(rows)
