"""Plots, each with a twin that returns the data behind it. NumPy/matplotlib only (no PyMC)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["plot_prior_posterior", "prior_posterior_data", "prior_posterior_table"]

LABELS = {
    "beta_x": "prior-PFS elasticity β_x (salvage PFS ∝ prior PFS^β_x)",
    "beta_gbq": "cumulative-activity effect β_GBq (log time per 10 GBq)",
}


def _normal_prior(priors: Any, name: str) -> tuple[float, float]:
    mean, sd = getattr(priors, name)
    return float(mean), float(sd)


def prior_posterior_table(
    draws: dict[str, np.ndarray], priors: Any, params: tuple[str, ...] = ("beta_x", "beta_gbq")
) -> pd.DataFrame:
    """Tabulate prior and posterior of normal-prior parameters side by side.

    Parameters
    ----------
    draws : dict of str to numpy.ndarray
        Posterior draws (first axis = draw).
    priors : SurvivalPriors
        The priors the model was fitted with (each ``params`` entry a ``(mean, sd)`` normal).
    params : tuple of str
        Parameters to tabulate.

    Returns
    -------
    pandas.DataFrame
        ``parameter``, prior mean/sd and 95% equal-tailed interval, posterior mean/sd and 95%
        ETI, and ``sd_ratio`` = posterior sd / prior sd (near 1: the data said little).
    """
    rows = []
    for p in params:
        m, s = _normal_prior(priors, p)
        d = np.asarray(draws[p]).ravel()
        lo, hi = np.quantile(d, [0.025, 0.975])
        rows.append(
            (
                p,
                m,
                s,
                m - 1.959964 * s,
                m + 1.959964 * s,
                float(d.mean()),
                float(d.std(ddof=1)),
                float(lo),
                float(hi),
                float(d.std(ddof=1) / s),
            )
        )
    return pd.DataFrame(
        rows,
        columns=[
            "parameter",
            "prior_mean",
            "prior_sd",
            "prior_eti95_lower",
            "prior_eti95_upper",
            "posterior_mean",
            "posterior_sd",
            "posterior_eti95_lower",
            "posterior_eti95_upper",
            "sd_ratio",
        ],
    )


def prior_posterior_data(
    draws: dict[str, np.ndarray],
    priors: Any,
    params: tuple[str, ...] = ("beta_x", "beta_gbq"),
    n_points: int = 200,
) -> pd.DataFrame:
    """Return the curves of :func:`plot_prior_posterior`: prior density and posterior KDE.

    Returns
    -------
    pandas.DataFrame
        Long format: ``parameter``, ``x``, ``prior_density``, ``posterior_density``.
    """
    frames = []
    for p in params:
        m, s = _normal_prior(priors, p)
        d = np.asarray(draws[p]).ravel()
        lo = min(m - 3.5 * s, np.quantile(d, 0.001))
        hi = max(m + 3.5 * s, np.quantile(d, 0.999))
        x = np.linspace(lo, hi, n_points)
        frames.append(
            pd.DataFrame(
                {
                    "parameter": p,
                    "x": x,
                    "prior_density": stats.norm.pdf(x, m, s),
                    "posterior_density": stats.gaussian_kde(d)(x),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def plot_prior_posterior(
    draws: dict[str, np.ndarray],
    priors: Any,
    params: tuple[str, ...] = ("beta_x", "beta_gbq"),
) -> Any:
    """Plot prior (dashed) against posterior (solid) density, one panel per parameter.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    data = prior_posterior_data(draws, priors, params)
    fig, axes = plt.subplots(1, len(params), figsize=(5.2 * len(params), 3.6), squeeze=False)
    for ax, p in zip(axes[0], params, strict=True):
        g = data[data["parameter"] == p]
        ax.plot(g["x"], g["prior_density"], "--", color="0.45", label="prior")
        ax.plot(g["x"], g["posterior_density"], color="C0", label="posterior")
        ax.axvline(0, color="0.8", lw=0.8, zorder=0)
        ax.set_xlabel(LABELS.get(p, p))
        ax.set_ylabel("density")
        ax.legend(frameon=False)
    fig.suptitle("Prior against posterior: how much the published data say")
    fig.tight_layout()
    return fig
