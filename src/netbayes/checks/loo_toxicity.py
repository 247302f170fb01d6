r"""Leave-one-out units of the toxicity model: Table 6 counts and 188Re per-cycle grades (NumPy).

The units are the terms of :class:`netbayes.models.toxicity.ToxicityModel`'s likelihood:

* one per Table 6 phase and cell line: the coarsened multinomial of its grade III and grade IV
  counts (per-line margins, the patient propensity integrated out exactly: probit);
* one per Table 6 phase for the "any line" counts: the mixture of the two readings of the
  printed counts (audit F11), weighted by ``any_weight``;
* one per cell line of the 188Re-HEDP per-cycle table: the multinomial of its grade 0-IV cycle
  counts under the mean per-cycle probabilities.

That is the composite likelihood (``margins="composite"``, posteriors fitted before issue 16
d4). With the exact likelihood (``margins="exact"``, ``docs/toxicity_margins.md``) the units
are one per Table 6 phase (the exact joint of its per-line and any-line grade >= III counts
times the per-line grade IV binomials) and one per 188Re cell line (the Poisson-multinomial
of its cycle counts given the patients' propensities, the posterior's ``z_re188``).

Each figure's predictive, per draw, is the in-sample check's
(:func:`netbayes.formulas.toxicity_ppc.toxicity_ppc_table`): a per-line count is binomial
with the marginal grade probability; a printed "any" count is binomial with the probability
that a patient has that grade in at least one line (quadrature over the shared propensity);
a 188Re count is simulated (``reps`` tables per draw, the cycles of a patient sharing the
propensity). ``tests/test_loo.py`` checks the log-likelihoods against the model's own terms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats
from scipy.special import gammaln, logsumexp, ndtr

from netbayes.calibration import re188, rotterdam
from netbayes.calibration.toxicity import TOXICITY_PHASES, ToxicityData
from netbayes.checks.base import Posteriors, model_config, source_labels
from netbayes.checks.loo_units import LooFigure, LooUnit
from netbayes.checks.toxicity import (  # the in-sample check's labels, one copy
    _GRADE,
    _RE188_DERIVED,
    _RE188_TABLE,
    _T6_PHASE,
    _T6_TABLE,
)
from netbayes.formulas import toxicity as ftox
from netbayes.formulas import toxicity_margins as tmar
from netbayes.formulas.toxicity_ppc import toxicity_params

__all__ = ["toxicity_config", "toxicity_units"]


def toxicity_config(posterior: Any) -> dict[str, Any]:
    """``any_weight`` (1.0), ``n_nodes`` (64) and ``margins`` ("composite" for a posterior
    saved before the option existed) of a toxicity posterior's card or fit."""
    cfg = model_config(posterior)
    return {
        "any_weight": float(cfg.get("any_weight", 1.0)),
        "n_nodes": int(cfg.get("n_nodes", 64)),
        "margins": str(cfg.get("margins", "composite")),
    }


def _multinomial(counts: np.ndarray, logp: np.ndarray) -> np.ndarray:
    """Multinomial log-likelihood with its coefficient; ``counts`` (J,), ``logp`` (S, J)."""
    counts = np.asarray(counts, float)
    coef = gammaln(counts.sum() + 1.0) - gammaln(counts + 1.0).sum()
    return coef + np.where(counts > 0, counts * logp, 0.0).sum(axis=-1)


def _binomial_figure(
    n: int, p: np.ndarray, y: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.clip(p, 0.0, 1.0)
    below = stats.binom.cdf(y - 1, n, p) if y > 0 else np.zeros_like(p)
    return below, stats.binom.pmf(y, n, p), rng.binomial(n, p).astype(float)


def toxicity_units(post: Posteriors, seed: int = 13, reps: int = 20) -> list[LooUnit]:
    """The toxicity likelihood's terms as leave-one-out units, with their figures.

    Parameters
    ----------
    post : Posteriors
        Holds the toxicity posterior.
    seed : int
        Seed of the predictive counts.
    reps : int
        Simulated 188Re per-cycle tables per draw (their mean gives :math:`P(X < y)` and
        :math:`P(X = y)` per draw).

    Returns
    -------
    list of LooUnit
        12 Table 6 line units (2 figures each), 4 "any" units (2 each), 3 188Re units (5 each).
    """
    src = post.get("toxicity")
    cfg = toxicity_config(src)
    th = toxicity_params(src, None, seed)
    d = ToxicityData.packaged()
    rng = np.random.default_rng(seed)
    S = len(th["theta"])
    cut = th["cutpoints"]  # (S, 3, 4), conditional scale
    sig = th["sigma_u"]
    scale = np.sqrt(1.0 + sig**2)
    v_rot = th.get(f"v_study[{rotterdam.STUDY_ID}]", np.zeros(S))
    v_re = th.get(f"v_study[{re188.STUDY_ID}]", np.zeros(S))
    deltas = np.stack(
        [th["delta_control"], np.zeros(S), th["delta_retreated"], th["delta_retreated"]], 1
    )
    x, w = ftox.normal_quadrature(cfg["n_nodes"])
    x_ppc, w_ppc = ftox.normal_quadrature()
    labels = source_labels()
    lines = ftox.CELL_LINES
    units: list[LooUnit] = []

    def fig(ph: str, line: str, g: int, y: int, arrays: tuple[np.ndarray, ...]) -> LooFigure:
        rid = f"t6_{_T6_PHASE.get(ph, ph)}_{line}_g{g}"
        return LooFigure(
            endpoint="toxicity",
            figure=f"Rotterdam Table 6: {ph}, {line}, grade {_GRADE[g]}, count",
            source=labels.get((_T6_TABLE, rid), ""),
            source_table=_T6_TABLE,
            source_row_id=rid,
            published=float(y),
            below=arrays[0],
            equal=arrays[1],
            sample=arrays[2],
        )

    for p, ph in enumerate(TOXICITY_PHASES):
        n = int(d.n[p])
        eta = ftox.linear_predictor(
            d.phase_activity[p], d.phase_prior[p], th["beta_activity"], th["beta_prior"],
            deltas[:, p],
        ) + v_rot  # fmt: skip
        cum = ndtr((cut - eta[:, None, None]) / scale[:, None, None])  # (S, 3, 4) marginal
        probs = np.stack([cum[..., 2], cum[..., 3] - cum[..., 2], 1.0 - cum[..., 3]], -1)
        with np.errstate(divide="ignore"):
            logp = np.log(np.maximum(probs, 1e-300))
        exact = cfg["margins"] == "exact"
        phase_figs: list[LooFigure] = []
        ll_phase = np.zeros(S)
        for li, line in enumerate(lines):
            k3, k4 = (int(v) for v in d.line_counts[p, li])
            figs = [fig(ph, line, g, k, _binomial_figure(n, probs[:, li, g - 2], k, rng))
                    for g, k in ((3, k3), (4, k4))]  # fmt: skip
            if exact:  # grade IV among the line's grade >= III patients
                lp34 = np.logaddexp(logp[:, li, 1], logp[:, li, 2])
                lp_c = np.stack([logp[:, li, 1] - lp34, logp[:, li, 2] - lp34], -1)
                ll_phase = ll_phase + _multinomial(np.array([k3, k4]), lp_c)
                phase_figs += figs
                continue
            ll = _multinomial(np.array([n - k3 - k4, k3, k4]), logp[:, li])
            units.append(LooUnit(f"toxicity:t6_{_T6_PHASE[ph]}_{line}", ll, figs))
        # "any" unit: worst-grade probabilities by the model's quadrature
        zc = cut[..., None] - eta[:, None, None, None] - sig[:, None, None, None] * x  # (S,3,4,K)
        le2 = (ndtr(zc[:, :, 2]).prod(axis=1) * w).sum(-1)
        le3 = (ndtr(zc[:, :, 3]).prod(axis=1) * w).sum(-1)
        worst = np.stack([le2, le3 - le2, 1.0 - le3], -1)
        with np.errstate(divide="ignore"):
            logw = np.log(np.maximum(worst, 1e-300))
        ll_a = _multinomial(d.worst_counts[0, p], logw)
        ll_b = _multinomial(d.worst_counts[1, p], logw)
        ll_any = cfg["any_weight"] * (np.logaddexp(ll_a, ll_b) - math.log(2.0))
        if exact:  # the exact joint of the grade >= III margins (both readings of "any")
            k_ge3 = d.line_counts[p].sum(-1)
            log_pi = tmar.pattern_logprobs(cut[:, :, 2] - eta[:, None], sig, cfg["n_nodes"])
            ll_j = np.full(S, -np.inf)
            for w in sorted({round(float(d.worst_counts[v, p, 1:].sum())) for v in range(2)}):
                t, c0 = tmar.margin_tables(n, k_ge3, w)
                ll_j = np.logaddexp(ll_j, tmar.log_margins_pmf(t, c0, log_pi))
            ll_any = ll_j + ll_phase
        # printed "any" count: patients with that grade in at least one line
        zq = cut[..., None] - eta[:, None, None, None] - sig[:, None, None, None] * x_ppc
        c = ndtr(zq)  # (S, 3, 4, K)
        p3 = c[:, :, 3] - c[:, :, 2]
        p4 = 1.0 - c[:, :, 3]
        q = {g: ((1.0 - (1.0 - pg).prod(axis=1)) * w_ppc).sum(-1) for g, pg in ((3, p3), (4, p4))}
        figs = [fig(ph, "any", g, int(d.any_printed[p, g - 3]),
                    _binomial_figure(n, q[g], int(d.any_printed[p, g - 3]), rng))
                for g in (3, 4)]  # fmt: skip
        if exact:
            units.append(LooUnit(f"toxicity:t6_{_T6_PHASE[ph]}", ll_any, phase_figs + figs))
        else:
            units.append(LooUnit(f"toxicity:t6_{_T6_PHASE[ph]}_any", ll_any, figs))
    # 188Re-HEDP per-cycle grades
    re_eq = th["theta"][:, None] * d.re_activity
    eta_re = (
        ftox.linear_predictor(
            re_eq,
            d.re_prior_lu + re_eq * d.re_cycle,
            th["beta_activity"][:, None],
            th["beta_prior"][:, None],
            th["delta_re188"][:, None],
        )
        + v_re[:, None]
    )  # fmt: skip  (S, cycles), conditional scale
    cum = ndtr((cut[:, None] - eta_re[..., None, None]) / scale[:, None, None, None])
    zeros = np.zeros_like(cum[..., :1])
    p5 = np.diff(np.concatenate([zeros, cum, zeros + 1.0], -1), axis=-1)  # (S, cycles, 3, 5)
    with np.errstate(divide="ignore"):
        lp_mean = logsumexp(np.log(np.maximum(p5, 1e-300)), axis=1) - math.log(p5.shape[1])
    pats = np.unique(d.re_patient)
    pidx = np.searchsorted(pats, d.re_patient)
    u_p = rng.normal(size=(S, reps, len(pats))) * sig[:, None, None]
    g_sim = ftox.simulate_grades(
        (eta_re[:, None, :] + u_p[..., pidx])[..., None] * np.ones(3), cut[:, None, None], 0.0, rng
    )  # (S, reps, cycles, 3)
    if cfg["margins"] == "exact":  # given the patients' propensities (posterior z_re188)
        z_re = np.asarray(src.draws("z_re188")).reshape(S, -1)  # same draws, not thinned
        eta_c = eta_re + sig[:, None] * z_re[:, pidx]  # (S, cycles)
        cum_c = ndtr(cut[:, None] - eta_c[..., None, None])  # (S, cycles, 3, 4)
        p5c = np.diff(np.concatenate([zeros, cum_c, zeros + 1.0], -1), axis=-1)
        with np.errstate(divide="ignore"):
            lp5c = np.log(np.maximum(p5c, 1e-300))
    for li, line in enumerate(lines):
        if cfg["margins"] == "exact":
            ll = tmar.log_poisson_multinomial(d.re_counts[li], lp5c[:, :, li])
        else:
            ll = _multinomial(d.re_counts[li], lp_mean[:, li])
        figs = []
        for g in range(5):
            y = int(d.re_counts[li, g])
            sim = (g_sim[..., li] == g).sum(-1)  # (S, reps)
            rid = f"t2_cycle_{line}_g{g}"
            figs.append(
                LooFigure(
                    endpoint="toxicity",
                    figure=f"188Re per cycle: 188Re-HEDP, {line}, grade {_GRADE[g]}, count",
                    source=labels.get((_RE188_TABLE, rid), _RE188_DERIVED),
                    source_table=_RE188_TABLE,
                    source_row_id=rid,
                    published=float(y),
                    below=(sim < y).mean(-1),
                    equal=(sim == y).mean(-1),
                    sample=sim[:, 0].astype(float),
                )
            )
        units.append(LooUnit(f"toxicity:re188_cycles_{line}", ll, figs))
    return units
