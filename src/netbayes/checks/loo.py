"""Cross-validated (PSIS-LOO) predictive checks of every published figure.

The in-sample check (:mod:`netbayes.validation`) puts each published figure against a predictive
that was fitted to it, so it can hardly fail. Here every figure is scored under the predictive
of the posterior *without* its likelihood term (:mod:`netbayes.checks.loo_units`), obtained by
Pareto-smoothed importance sampling of the shipped draws (:mod:`netbayes.checks.psis`): no
refit. Each figure gets its leave-one-out predictive median and 95% interval, its PIT
(randomised for counts and censored times) and the Pareto :math:`\\hat k` of its weights; each
endpoint gets the PIT histogram against uniform, a Kolmogorov-Smirnov and a chi-square p-value
and the share of figures inside the central 50%, 80% and 95% intervals
(:func:`loo_summary`). ``docs/validation.md`` gives the method and why it was chosen.

NumPy and SciPy only (no PyMC, PyTensor or ArviZ).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from netbayes.checks.base import Posteriors
from netbayes.checks.loo_units import LooFigure, LooUnit
from netbayes.checks.psis import (
    CENTRAL_LEVELS,
    KHAT_OK,
    PitSummary,
    pit_summary,
    psis_log_weights,
    randomised_pit,
    weighted_quantiles,
)

__all__ = [
    "LOO_COLUMNS",
    "LOO_SUMMARY_COLUMNS",
    "loo_summary",
    "loo_table",
    "loo_units",
    "score_units",
]

LOO_COLUMNS = [
    "endpoint",
    "figure",
    "source",
    "published",
    "loo_median",
    "loo_lower",
    "loo_upper",
    "pit",
    "khat",
    "in_likelihood",
    "source_table",
    "source_row_id",
]
"""Columns of :func:`loo_table`: the leave-one-out predictive's median and 95% equal-tailed
interval, the PIT, the Pareto k-hat of the figure's term (NaN: held out of the likelihood)."""
LOO_SUMMARY_COLUMNS = [
    "endpoint",
    "figures",
    "pit_bins",
    "expected_per_bin",
    "ks_p",
    "chi2_p",
    *(f"inside_central_{round(q * 100)}" for q in CENTRAL_LEVELS),
    "max_khat",
    "khat_high",
]
"""Columns of :func:`loo_summary` (``khat_high``: figures whose term has k-hat > 0.7)."""
ENDPOINTS = ("PFS", "OS", "toxicity")


def loo_units(post: Posteriors, seed: int = 11) -> list[LooUnit]:
    """Every leave-one-out unit of the posteriors present (PFS, OS, toxicity order).

    Parameters
    ----------
    post : Posteriors
    seed : int
        Base seed of the predictive draws.

    Returns
    -------
    list of LooUnit
    """
    from netbayes.checks.loo_survival import re188_units, table5_units
    from netbayes.checks.loo_toxicity import toxicity_units

    units: list[LooUnit] = []
    if post.survival_pfs is not None:
        units += table5_units(post, "pfs", seed=seed)
    if post.survival_os is not None:
        units += table5_units(post, "os", seed=seed + 1)
        units += re188_units(post, seed=seed + 2)
    if post.toxicity is not None:
        units += toxicity_units(post, seed=seed + 3)
    return units


def _score(fig: LooFigure, log_w: np.ndarray | None, rng: np.random.Generator) -> dict[str, Any]:
    if fig.precomputed is not None:
        pre = fig.precomputed
        return {"loo_median": pre["median"], "loo_lower": pre["lower"],
                "loo_upper": pre["upper"], "pit": pre["pit"]}  # fmt: skip
    S = len(fig.below)
    w = np.full(S, 1.0 / S) if log_w is None else np.exp(log_w)
    below, equal = float(np.sum(w * fig.below)), float(np.sum(w * fig.equal))
    lo, med, hi = weighted_quantiles(fig.sample, w, [0.025, 0.5, 0.975])
    return {
        "loo_median": float(med),
        "loo_lower": float(lo),
        "loo_upper": float(hi),
        "pit": float(randomised_pit(np.array(below), np.array(equal), rng)),
    }


def score_units(units: Sequence[LooUnit], seed: int = 17) -> pd.DataFrame:
    """PSIS-LOO predictive of every figure of ``units``: the table of :func:`loo_table`.

    Parameters
    ----------
    units : sequence of LooUnit
    seed : int
        Seed of the randomised PITs.

    Returns
    -------
    pandas.DataFrame
        :data:`LOO_COLUMNS`, one row per figure.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for u in units:
        log_w, khat = None, float("nan")
        if u.loglik is not None:
            log_w, k = psis_log_weights(-np.asarray(u.loglik, float))
            khat = float(k)
        for f in u.figures:
            rows.append(
                {
                    "endpoint": f.endpoint,
                    "figure": f.figure,
                    "source": f.source,
                    "published": f.published,
                    **_score(f, log_w, rng),
                    "khat": khat,
                    "in_likelihood": u.loglik is not None,
                    "source_table": f.source_table,
                    "source_row_id": f.source_row_id,
                }
            )
    return pd.DataFrame(rows, columns=LOO_COLUMNS)


def loo_table(
    survival_pfs: Any | None = None,
    survival_os: Any | None = None,
    toxicity: Any | None = None,
    *,
    seed: int = 11,
) -> pd.DataFrame:
    """Every published figure under its leave-one-out (PSIS) predictive.

    Parameters
    ----------
    survival_pfs, survival_os, toxicity : StoredPosterior, FitResult or mapping, optional
        Posteriors (a missing one skips its figures).
    seed : int
        Seed of the predictive draws and the randomised PITs.

    Returns
    -------
    pandas.DataFrame
        :data:`LOO_COLUMNS`, one row per published figure.

    Raises
    ------
    ValueError
        If no posterior is given.
    """
    post = Posteriors(survival_pfs, survival_os, toxicity)
    if not post.available():
        raise ValueError("loo_table needs at least one posterior: survival_pfs, survival_os or "
                         "toxicity")  # fmt: skip
    return score_units(loo_units(post, seed=seed), seed=seed + 6)


def loo_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per endpoint: the PIT histogram against uniform, its tests and the central coverage.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`loo_table`.

    Returns
    -------
    pandas.DataFrame
        :data:`LOO_SUMMARY_COLUMNS`, one row per endpoint present (PFS, OS, toxicity), then
        one for all figures together; ``attrs["summaries"]`` maps each endpoint to its
        :class:`~netbayes.checks.psis.PitSummary`.
    """
    rows, sums = [], {}
    groups = [(e, table[table["endpoint"] == e]) for e in ENDPOINTS]
    groups = [(e, g) for e, g in groups if len(g)] + [("all", table)]
    for e, g in groups:
        s: PitSummary = pit_summary(g["pit"].to_numpy(float))
        sums[e] = s
        k = g["khat"].to_numpy(float)
        k = k[np.isfinite(k)]
        rows.append(
            {
                "endpoint": e,
                "figures": s.n,
                "pit_bins": list(s.counts),
                "expected_per_bin": s.expected,
                "ks_p": s.ks_p,
                "chi2_p": s.chi2_p,
                **{f"inside_central_{round(q * 100)}": s.central[q] for q in CENTRAL_LEVELS},
                "max_khat": float(k.max()) if len(k) else float("nan"),
                "khat_high": int((k > KHAT_OK).sum()),
            }
        )
    out = pd.DataFrame(rows, columns=LOO_SUMMARY_COLUMNS)
    out.attrs["summaries"] = sums
    return out
