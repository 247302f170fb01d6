r"""Posterior predictive check of the toxicity model's published counts (NumPy only).

For each posterior draw, new patients are simulated *individually* (propensity :math:`u_i`,
then a grade per line) and aggregated exactly as the papers do: per-line grade III and IV
counts of Rotterdam Table 6, the overlapping "any" grade III / grade IV counts as printed (F11),
and for 188Re-HEDP the per-cycle grade counts of the pilot's cycles (cycles of one patient share
:math:`u_i`). :meth:`netbayes.models.toxicity.ToxicityModel.ppc_table` delegates here, so the
check needs no PyMC: it works on any posterior with ``draws(name)`` (a stored posterior or a
``FitResult``) or on a mapping of draw arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from netbayes.calibration import re188, rotterdam
from netbayes.calibration.toxicity import TOXICITY_PHASES, ToxicityData
from netbayes.formulas import toxicity as ftox
from netbayes.formulas.study import study_draws, study_labels
from netbayes.intervals import Interval, as_interval

__all__ = ["POSTERIOR_PARAMS", "toxicity_params", "toxicity_ppc_table"]

POSTERIOR_PARAMS: tuple[str, ...] = (*ftox.PARAMS, "delta_control")
"""Posterior variables of the toxicity model that the predictive simulation reads."""
STUDY_ORDER: tuple[str, ...] = (rotterdam.STUDY_ID, re188.STUDY_ID)
"""The packaged studies in the toxicity model's order (plain draws carry no labels)."""


def _getter(posterior: Any) -> Any:
    if isinstance(posterior, Mapping):
        return lambda name: np.asarray(posterior[name])
    if not callable(getattr(posterior, "draws", None)):
        raise TypeError(
            f"posterior={type(posterior).__name__}; expected an object with draws(name) "
            "(StoredPosterior, FitResult) or a mapping of draw arrays"
        )
    return posterior.draws


def toxicity_params(posterior: Any, max_draws: int | None, seed: int) -> dict[str, np.ndarray]:
    """The toxicity model's posterior draws, randomly thinned, with the derived cutpoints.

    Parameters
    ----------
    posterior : StoredPosterior, FitResult or mapping
        Anything with ``draws(name)``, or a mapping of draw arrays (first axis = draw).
    max_draws : int or None
        At most this many draws, chosen at random without replacement (None: all).
    seed : int
        Seed of the thinning.

    Returns
    -------
    dict of str to numpy.ndarray
        :data:`POSTERIOR_PARAMS` plus ``cutpoints`` (shape (draws, 3, 4)) and, with a study
        level, ``v_study[<study>]`` for the two packaged studies (:data:`STUDY_ORDER`).
    """
    get = _getter(posterior)
    out = {k: get(k) for k in POSTERIOR_PARAMS}
    labels = study_labels(posterior, "v_study", STUDY_ORDER)
    if labels is not None:  # a posterior with a study level: each source at its own centre
        v = get("v_study")
        for study in STUDY_ORDER:
            if study in labels:  # a leave-one-study-out fit lacks the study it left out
                out[f"v_study[{study}]"] = study_draws(v, labels, study)
    n = len(out["theta"])
    if max_draws is not None and n > max_draws:
        idx = np.random.default_rng(seed).choice(n, max_draws, replace=False)
        out = {k: v[idx] for k, v in out.items()}
    out["cutpoints"] = ftox.cutpoints(out["c3"], out["log_gap"])
    return out


def _new_centres(
    th: dict[str, Any],
    posterior: Any,
    studies: Sequence[str],
    max_draws: int | None,
    seed: int,
    tau: np.ndarray,
    z: np.ndarray,
) -> dict[str, Any]:
    """New-centre effects (latent scale) of ``studies`` on the draws ``th`` was thinned to."""
    n = len(tau)
    idx = np.arange(n)
    if max_draws is not None and n > max_draws:  # the thinning of toxicity_params
        idx = np.random.default_rng(seed).choice(n, max_draws, replace=False)
    sig = th["sigma_u"]
    for i, study in enumerate(studies):
        th[f"v_study[{study}]"] = np.asarray(tau)[idx] * np.sqrt(1.0 + sig**2) * z[idx, i]
    return th


def toxicity_ppc_table(
    posterior: Any,
    data: ToxicityData | None = None,
    *,
    interval: Interval | float | None = None,
    max_draws: int = 2000,
    seed: int = 7,
    new_centre: Sequence[str] = (),
) -> pd.DataFrame:
    """Every Table 6 count and every 188Re per-cycle count against its predictive interval.

    Parameters
    ----------
    posterior : StoredPosterior, FitResult or mapping
        Toxicity-model posterior (see :func:`toxicity_params`).
    data : ToxicityData, optional
        The aggregate data to check (default: the packaged published tables).
    interval : Interval or float, optional
        Predictive interval convention (default 95% equal-tailed,
        :data:`netbayes.intervals.DEFAULT_INTERVAL`).
    max_draws, seed
        At most ``max_draws`` random posterior draws; seed of the thinning and of the
        simulation (two generators, both seeded with ``seed``).
    new_centre : sequence of str
        Packaged studies (:data:`STUDY_ORDER`) to predict as a new centre: their effect is
        drawn from the study level (``tau_tox``) instead of taken from the posterior (the
        leave-one-study-out check, whose fit has not seen them).

    Returns
    -------
    pandas.DataFrame
        Columns ``source``, ``phase``, ``cell_line``, ``grade``, ``observed``, ``pred_mean``,
        the predictive interval's bounds named by the convention (e.g. ``eti95_lower``,
        ``eti95_upper``; counts, truncated to integers), ``inside`` and ``pit`` (the mid
        PIT of the count: P(X < observed) + P(X = observed) / 2).
    """
    iv = as_interval(interval)
    d = data if data is not None else ToxicityData.packaged()
    th = toxicity_params(posterior, max_draws, seed)
    rng = np.random.default_rng(seed)
    S = len(th["theta"])
    cut = th["cutpoints"]  # (S, 3, 4)
    rows = []
    deltas = np.stack(
        [th["delta_control"], np.zeros(S), th["delta_retreated"], th["delta_retreated"]], 1
    )
    if new_centre:
        tau = _getter(posterior)("tau_tox")
        z = np.random.default_rng([seed, 1]).standard_normal((len(tau), len(new_centre)))
        for study in new_centre:
            if study not in STUDY_ORDER:
                raise ValueError(f"new_centre: {study!r}; allowed: {', '.join(STUDY_ORDER)}")
        th = _new_centres(th, posterior, new_centre, max_draws, seed, tau, z)
    v_rot = th.get(f"v_study[{rotterdam.STUDY_ID}]")
    v_re = th.get(f"v_study[{re188.STUDY_ID}]")
    for p, ph in enumerate(TOXICITY_PHASES):
        n = int(d.n[p])
        eta = ftox.linear_predictor(
            d.phase_activity[p], d.phase_prior[p], th["beta_activity"], th["beta_prior"],
            deltas[:, p],
        )  # fmt: skip
        if v_rot is not None:
            eta = eta + v_rot
        u = rng.normal(size=(S, n)) * th["sigma_u"][:, None]
        g = ftox.simulate_grades(
            (eta[:, None, None] * np.ones((1, n, 3))), cut[:, None], u[..., None], rng
        )  # (S, n, 3)
        sims = {}
        for li, line in enumerate(ftox.CELL_LINES):
            for gr in (3, 4):
                sims[(line, gr)] = (g[..., li] == gr).sum(1)
        sims[("any", 3)] = (g == 3).any(-1).sum(1)
        sims[("any", 4)] = (g == 4).any(-1).sum(1)
        for (line, gr), sim in sims.items():
            obs = (
                d.any_printed[p, gr - 3]
                if line == "any"
                else d.line_counts[p, ftox.CELL_LINES.index(line), gr - 3]
            )
            rows.append(("Rotterdam Table 6", ph, line, gr, obs, sim))
    # 188Re per-cycle
    pats = np.unique(d.re_patient)
    u_p = rng.normal(size=(S, len(pats))) * th["sigma_u"][:, None]
    u_c = u_p[:, np.searchsorted(pats, d.re_patient)]  # (S, cycles)
    re_eq = th["theta"][:, None] * d.re_activity
    eta = ftox.linear_predictor(
        re_eq, d.re_prior_lu + re_eq * d.re_cycle, th["beta_activity"][:, None],
        th["beta_prior"][:, None], th["delta_re188"][:, None],
    )  # fmt: skip
    if v_re is not None:
        eta = eta + v_re[:, None]
    g = ftox.simulate_grades(
        eta[..., None] * np.ones(3), cut[:, None], u_c[..., None], rng
    )  # (S, cycles, 3)
    for li, line in enumerate(ftox.CELL_LINES):
        for gr in range(5):
            sim = (g[..., li] == gr).sum(1)
            rows.append(("188Re per cycle", "188Re-HEDP", line, gr, d.re_counts[li, gr], sim))
    out = []
    for src, ph, line, gr, obs, sim in rows:
        lo, hi = (int(b) for b in iv.bounds(sim))
        pit = float(np.mean(sim < obs) + 0.5 * np.mean(sim == obs))
        out.append(
            {
                "source": src,
                "phase": ph,
                "cell_line": line,
                "grade": gr,
                "observed": int(obs),
                "pred_mean": float(sim.mean()),
                iv.columns[0]: lo,
                iv.columns[1]: hi,
                "inside": bool(lo <= obs <= hi),
                "pit": pit,
            }
        )
    return pd.DataFrame(out)
