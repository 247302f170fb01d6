r"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman 2018): ranks,
uniformity tests and rank histograms.

For a parameter :math:`\theta` drawn from the prior, data simulated from it, and :math:`L`
posterior draws :math:`\theta^{(1..L)}` from an exact computation, the rank
:math:`\#\{l : \theta^{(l)} < \theta\}` is uniform on :math:`\{0, \dots, L\}`. Departures show
up as shapes in the rank histogram: a U (posterior too narrow), a hump (too wide), a slope
(biased). The replicate loops live in ``benchmarks/sbc.py``; this module holds the statistics
so they can be tested without MCMC.

NumPy/SciPy only; the plot needs Matplotlib.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["plot_rank_histograms", "rank_of_truth", "sbc_ranks", "uniformity_table"]


def rank_of_truth(draws: np.ndarray, truth: float, n_ranks: int, rng: np.random.Generator) -> int:
    """Rank of ``truth`` among ``n_ranks`` evenly thinned posterior draws.

    Parameters
    ----------
    draws : ndarray
        1-d posterior draws (chains concatenated).
    truth : float
        The value the data were simulated from.
    n_ranks : int
        :math:`L`, the number of draws kept (thinned evenly over ``draws`` to weaken
        autocorrelation, as Talts et al. recommend); the rank is in ``0..L``.
    rng : numpy.random.Generator
        Breaks ties (a draw equal to the truth) at random.

    Returns
    -------
    int
    """
    x = np.asarray(draws, dtype=float).ravel()
    if not np.isfinite(x).all() or not np.isfinite(truth):
        raise ValueError("draws and truth must be finite to compute an SBC rank")
    if n_ranks < 1 or n_ranks > x.size:
        raise ValueError(f"n_ranks={n_ranks!r} is not allowed; expected 1..{x.size} (the draws)")
    keep = x[np.linspace(0, x.size - 1, n_ranks).round().astype(int)]
    below = int((keep < truth).sum())
    ties = int((keep == truth).sum())
    return below + (int(rng.integers(0, ties + 1)) if ties else 0)


def sbc_ranks(
    draws: Mapping[str, np.ndarray],
    truth: Mapping[str, Any],
    n_ranks: int,
    rng: np.random.Generator,
) -> dict[str, int]:
    """Ranks of every scalar component of ``truth`` among its posterior draws.

    Parameters
    ----------
    draws : mapping of str to ndarray
        Posterior draws, draws on axis 0 (e.g. shape (S,) or (S, 6)).
    truth : mapping of str to array_like
        True values, shaped like one draw.
    n_ranks : int
        :math:`L` (see :func:`rank_of_truth`).
    rng : numpy.random.Generator

    Returns
    -------
    dict of str to int
        ``name`` for scalars, ``name[i]`` / ``name[i,j]`` for vector and matrix components.
    """
    out: dict[str, int] = {}
    for name, t in truth.items():
        t = np.asarray(t, dtype=float)
        d = np.asarray(draws[name], dtype=float).reshape(-1, *t.shape)
        for idx in np.ndindex(t.shape):
            key = name if not idx else f"{name}[{','.join(map(str, idx))}]"
            out[key] = rank_of_truth(d[(slice(None), *idx)], float(t[idx]), n_ranks, rng)
    return out


def uniformity_table(ranks: pd.DataFrame, n_ranks: int, bins: int = 10) -> pd.DataFrame:
    r"""Chi-square test of uniform ranks, one row per parameter.

    Ranks ``0..L`` are grouped into ``bins`` equal bins (``L + 1`` must be divisible by
    ``bins``); under calibration the counts are multinomial with equal cells, so
    :math:`X^2 = \sum (O - E)^2/E` is :math:`\chi^2_{bins-1}` (use :math:`E \ge 5`, i.e. at
    least ``5 * bins`` replicates).

    Parameters
    ----------
    ranks : pandas.DataFrame
        One row per replicate, one column per parameter (the output of :func:`sbc_ranks`
        stacked); NaN entries (failed replicates) are dropped per parameter.
    n_ranks : int
        :math:`L`.
    bins : int
        Number of histogram bins.

    Returns
    -------
    pandas.DataFrame
        ``parameter``, ``replicates``, ``chi2``, ``p_value``, ``mean_rank`` (expected 0.5 after
        dividing by :math:`L`), ``outside_90`` (share of ranks in the outer 5% tails each side,
        expected 0.10).
    """
    if (n_ranks + 1) % bins:
        raise ValueError(f"n_ranks + 1 = {n_ranks + 1} is not divisible by bins = {bins}")
    rows = []
    for col in ranks.columns:
        r = ranks[col].dropna().to_numpy(int)
        if r.size == 0:
            continue
        counts = np.bincount(r * bins // (n_ranks + 1), minlength=bins)
        chi2, p = stats.chisquare(counts)
        u = (r + 0.5) / (n_ranks + 1)
        rows.append(
            {
                "parameter": col,
                "replicates": int(r.size),
                "chi2": float(chi2),
                "p_value": float(p),
                "mean_rank": float(u.mean()),
                "outside_90": float(((u < 0.05) | (u > 0.95)).mean()),
            }
        )
    return pd.DataFrame(rows)


def plot_rank_histograms(
    ranks: pd.DataFrame,
    n_ranks: int,
    path: str | Path,
    *,
    bins: int = 10,
    title: str = "",
    p_values: Mapping[str, float] | None = None,
) -> Path:
    """Rank histograms with the 99% band of a uniform histogram, one panel per parameter.

    Parameters
    ----------
    ranks : pandas.DataFrame
        As for :func:`uniformity_table`.
    n_ranks : int
        :math:`L`.
    path : str or Path
        PNG file to write.
    bins : int
        Number of bins.
    title : str
        Figure title.
    p_values : mapping, optional
        Uniformity p-value per parameter, printed in each panel.

    Returns
    -------
    Path
        ``path``.
    """
    import matplotlib

    if matplotlib.get_backend().lower() not in {"agg", "pdf", "svg", "png"}:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = list(ranks.columns)
    ncol = 6
    nrow = -(-len(cols) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.6 * ncol, 2.1 * nrow), squeeze=False)
    for ax, col in zip(axes.ravel(), cols, strict=False):
        r = ranks[col].dropna().to_numpy(int)
        counts = np.bincount(r * bins // (n_ranks + 1), minlength=bins)
        lo, hi = stats.binom.ppf([0.005, 0.995], r.size, 1.0 / bins)
        ax.axhspan(lo, hi, color="0.85", zorder=0)
        ax.axhline(r.size / bins, color="0.5", lw=0.8)
        ax.bar(np.arange(bins), counts, width=0.9, color="tab:blue")
        p = None if p_values is None else p_values.get(col)
        ax.set_title(col if p is None else f"{col}\np = {p:.3f}", fontsize=8)
        ax.set_xticks([])
        ax.tick_params(labelsize=7)
    for ax in axes.ravel()[len(cols) :]:
        ax.axis("off")
    fig.suptitle(
        (title + "\n" if title else "")
        + f"rank of the truth among {n_ranks} posterior draws, {bins} bins; "
        "grey: 99% band of a uniform histogram",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
