"""Vectorised reducers of the batch path (order statistics, mixture medians, summaries over
draws) for :meth:`Predictor.summaries`; NumPy only. The parameter draws they reduce come from
:mod:`.evaluate`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from netbayes.intervals import Interval

if TYPE_CHECKING:  # pragma: no cover
    pass

from netbayes.predict.inputs import (
    _finite,
)

__all__ = ["DEFAULT_CHUNK_SIZE"]


# ----------------------------------------------------------------------------------------------
# batch summaries (Predictor.summaries)
# ----------------------------------------------------------------------------------------------
DEFAULT_CHUNK_SIZE = 64
"""Distinct patients evaluated together by :meth:`Predictor.summaries`."""
DEFAULT_THREADS = 2
"""Threads of :meth:`Predictor.summaries` (at most the machine's cores): each evaluates its own
chunks, so two double the work arrays' memory."""
_NEWTON_TOL = 1e-11
_ANY_LINE_TOLERANCE = 1e-7  # the any-line table must be at least this accurate
_NEWTON_MAX_ITER = 100


def _time_label(t: float) -> str:
    """A time in a column name: the shortest decimal that round-trips (12.0 -> "12")."""
    return np.format_float_positional(float(t), trim="-")


def _summarise(iv: Interval, draws: np.ndarray, what: Sequence[str]) -> np.ndarray:
    """Posterior median, mean and interval bounds over the last axis, as ``Interval.describe``.

    Parameters
    ----------
    iv : Interval
    draws : numpy.ndarray, shape (P, Q, S)
        Quantity ``q`` of patient ``p`` per draw; reordered in place (partitioned).
    what : sequence of str
        Names of the Q quantities for the error on non-finite draws.

    Returns
    -------
    numpy.ndarray, shape (P, Q, 4)
        Median, mean, lower and upper bound. An equal-tailed interval combines the order
        statistics ``numpy.median`` and ``numpy.quantile`` use with their arithmetic (the
        order statistics by :func:`_order_statistics`); an HDI is :meth:`Interval.describe`'s.
    """
    P, Q, S = draws.shape
    x = draws.reshape(P * Q, S)
    mean = x.mean(axis=1)
    by_quantity = mean.reshape(P, Q)
    for q in range(Q):  # a non-finite draw makes the mean non-finite
        _finite(what[q], by_quantity[:, q])
    if iv.kind != "eti":
        d = iv.describe(x, axis=1)
        lo, hi = iv.columns
        res = np.stack([d["median"], mean, d[lo], d[hi]], axis=-1)
        return res.reshape(P, Q, 4)
    # numpy.quantile's "linear" method: virtual index (n - 1) q, lerp of its two neighbours
    q = np.asarray(((1.0 - iv.prob) / 2.0, (1.0 + iv.prob) / 2.0))
    virtual = (S - 1) * q
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, S - 1)
    gamma = virtual - below
    half = S // 2
    mid = [half - 1, half] if S % 2 == 0 else [half]
    kth = np.unique(np.concatenate([mid, below, above]))
    stats = np.empty((P, Q, len(kth)))
    for j in range(Q):
        stats[:, j] = _order_statistics(draws[:, j], kth)
    order = stats.reshape(P * Q, len(kth))
    pos = {int(k): i for i, k in enumerate(kth)}
    res = np.empty((P * Q, 4))
    if S % 2 == 0:  # numpy.median: the mean of the two central order statistics
        np.add(order[:, pos[half - 1]], order[:, pos[half]], out=res[:, 0])
        res[:, 0] /= 2.0
    else:
        res[:, 0] = order[:, pos[half]]
    res[:, 1] = mean
    for i in range(2):
        a, b, g = order[:, pos[int(below[i])]], order[:, pos[int(above[i])]], gamma[i]
        diff = b - a
        res[:, 2 + i] = b - diff * (1.0 - g) if g >= 0.5 else a + diff * g
    return res.reshape(P, Q, 4)


_CLUSTER_GAP = 8  # ranks this close share one candidate bracket
_CANDIDATE_SHARE = 0.6  # above this share of the draws, partition whole rows


def _order_statistics(x: np.ndarray, kth: np.ndarray) -> np.ndarray:
    """Exact order statistics ``kth`` (sorted ranks) of each row of ``x``, shape (P, S)
    (rows may be strided; ``x`` may be reordered in place).

    Rows of one chunk are similar patients, so most draws can be placed below or above a
    rank for every row at once: with :math:`l_s = \\min_p x_{ps}` and :math:`u_s = \\max_p
    x_{ps}`, the r-th order statistic of every row lies in :math:`[L, U]`, L the r-th smallest
    :math:`l_s` and U the r-th smallest :math:`u_s` (order statistics are monotone in the
    values). Draws with :math:`u_s < L` are below it in every row and draws with
    :math:`l_s > U` above, so it is the (r - #below)-th order statistic of the remaining
    columns, which alone are partitioned (whole rows when they are most of them).
    Non-negative values are partitioned as their IEEE bit patterns, which order the same
    and compare faster.
    """
    P, S = x.shape
    lo, hi = x.min(axis=0), x.max(axis=0)
    clusters: list[list[int]] = []
    for r in kth.tolist():
        if clusters and r - clusters[-1][-1] <= _CLUSTER_GAP:
            clusters[-1].append(r)
        else:
            clusters.append([r])
    keep = np.zeros(S, dtype=bool)
    below = []
    lo_sorted = np.partition(lo, [c[0] for c in clusters])
    hi_sorted = np.partition(hi, [c[-1] for c in clusters])
    for c in clusters:
        under = hi < lo_sorted[c[0]]  # below rank c[0] in every row
        keep |= ~(under | (lo > hi_sorted[c[-1]]))
        below.append(under)
    cols = np.flatnonzero(keep)
    if P == 1 or len(cols) > _CANDIDATE_SHARE * S:
        sub, ranks = x, kth  # partitioned in place
    else:
        sub = x[:, cols]
        ranks = np.array(
            [
                r - int(np.count_nonzero(u & ~keep))
                for c, u in zip(clusters, below, strict=True)
                for r in c
            ]
        )
    bits = sub.view(np.int64)
    if np.any(bits < 0):  # a negative number (or -0.0): select on the floats
        sub.partition(ranks, axis=1)
        return sub[:, ranks]
    bits.partition(ranks, axis=1)  # non-negative floats order as their bit patterns
    return bits[:, ranks].view(np.float64)


def _units(keys: np.ndarray, n_group: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``keys`` and each row's unit, ordered by group (the first
    ``n_group`` columns) and, within a group, along a Z-order curve of the last two columns
    (the continuous covariates), so that a chunk of consecutive units holds similar patients
    (see :func:`_order_statistics`)."""
    units, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    code = np.zeros(len(units), dtype=np.int64)
    groups = units[:, :n_group]
    for a, z in _runs(groups):
        for j, col in enumerate((units[a:z, -2], units[a:z, -1])):
            span = col.max() - col.min()
            q = np.zeros(z - a, dtype=np.int64)
            if span > 0:
                q = ((col - col.min()) / span * 1023.0).astype(np.int64)
            for bit in range(10):
                code[a:z] |= ((q >> bit) & 1) << (2 * bit + j)
    order = np.lexsort((code, *groups.T[::-1]))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return units[order], rank[inverse]


def _each_chunk(n: int, chunk: int, threads: int, run: Callable[[int, int], None]) -> None:
    """``run(start, worker)`` for every chunk start in ``range(0, n, chunk)``, on ``threads``
    threads (NumPy releases the GIL in the array work); ``worker`` (0 .. threads - 1) says
    whose work buffers to use. The chunks are independent, so the results do not depend on
    the number of threads."""
    starts = range(0, n, chunk)
    if threads <= 1 or len(starts) < 2:
        for c0 in starts:
            run(c0, 0)
        return
    import itertools
    import threading
    from concurrent.futures import ThreadPoolExecutor

    ids = itertools.count()
    mine = threading.local()

    def task(c0: int) -> None:
        if not hasattr(mine, "worker"):
            mine.worker = next(ids)  # itertools.count is atomic under the GIL
        run(c0, mine.worker)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        for f in [pool.submit(task, c0) for c0 in starts]:
            f.result()  # the first error, as the serial loop would raise it


def _runs(keys: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of equal rows of ``keys`` (sorted rows: the groups)."""
    change = np.any(keys[1:] != keys[:-1], axis=1)
    starts = np.flatnonzero(np.r_[True, change])
    return list(zip(starts.tolist(), [*starts[1:].tolist(), len(keys)], strict=True))


def _weibull_sf_into(t: float, k: np.ndarray, lam: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`netbayes.formulas.survival.weibull_sf`, :math:`\\exp(-(t/\\lambda)^k)` with the same
    operations, written into ``out`` (no temporaries)."""
    np.power(np.divide(t, lam, out=out), k, out=out)
    return np.exp(np.negative(out, out=out), out=out)


def _mixture_median(
    k: np.ndarray, loglam: Sequence[np.ndarray], w: np.ndarray, log2_root: np.ndarray
) -> np.ndarray:
    r"""Median of a Weibull mixture per patient and draw: the root of
    :math:`\sum_j w_j \exp(-e^{k(u - \log\lambda_j)}) = 1/2` in :math:`u = \log t`.

    Safeguarded Newton (a bisection step whenever Newton leaves the bracket of the component
    medians, which always holds the root; :math:`\log t` makes the function smooth and
    Newton's steps good), to the root :func:`netbayes.formulas.survival.mixture_median` finds
    by bisection: the iteration stops once a Newton step is below 1e-11 (relative), after
    which the error is of its square.

    Parameters
    ----------
    k : numpy.ndarray, shape (S,)
        Weibull shape per draw.
    loglam : sequence of numpy.ndarray, each (P, S)
        Log scale per component.
    w : numpy.ndarray, shape (J,)
        Component weights (> 0, sum 1).
    log2_root : numpy.ndarray, shape (S,)
        :math:`(\log 2)^{1/k}` (the component medians are :math:`\lambda_j (\log 2)^{1/k}`).

    Returns
    -------
    numpy.ndarray, shape (P, S)
    """
    log_root = np.log(log2_root)
    logmed = [L + log_root for L in loglam]  # log of the component medians
    shape = logmed[0].shape
    lo = np.minimum.reduce(logmed).ravel()
    hi = np.maximum.reduce(logmed).ravel()
    u = np.zeros(lo.size)
    for v, m in zip(w, logmed, strict=True):
        u += v * m.ravel()
    kk = np.ascontiguousarray(np.broadcast_to(k, shape)).ravel()
    comps = [np.ascontiguousarray(np.broadcast_to(x, shape)).ravel() for x in loglam]
    out = u.copy()
    pos = np.arange(u.size)  # where the working elements go in ``out``
    for _ in range(_NEWTON_MAX_ITER):
        f = np.full(u.size, -0.5)
        fp = np.zeros(u.size)
        for Lj, wj in zip(comps, w, strict=True):
            e = np.subtract(u, Lj)
            e *= kk
            np.exp(e, out=e)  # (t / lambda_j)^k
            sj = np.exp(-e)
            sj *= wj
            f += sj
            sj *= e
            fp -= sj
        fp *= kk  # d/du of S(e^u) - 1/2
        np.copyto(lo, u, where=f > 0)  # S > 1/2: the median is later
        np.copyto(hi, u, where=f < 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = u - f / fp
        outside = ~np.isfinite(new) | (new < lo) | (new > hi)
        np.copyto(new, 0.5 * (lo + hi), where=outside)
        np.copyto(new, u, where=f == 0)
        going = outside | (np.abs(new - u) > _NEWTON_TOL * (1.0 + np.abs(u)))
        u = new
        out[pos] = u
        n_going = int(np.count_nonzero(going))
        if n_going == 0:
            break
        if n_going < u.size // 2:  # work on the unconverged ones only
            u, lo, hi, kk, pos = u[going], lo[going], hi[going], kk[going], pos[going]
            comps = [Lj[going] for Lj in comps]
    return np.exp(out).reshape(shape)
