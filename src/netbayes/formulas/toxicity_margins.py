r"""Exact likelihoods of published toxicity margins (NumPy; issue 16, deliverable 4).

Two published summaries count the *same* patients several times:

* Rotterdam Table 6 gives, per phase of :math:`n` patients, the number :math:`K_l` with
  grade :math:`\ge` III in each cell line :math:`l` and the number :math:`W` with grade
  :math:`\ge` III in any line. Each patient has one of 8 patterns
  :math:`S \subseteq \{1, 2, 3\}` (the lines at grade :math:`\ge` III), with probability
  :math:`\pi_S = E_u\bigl[\prod_{l \in S} p_l(u) \prod_{l \notin S} (1 - p_l(u))\bigr]`,
  :math:`p_l(u) = 1 - \Phi(c_{l3} - \eta - u)`; the pattern counts :math:`N_S` are
  multinomial(:math:`n, \pi`) and the published figures are linear margins of them. The exact
  probability of the four margins is the sum of the multinomial over every table of pattern
  counts consistent with them (:func:`margin_tables`, :func:`log_margins_pmf`).
* The 188Re-HEDP per-cycle table counts 11 cycles of 6 patients; given each patient's
  propensity the cycles are independent categorical draws with different probabilities, and
  the count vector is Poisson-multinomial (:func:`log_poisson_multinomial`).

Enumerating the tables
----------------------
With :math:`T = \sum_l K_l`, the counts satisfy :math:`N_\emptyset = n - W`,
:math:`N_{12} + N_{13} + N_{23} + 2 N_{123} = T - W` and
:math:`N_l = K_l - N_{123} - \sum_{m \ne l} N_{lm}`. So the tables are indexed by
:math:`N_{123}` and a split of :math:`T - W - 2N_{123}` among the three pairs: about
:math:`(T - W)^3 / 12` of them (a few hundred for the published phases).

The :math:`\pi_S` use the same quadrature over :math:`u` as every other toxicity formula
(:func:`netbayes.formulas.toxicity.normal_quadrature`). ``docs/toxicity_margins.md`` derives
the likelihood and proves it by simulation.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import gammaln, log_ndtr, logsumexp

from netbayes.formulas.toxicity import DEFAULT_N_NODES, normal_quadrature

__all__ = [
    "MAX_TABLES",
    "PATTERNS",
    "count_lattice",
    "log_margins_pmf",
    "log_poisson_multinomial",
    "margin_tables",
    "pattern_logprobs",
]

PATTERNS: NDArray[np.int64] = np.array(list(itertools.product((0, 1), repeat=3)), dtype=np.int64)
"""The 8 patterns of grade >= III indicators over the three cell lines (rows), in
``itertools.product`` order: ``(0, 0, 0)`` first, ``(1, 1, 1)`` last."""

MAX_TABLES = 2_000_000
"""Most pattern-count tables one set of margins may have (:func:`margin_tables` refuses
more: the likelihood would be too slow to sample)."""

_PAIR_COLS = {(0, 1): 6, (0, 2): 5, (1, 2): 3}  # rows of PATTERNS: (1,1,0), (1,0,1), (0,1,1)
_SINGLE_COLS = (4, 2, 1)  # (1,0,0), (0,1,0), (0,0,1)


def _check_count(name: str, value: float, low: int, high: int) -> int:
    v = float(value)
    if not (np.isfinite(v) and v == int(v) and low <= v <= high):
        raise ValueError(f"{name}={value:g}; expected an integer in [{low}, {high}]")
    return int(v)


def margin_tables(
    n: int, k_lines: ArrayLike, w_any: int
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    r"""Every table of pattern counts with the given margins, and its multinomial coefficient.

    Parameters
    ----------
    n : int
        Patients in the phase.
    k_lines : array_like, shape (3,)
        Patients with grade >= III in each cell line.
    w_any : int
        Patients with grade >= III in at least one line.

    Returns
    -------
    tables : ndarray of int, shape (T, 8)
        Pattern counts :math:`N_S` (columns in :data:`PATTERNS` order), each row summing to
        ``n`` with margins ``k_lines`` and ``w_any``; ``T = 0`` if the margins are impossible
        (e.g. ``w_any`` above the sum of ``k_lines``).
    log_coef : ndarray, shape (T,)
        :math:`\log(n! / \prod_S N_S!)`.

    Raises
    ------
    ValueError
        A count that is not an integer in its range (naming it), or more than
        :data:`MAX_TABLES` tables.
    """
    n = _check_count("n", n, 0, 10**6)
    k = np.atleast_1d(np.asarray(k_lines, dtype=float))
    if k.shape != (3,):
        raise ValueError(f"k_lines has shape {k.shape}; expected (3,) (one count per cell line)")
    k = [_check_count(f"k_lines[{i}]", v, 0, n) for i, v in enumerate(k)]
    w = _check_count("w_any", w_any, 0, n)
    excess = sum(k) - w
    out = np.zeros((0, 8), dtype=np.int64)
    if excess < 0 or w < max(k):
        return out, np.zeros(0)
    m = np.arange(excess // 2 + 1)
    blocks = []
    for mm in m:
        d = excess - 2 * mm
        a, b = np.meshgrid(np.arange(d + 1), np.arange(d + 1), indexing="ij")
        keep = a + b <= d
        n12, n13 = a[keep], b[keep]
        n23 = d - n12 - n13
        n1 = k[0] - mm - n12 - n13
        n2 = k[1] - mm - n12 - n23
        n3 = k[2] - mm - n13 - n23
        ok = (n1 >= 0) & (n2 >= 0) & (n3 >= 0)
        if not ok.any():
            continue
        t = np.zeros((int(ok.sum()), 8), dtype=np.int64)
        t[:, 0] = n - w
        t[:, _SINGLE_COLS[0]], t[:, _SINGLE_COLS[1]], t[:, _SINGLE_COLS[2]] = n1[ok], n2[ok], n3[ok]
        t[:, _PAIR_COLS[(0, 1)]] = n12[ok]
        t[:, _PAIR_COLS[(0, 2)]] = n13[ok]
        t[:, _PAIR_COLS[(1, 2)]] = n23[ok]
        t[:, 7] = mm
        blocks.append(t)
        if sum(len(x) for x in blocks) > MAX_TABLES:
            raise ValueError(
                f"margins n={n}, k_lines={k}, w_any={w} have more than MAX_TABLES="
                f"{MAX_TABLES} pattern tables; allowed: sum(k_lines) - w_any small enough"
            )
    if not blocks:
        return out, np.zeros(0)
    tables = np.concatenate(blocks)
    log_coef = gammaln(n + 1.0) - gammaln(tables + 1.0).sum(axis=1)
    return tables, log_coef


def pattern_logprobs(
    z3: ArrayLike, sigma_u: ArrayLike, n_nodes: int = DEFAULT_N_NODES
) -> NDArray[np.float64]:
    r"""Log-probabilities :math:`\log \pi_S` of the 8 grade >= III patterns (probit link).

    .. math::

        \pi_S = E_u\Bigl[\prod_{l \in S} \Phi(u - z_l) \prod_{l \notin S} \Phi(z_l - u)\Bigr],
        \qquad u \sim \mathcal N(0, \sigma_u^2),

    with :math:`z_l = c_{l3} - \eta_l` on the conditional (patient-level) scale.

    Parameters
    ----------
    z3 : array_like, shape (..., 3)
        Grade III cutpoint minus linear predictor, per cell line.
    sigma_u : array_like
        Propensity SD, broadcast with the batch shape (...).
    n_nodes : int
        Quadrature nodes.

    Returns
    -------
    ndarray, shape (..., 8)
        In :data:`PATTERNS` order; ``logsumexp`` over the last axis is 0.
    """
    x, w = normal_quadrature(n_nodes)
    z3 = np.asarray(z3, float)
    sig = np.asarray(sigma_u, float)
    zu = z3[..., None] - sig[..., None, None] * x  # (..., 3, K)
    lo, hi = log_ndtr(zu), log_ndtr(-zu)  # log P(< III), log P(>= III)
    terms = np.where(PATTERNS[..., None] == 1, hi[..., None, :, :], lo[..., None, :, :])
    return logsumexp(terms.sum(axis=-2) + np.log(w), axis=-1)


def log_margins_pmf(
    tables: NDArray[np.int64], log_coef: NDArray[np.float64], log_pi: ArrayLike
) -> NDArray[np.float64]:
    r"""Exact :math:`\log P(K_1, K_2, K_3, W)`: a log-sum over the consistent tables.

    :math:`P = \sum_{\text{tables}} n!/\prod_S N_S!\ \prod_S \pi_S^{N_S}`.

    Parameters
    ----------
    tables, log_coef
        From :func:`margin_tables` (rows of several :func:`margin_tables` calls may be stacked
        to sum over alternative readings of the margins).
    log_pi : array_like, shape (..., 8)
        From :func:`pattern_logprobs`.

    Returns
    -------
    ndarray, shape (...)
        ``-inf`` where ``tables`` is empty.
    """
    lp = np.asarray(log_pi, float)
    if len(tables) == 0:
        return np.full(lp.shape[:-1], -np.inf)
    terms = np.where(tables > 0, tables * lp[..., None, :], 0.0).sum(-1) + log_coef
    return logsumexp(terms, axis=-1)


def log_poisson_multinomial(counts: ArrayLike, logp: ArrayLike) -> NDArray[np.float64]:
    r"""Log-probability of category counts of independent units with their own probabilities.

    Unit :math:`j` falls in category :math:`g` with probability :math:`p_{jg}`; the count
    vector's probability is computed by a dynamic programme over units on the states below the
    observed counts (exact).

    Parameters
    ----------
    counts : array_like of int, shape (G,)
        Observed counts; they must sum to the number of units.
    logp : array_like, shape (..., J, G)
        Log category probabilities of each of the ``J`` units.

    Returns
    -------
    ndarray, shape (...)
    """
    c = np.asarray(counts)
    lp = np.asarray(logp, float)
    if c.shape != (lp.shape[-1],) or int(c.sum()) != lp.shape[-2]:
        raise ValueError(
            f"counts={c.tolist()} must have {lp.shape[-1]} categories summing to the "
            f"{lp.shape[-2]} units"
        )
    batch = lp.shape[:-2]
    state = np.full((*batch, *(int(v) + 1 for v in c)), -np.inf)
    state[(..., *([0] * len(c)))] = 0.0
    nb = len(batch)
    for j in range(lp.shape[-2]):
        parts = []
        for g in range(len(c)):
            if c[g] == 0:
                continue
            shifted = np.full_like(state, -np.inf)
            src = [slice(None)] * state.ndim
            dst = [slice(None)] * state.ndim
            src[nb + g] = slice(0, -1)
            dst[nb + g] = slice(1, None)
            shifted[tuple(dst)] = state[tuple(src)]
            parts.append(shifted + lp[(..., j, g, *([None] * len(c)))])
        state = logsumexp(np.stack(parts), axis=0)
    return state[(..., *(int(v) for v in c))]


def count_lattice(counts: ArrayLike) -> dict[str, NDArray]:
    r"""The state space of :func:`log_poisson_multinomial` for several count vectors, flattened.

    For each row :math:`r` of ``counts`` the states are the count vectors :math:`s \le c_r`
    (componentwise); they are stacked into one vector of :math:`M` states, each after its
    predecessors, so that one pass over the states runs every row's dynamic programme (the
    model's 188Re-HEDP term:
    :func:`netbayes.likelihoods.ordinal.poisson_multinomial_lattice_loglik`).

    Parameters
    ----------
    counts : array_like of int, shape (R, G)
        Observed count vectors (e.g. one per cell line over grades 0-IV).

    Returns
    -------
    dict
        ``prev`` (M, G) int: the index of state :math:`s - e_g` (``M``, a sentinel, where
        :math:`s_g = 0`); ``row`` (M,) int: the row of each state; ``init`` (M,): log-probability
        before any unit (0 at each row's zero state, -1e4 elsewhere); ``final`` (R,) int: the
        index of each row's observed count vector.
    """
    c = np.asarray(counts)
    if c.ndim != 2 or np.any(c < 0) or np.any(c != np.round(c)):
        raise ValueError(f"counts={c.tolist()}; expected a 2-D array of non-negative integers")
    c = c.astype(int)
    prev, row, init, final = [], [], [], []
    offset = 0
    for r, cr in enumerate(c):
        shape = tuple(int(v) + 1 for v in cr)
        size = int(np.prod(shape))
        grid = np.stack(np.unravel_index(np.arange(size), shape), -1)  # (size, G)
        p = np.full((size, len(cr)), -1, dtype=np.int64)
        for g in range(len(cr)):
            ok = grid[:, g] > 0
            q = grid[ok].copy()
            q[:, g] -= 1
            p[ok, g] = offset + np.ravel_multi_index(tuple(q.T), shape)
        prev.append(p)
        row.append(np.full(size, r))
        z = np.full(size, -1e4)
        z[0] = 0.0
        init.append(z)
        final.append(offset + size - 1)
        offset += size
    prev_a = np.concatenate(prev)
    prev_a[prev_a < 0] = offset
    return {
        "prev": prev_a,
        "row": np.concatenate(row),
        "init": np.concatenate(init),
        "final": np.array(final, dtype=np.int64),
    }
