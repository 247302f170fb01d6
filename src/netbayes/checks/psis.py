r"""Pareto-smoothed importance sampling leave-one-out (PSIS-LOO) and PIT statistics (NumPy).

The leave-one-out predictive of an observation :math:`y_i` is the posterior predictive of a fit
without it. With posterior draws :math:`\theta_s` of the fit *with* it, the draws reweighted by
:math:`w_s \propto 1/p(y_i \mid \theta_s)` are draws of the posterior without it (exact
identity of importance sampling); the raw ratios can have a heavy right tail, so the largest
ones are replaced by the order statistics of a generalised Pareto distribution fitted to them
(Vehtari, Gelman & Gabry 2017, *Stat. Comput.* 27:1413; Vehtari et al. 2024, *JMLR* 25:72).
The fitted shape :math:`\hat k` is the diagnostic: below 0.7 the estimate is reliable at these
sample sizes; above, the left-out observation moved the posterior too much to be reweighted, and
an exact refit without it is needed.

A PIT (probability integral transform) value is the predictive probability of a value at most
the observed one; over many observations a calibrated predictive gives uniform PITs. For a
count the *randomised* PIT :math:`P(X < y) + V\,P(X = y)`, :math:`V \sim U(0, 1)`, is exactly
uniform under a calibrated predictive (Czado, Gneiting & Held 2009, *Biometrics* 65:1254), so
one uniformity test covers continuous and discrete figures alike. A censored time :math:`c`
gets :math:`F(c) + V (1 - F(c))` (the event falls somewhere after :math:`c`).

This module is the generic part: weights, weighted quantiles, PIT summaries and the uniformity
tests. It imports neither PyMC nor ArviZ (``tests/test_loo.py`` compares it with
``arviz.psislw``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.special import logsumexp

__all__ = [
    "KHAT_OK",
    "PIT_BINS",
    "PitSummary",
    "gpd_fit",
    "pit_summary",
    "psis_log_weights",
    "randomised_pit",
    "tail_length",
    "weighted_quantiles",
]

KHAT_OK = 0.7
"""Pareto :math:`\\hat k` above which a PSIS estimate is unreliable (Vehtari et al. 2024)."""
PIT_BINS = 5
"""Bins of the PIT histogram (equal width on [0, 1])."""
CENTRAL_LEVELS = (0.5, 0.8, 0.95)
"""Central predictive intervals whose coverage a :class:`PitSummary` reports."""


def gpd_fit(x: np.ndarray) -> tuple[float, float]:
    """Fit a generalised Pareto distribution (location 0) to exceedances ``x``.

    The empirical-Bayes estimator of Zhang & Stephens (2009, *Technometrics* 51:316) with the
    weakly informative prior on the shape of Vehtari et al. (shrinks :math:`\\hat k` towards
    0.5 by 10 pseudo-observations), as in the ``loo`` R package and ArviZ.

    Parameters
    ----------
    x : numpy.ndarray, shape (M,)
        Non-negative exceedances over the threshold, sorted ascending.

    Returns
    -------
    k, sigma : float
        Shape and scale; ``(nan, nan)`` when the first quartile does not exceed the minimum
        (far from a generalised Pareto), ``(inf, nan)`` when the fit fails.
    """
    x = np.asarray(x, float)
    n = len(x)
    m = 30 + int(math.sqrt(n))
    xstar = x[int(n / 4 + 0.5) - 1]
    if xstar <= x[0]:
        return float("nan"), float("nan")
    b = 1.0 - np.sqrt(m / (np.arange(1, m + 1, dtype=float) - 0.5))
    b /= 3.0 * xstar
    b += 1.0 / x[-1]
    k = np.log1p(-b[:, None] * x).mean(axis=1)
    len_scale = n * (np.log(-b / k) - k - 1.0)
    w = np.exp(len_scale - logsumexp(len_scale))
    keep = w >= 10 * np.finfo(float).eps
    w, b = w[keep] / w[keep].sum(), b[keep]
    b_post = float(np.sum(b * w))
    k_post = float(np.log1p(-b_post * x).mean())
    sigma = -k_post / b_post
    k_post = (n * k_post + 10 * 0.5) / (n + 10)
    if math.isnan(k_post):
        return float("inf"), float("nan")
    return k_post, sigma


def _gpd_quantile(p: np.ndarray, k: float, sigma: float, mu: float) -> np.ndarray:
    if k == 0:
        return mu - sigma * np.log1p(-p)
    return mu + sigma * np.expm1(-k * np.log1p(-p)) / k


def tail_length(S: int) -> int:
    """Draws in the Pareto-fitted tail: :math:`3\\sqrt S` (``S > 225``), else :math:`S/5`."""
    return math.floor(3.0 * math.sqrt(S)) if S > 225 else S // 5


def psis_log_weights(log_ratios: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pareto-smoothed, normalised log importance weights, one column per observation.

    The :math:`M` (:func:`tail_length`) largest ratios are replaced by the expected order
    statistics of the generalised Pareto distribution fitted to their exceedances over the next
    largest ratio, capped at the largest raw ratio (the algorithm of ``loo`` 2.x and ArviZ;
    relative efficiency 1).

    Parameters
    ----------
    log_ratios : numpy.ndarray, shape (S,) or (S, N)
        Log importance ratios per draw (for leave-one-out: minus the observation's
        log-likelihood at each draw).

    Returns
    -------
    log_w : numpy.ndarray, same shape
        Log weights, ``logsumexp`` 0 per column.
    khat : numpy.ndarray, shape () or (N,)
        The Pareto shape of each column's tail (``nan`` when the tail is not Pareto-like, then
        the raw weights are kept).

    Raises
    ------
    ValueError
        If there are fewer than 25 draws or a ratio is not finite.
    """
    lr = np.asarray(log_ratios, float)
    one = lr.ndim == 1
    lr = lr[:, None] if one else lr
    S = lr.shape[0]
    if S < 25:
        raise ValueError(f"psis_log_weights: {S} draws; expected at least 25")
    if not np.isfinite(lr).all():
        raise ValueError("psis_log_weights: log ratios must be finite")
    m_tail = tail_length(S)
    out = np.empty_like(lr)
    khat = np.empty(lr.shape[1])
    for j in range(lr.shape[1]):
        x = lr[:, j] - lr[:, j].max()
        order = np.argsort(x)
        tail = order[S - m_tail :]
        cutoff = math.exp(x[order[S - m_tail - 1]])
        k, sigma = gpd_fit(np.exp(x[tail]) - cutoff)
        if np.isfinite(k) and sigma > 0:
            p = np.arange(0.5, m_tail) / m_tail
            with np.errstate(divide="ignore"):
                smoothed = np.log(_gpd_quantile(p, k, sigma, cutoff))
            x[tail] = np.minimum(smoothed, x[tail].max())
        out[:, j] = x - logsumexp(x)
        khat[j] = k
    return (out[:, 0], khat[0]) if one else (out, khat)


def weighted_quantiles(x: np.ndarray, w: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles ``q`` of the distribution putting weight ``w`` on the values ``x``.

    Parameters
    ----------
    x, w : numpy.ndarray, shape (S,)
        Values and non-negative weights (normalised here).
    q : array_like
        Probabilities.

    Returns
    -------
    numpy.ndarray
        The smallest values whose weighted CDF reaches each ``q`` (interpolated between the
        midpoints of the sorted values' weights).
    """
    x, w = np.asarray(x, float), np.asarray(w, float)
    order = np.argsort(x)
    xs, ws = x[order], w[order] / w.sum()
    cdf = np.cumsum(ws) - 0.5 * ws
    return np.interp(np.asarray(q, float), cdf, xs)


def randomised_pit(below: np.ndarray, equal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Randomised PIT ``below + V * equal``, ``V ~ U(0, 1)`` per value.

    Parameters
    ----------
    below, equal : numpy.ndarray
        :math:`P(X < y)` and :math:`P(X = y)` under the predictive (0 for a continuous one;
        for a censored time :math:`F(c)` and :math:`1 - F(c)`).
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        PIT values in [0, 1].
    """
    below, equal = np.asarray(below, float), np.asarray(equal, float)
    return np.clip(below + rng.uniform(size=below.shape) * equal, 0.0, 1.0)


@dataclass(frozen=True)
class PitSummary:
    """PIT values of a set of figures against the uniform distribution.

    Attributes
    ----------
    n : int
        Figures.
    counts : tuple of int
        Figures per equal-width PIT bin (:data:`PIT_BINS` bins).
    expected : float
        Figures expected per bin if the PITs are uniform.
    chi2_p : float
        Pearson chi-square p-value of the bin counts against uniform (``bins - 1`` degrees of
        freedom).
    ks_p : float
        Exact two-sided Kolmogorov-Smirnov p-value against U(0, 1).
    central : dict of float to float
        Share of figures inside the central predictive interval of each level in
        :data:`CENTRAL_LEVELS` (:math:`|PIT - 1/2| \\le level/2`).
    """

    n: int
    counts: tuple[int, ...]
    expected: float
    chi2_p: float
    ks_p: float
    central: dict[float, float]

    def sentence(self) -> str:
        """One line: figures, bin counts against expected, p-values, central coverage."""
        cov = ", ".join(f"{self.central[q]:.0%} in central {q:.0%}" for q in CENTRAL_LEVELS)
        return (
            f"{self.n} figures, PIT bins {list(self.counts)} (expected {self.expected:.1f} "
            f"each), KS p = {self.ks_p:.2f}, chi-square p = {self.chi2_p:.2f}; {cov}"
        )


def pit_summary(pit: np.ndarray, bins: int = PIT_BINS) -> PitSummary:
    """Histogram, uniformity tests and central coverage of PIT values.

    The tests treat the PITs as independent. Leave-one-out PITs of one model share its
    parameters, so they are not exactly independent; the p-values are a screen, not an exact
    test (``docs/validation.md``).

    Parameters
    ----------
    pit : array_like
        PIT values in [0, 1] (NaN values are dropped).
    bins : int
        Equal-width bins of the histogram and of the chi-square test.

    Returns
    -------
    PitSummary

    Raises
    ------
    ValueError
        If no PIT value is finite or one lies outside [0, 1].
    """
    p = np.asarray(pit, float)
    p = p[~np.isnan(p)]
    if not len(p):
        raise ValueError("pit_summary: no PIT values")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("pit_summary: PIT values must lie in [0, 1]")
    counts = np.histogram(p, bins=bins, range=(0.0, 1.0))[0]
    expected = len(p) / bins
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    return PitSummary(
        n=len(p),
        counts=tuple(int(c) for c in counts),
        expected=expected,
        chi2_p=float(stats.chi2.sf(chi2, bins - 1)),
        ks_p=float(stats.kstest(p, "uniform", method="exact").pvalue),
        central={q: float(np.mean(np.abs(p - 0.5) <= q / 2)) for q in CENTRAL_LEVELS},
    )
