r"""Weibull primitives in PyTensor: log-density, log-survival, log-CDF, log-hazard, the
(truncated) median, censored log-likelihood and the Kaplan-Meier median as an order statistic.

The PyTensor half of :data:`netbayes.families.WEIBULL` (imported lazily by it, so that the
NumPy prediction path never imports PyTensor). :mod:`netbayes.likelihoods.survival`
re-exports these names.

Parametrisation
---------------
Shape :math:`k > 0`, scale :math:`\lambda > 0`, cumulative hazard
:math:`H(t) = (t/\lambda)^k`, :math:`S(t) = e^{-H(t)}`,
:math:`f(t) = \frac{k}{t} H(t) e^{-H(t)}`, median :math:`\lambda (\ln 2)^{1/k}`
(``scipy.stats.weibull_min(c=k, scale=lam)``, ``pm.Weibull(alpha=k, beta=lam)``).

Numerics
--------
All terms are computed from :math:`\log H = k(\log t - \log\lambda)`, which never
overflows or underflows for representable ``t``. The log-survival is the closed form
:math:`-H(t)`, exact far into the right tail, and the log-CDF :math:`\log(1 - e^{-H})`
switches to the series :math:`\log H - H/2` when :math:`H < e^{-20}`. Branches selected with
``switch`` use "safe" inputs in the branch not taken, so gradients stay finite.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable

from netbayes.families._pt import TensorLike, _as_float

__all__ = [
    "censored_weibull_loglik",
    "km_median_order_stat_logp",
    "weibull_logcdf",
    "weibull_loghazard",
    "weibull_logpdf",
    "weibull_logsf",
    "weibull_median",
]

_LN2 = math.log(2.0)
_LOG_2PI = math.log(2.0 * math.pi)
# Below log H = -20 (H < 2.1e-9) use log(1 - e^{-H}) = log H - H/2 + H^2/24 - ...;
# the neglected H^2/24 < 2e-19 is far below double precision relative to |log H| >= 1.
_SMALL_LOGH = -20.0


def _log1mexp_neg_from_log(logx: TensorVariable) -> TensorVariable:
    r"""Return :math:`\log(1 - e^{-x})` given :math:`\log x`, accurate for all :math:`x > 0`.

    For :math:`x \ge e^{-20}` uses the stable ``log1mexp``; below, the series
    :math:`\log x - x/2`, which stays finite when :math:`x` underflows to 0.
    """
    small = pt.lt(logx, _SMALL_LOGH)
    logx_big = pt.switch(small, 0.0, logx)  # safe input for the branch not taken
    big = pt.log1mexp(-pt.exp(logx_big))
    tiny = logx - 0.5 * pt.exp(pt.minimum(logx, _SMALL_LOGH))
    return pt.switch(small, tiny, big)


def _safe_logH(t: TensorVariable, k: TensorVariable, lam: TensorVariable):
    """Return ``(positive, t_safe, logH)``: ``t > 0``, t with non-positive entries replaced
    by ``lam`` (so the untaken branch has finite gradients), and
    ``log H(t_safe) = k (log t_safe - log lam)``.
    """
    pos = pt.gt(t, 0.0)
    t_safe = pt.switch(pos, t, lam)
    logH = k * (pt.log(t_safe) - pt.log(lam))
    return pos, t_safe, logH


def _log_cumhaz_lower(
    lower: TensorLike, k: TensorVariable, lam: TensorVariable
) -> tuple[TensorVariable, TensorVariable, TensorVariable]:
    """Return ``(lower, truncated, logH_L)`` with ``logH_L = -inf`` where ``lower <= 0``."""
    lower = _as_float(lower)
    pos, _, logH_L = _safe_logH(lower, k, lam)
    return lower, pos, pt.switch(pos, logH_L, -np.inf)


# ---------------------------------------------------------------------------------------------
# 1. Weibull log-density, log-survival, log-CDF, log-hazard
# ---------------------------------------------------------------------------------------------


def weibull_logsf(t: TensorLike, k: TensorLike, lam: TensorLike) -> TensorVariable:
    r"""Log survival function of the Weibull distribution, in closed form.

    .. math:: \log S(t) = -(t/\lambda)^k \quad (t > 0), \qquad \log S(t) = 0 \quad (t \le 0).

    Computed as :math:`-\exp\{k(\log t - \log\lambda)\}`, never as ``log(1 - CDF)``, so it is
    exact far into the right tail (``t=5000, k=1.5, lam=10`` gives ``-11180.34``).
    ``t = 0`` (e.g. an entry time meaning "no truncation") gives 0 with finite gradients.

    Parameters
    ----------
    t : tensor_like
        Times (any shape; broadcasts with ``k`` and ``lam``).
    k : tensor_like
        Shape, :math:`k > 0`.
    lam : tensor_like
        Scale, :math:`\lambda > 0`.

    Returns
    -------
    TensorVariable
        :math:`\log S(t)`, broadcast shape.
    """
    t, k, lam = _as_float(t), _as_float(k), _as_float(lam)
    pos, _, logH = _safe_logH(t, k, lam)
    return pt.switch(pos, -pt.exp(logH), 0.0)


def weibull_logcdf(t: TensorLike, k: TensorLike, lam: TensorLike) -> TensorVariable:
    r"""Log cumulative distribution function of the Weibull distribution.

    .. math::

        \log F(t) = \log\bigl(1 - e^{-H}\bigr), \quad H = (t/\lambda)^k,

    evaluated as ``log1mexp(-H)`` (i.e. :math:`\log(-\operatorname{expm1}(-H))` for small
    :math:`H` and :math:`\operatorname{log1p}(-e^{-H})` for large :math:`H`) and, for
    :math:`H < e^{-20}`, as the series :math:`\log H - H/2` with
    :math:`\log H = k(\log t - \log\lambda)`, so the left tail is finite and accurate even when
    :math:`H` underflows (e.g. ``t=1e-100, k=8``). The right tail tends to 0 smoothly.
    :math:`\log F(t) = -\infty` for :math:`t \le 0`.

    Parameters
    ----------
    t, k, lam : tensor_like
        Times, shape :math:`k > 0` and scale :math:`\lambda > 0` (broadcast).

    Returns
    -------
    TensorVariable
        :math:`\log F(t)`.
    """
    t, k, lam = _as_float(t), _as_float(k), _as_float(lam)
    pos, _, logH = _safe_logH(t, k, lam)
    return pt.switch(pos, _log1mexp_neg_from_log(logH), -np.inf)


def weibull_logpdf(t: TensorLike, k: TensorLike, lam: TensorLike) -> TensorVariable:
    r"""Log density of the Weibull distribution.

    .. math::

        \log f(t) = \log k - \log t + \log H(t) - H(t)
                  = \log k - \log\lambda + (k-1)\log(t/\lambda) - (t/\lambda)^k,

    for :math:`t > 0`, and :math:`-\infty` for :math:`t \le 0`.

    Parameters
    ----------
    t, k, lam : tensor_like
        Times, shape :math:`k > 0` and scale :math:`\lambda > 0` (broadcast).

    Returns
    -------
    TensorVariable
        :math:`\log f(t)`.
    """
    t, k, lam = _as_float(t), _as_float(k), _as_float(lam)
    pos, t_safe, logH = _safe_logH(t, k, lam)
    return pt.switch(pos, pt.log(k) - pt.log(t_safe) + logH - pt.exp(logH), -np.inf)


def weibull_loghazard(t: TensorLike, k: TensorLike, lam: TensorLike) -> TensorVariable:
    r"""Log hazard of the Weibull distribution.

    .. math:: \log h(t) = \log k - \log t + \log H(t) = \log k - \log\lambda + (k-1)\log(t/\lambda)

    for :math:`t > 0` (:math:`-\infty` for :math:`t \le 0`). Note
    :math:`\log f = \log h + \log S`.

    Parameters
    ----------
    t, k, lam : tensor_like
        Times, shape :math:`k > 0` and scale :math:`\lambda > 0` (broadcast).

    Returns
    -------
    TensorVariable
        :math:`\log h(t)`.
    """
    t, k, lam = _as_float(t), _as_float(k), _as_float(lam)
    pos, t_safe, logH = _safe_logH(t, k, lam)
    return pt.switch(pos, pt.log(k) - pt.log(t_safe) + logH, -np.inf)


def weibull_median(
    k: TensorLike, lam: TensorLike, lower: TensorLike | None = None
) -> TensorVariable:
    r"""Median of the Weibull distribution, optionally left-truncated at ``lower``.

    Untruncated: :math:`m = \lambda(\ln 2)^{1/k}`. Truncated to :math:`t \ge L`:
    :math:`S(m)/S(L) = 1/2 \iff H(m) = H(L) + \ln 2`, so
    :math:`m = \lambda\,\bigl((L/\lambda)^k + \ln 2\bigr)^{1/k}`. ``lower <= 0`` means no
    truncation.

    Parameters
    ----------
    k, lam : tensor_like
        Shape and scale.
    lower : tensor_like, optional
        Left-truncation point :math:`L` (broadcast); ``None`` for no truncation.

    Returns
    -------
    TensorVariable
        The (truncated) median.
    """
    k, lam = _as_float(k), _as_float(lam)
    H_m = _ln2_plus_HL(k, lam, lower)
    return lam * H_m ** (1.0 / k)


def _ln2_plus_HL(k: TensorVariable, lam: TensorVariable, lower: TensorLike | None):
    """Cumulative hazard at the (truncated) median: ``ln 2 + H(L)`` (``H(L)=0`` if no L)."""
    if lower is None:
        return pt.as_tensor_variable(_LN2) + pt.zeros_like(k * lam)
    _, _, logH_L = _log_cumhaz_lower(lower, k, lam)
    return _LN2 + pt.exp(logH_L)


# ---------------------------------------------------------------------------------------------
# 2. Individual right-censored (and left-truncated) times
# ---------------------------------------------------------------------------------------------


def censored_weibull_loglik(
    t: TensorLike,
    event: TensorLike,
    k: TensorLike,
    lam: TensorLike,
    entry: TensorLike | None = None,
) -> TensorVariable:
    r"""Elementwise log-likelihood of right-censored, optionally left-truncated Weibull times.

    .. math::

        \ell_i = \delta_i \log h(t_i) + \log S(t_i) - \log S(a_i)
               = \delta_i \log f(t_i) + (1 - \delta_i)\log S(t_i) - \log S(a_i),

    with event indicator :math:`\delta_i \in \{0, 1\}` (1 = progression/death observed,
    0 = censored at :math:`t_i`) and entry time :math:`a_i` (delayed entry / selection on
    :math:`T \ge a_i`; :math:`\log S(a_i) = (a_i/\lambda)^k`). ``entry=None`` or ``entry=0``
    means no truncation. Observations with :math:`t_i < a_i` are impossible and get
    :math:`-\infty`.

    Parameters
    ----------
    t : tensor_like
        Observed times (event or censoring), :math:`t > 0`.
    event : tensor_like
        Event indicators (bool or 0/1); nonzero means an observed event.
    k, lam : tensor_like
        Weibull shape and scale (broadcast with ``t``, e.g. per-patient scales).
    entry : tensor_like, optional
        Left-truncation (entry) times, broadcast with ``t``.

    Returns
    -------
    TensorVariable
        Elementwise log-likelihood (sum it yourself).
    """
    t, k, lam = _as_float(t), _as_float(k), _as_float(lam)
    event = pt.as_tensor_variable(event)
    ll = pt.switch(pt.neq(event, 0), weibull_loghazard(t, k, lam), 0.0) + weibull_logsf(t, k, lam)
    if entry is not None:
        entry = _as_float(entry)
        ll = pt.switch(pt.ge(t, entry), ll - weibull_logsf(entry, k, lam), -np.inf)
    return ll


# ---------------------------------------------------------------------------------------------
# 3. Published Kaplan-Meier median as an order statistic
# ---------------------------------------------------------------------------------------------


def km_median_order_stat_logp(
    median: TensorLike,
    n: TensorLike,
    k: TensorLike,
    lam: TensorLike,
    lower: TensorLike | None = None,
    convention: Literal["ceil", "mid"] = "ceil",
) -> TensorVariable:
    r"""Log density of a published (uncensored) Kaplan-Meier median, as an order statistic.

    With no censoring the Kaplan-Meier median, defined as the smallest :math:`t` with
    :math:`\hat S_{KM}(t) \le 1/2`, is the :math:`r`-th order statistic :math:`T_{(r)}`,
    :math:`r = \lceil n/2 \rceil`, of the :math:`n` survival times. If the times are iid with
    CDF :math:`F`, density :math:`f`,

    .. math::

        \log p(m) = \log\frac{n!}{(r-1)!\,(n-r)!} + (r-1)\log F(m) + (n-r)\log S(m) + \log f(m),

    with the combinatorial term computed as
    :math:`\log\Gamma(n+1) - \log\Gamma(r) - \log\Gamma(n-r+1)`. Equivalently
    :math:`F(T_{(r)}) \sim \mathrm{Beta}(r, n-r+1)`. For :math:`n = 1` this is :math:`f`.

    **Censoring is ignored**: the term treats the published median as if no patient was
    censored before it. Censoring before the median widens its sampling distribution, so
    this term is somewhat over-confident for heavily censored series.

    Conventions. ``convention="ceil"`` (default) uses :math:`r = \lceil n/2\rceil`, which is
    exact for odd :math:`n` for every software. For even :math:`n` the definition above gives
    :math:`T_{(n/2)}` in exact arithmetic, but lifelines computes
    :math:`\hat S_{KM}` as ``exp(cumsum(log(1 - d/n)))``, which for some even :math:`n`
    (6, 8, 14, 18, 20, 44, ...) lands at ``0.5000000000000001`` after :math:`n/2` deaths
    and then reports :math:`T_{(n/2+1)}`; R's ``survfit`` reports the midpoint of
    :math:`T_{(n/2)}` and :math:`T_{(n/2+1)}` when :math:`\hat S_{KM}` is exactly 1/2 on an
    interval. ``convention="mid"`` uses the fractional rank :math:`r = (n+1)/2` in the
    same formula (:math:`F(m) \sim \mathrm{Beta}((n+1)/2, (n+1)/2)`): identical for odd
    :math:`n`, and a smooth compromise between the two neighbouring order statistics for
    even :math:`n` (the difference is :math:`O(n^{-1/2})` of the median's SE).

    Left truncation. If ``lower`` (:math:`L`) is given, the :math:`n` times are iid from the
    Weibull truncated to :math:`t \ge L` (e.g. a previous-treatment PFS among patients
    selected for it being :math:`\ge L`):
    :math:`S_L(t) = S(t)/S(L) = e^{-(H(t) - H(L))}`, :math:`F_L = 1 - S_L`,
    :math:`f_L(t) = f(t)/S(L)`, and the density is :math:`-\infty` for :math:`m < L`.
    :math:`\log F_L` is computed from :math:`\log(H(t) - H(L))` so it is accurate just above
    :math:`L`. ``lower <= 0`` means no truncation.

    Parameters
    ----------
    median : tensor_like
        Published median(s).
    n : tensor_like
        Number of patients behind each median (integer-valued, :math:`\ge 1`).
    k, lam : tensor_like
        Weibull shape and scale.
    lower : tensor_like, optional
        Left-truncation threshold :math:`L`.
    convention : {"ceil", "mid"}
        Rank of the order statistic: :math:`\lceil n/2\rceil` or :math:`(n+1)/2`.

    Returns
    -------
    TensorVariable
        Log density of the median(s), broadcast shape.
    """
    m, n, k, lam = _as_float(median), _as_float(n), _as_float(k), _as_float(lam)
    if convention == "ceil":
        r = pt.ceil(n / 2.0)
    elif convention == "mid":
        r = (n + 1.0) / 2.0
    else:
        raise ValueError(f"convention must be 'ceil' or 'mid', got {convention!r}")
    log_comb = pt.gammaln(n + 1.0) - pt.gammaln(r) - pt.gammaln(n - r + 1.0)

    pos, _, logH_m = _safe_logH(m, k, lam)
    logf = weibull_logpdf(m, k, lam)
    if lower is None:
        logF = _log1mexp_neg_from_log(logH_m)
        logS = -pt.exp(logH_m)
        valid = pos
    else:
        lower, _, logH_L = _log_cumhaz_lower(lower, k, lam)
        valid = pt.and_(pos, pt.ge(m, lower))
        # log(H(m) - H(L)) = log H(m) + log(1 - exp(log H(L) - log H(m))); safe where invalid
        u = pt.switch(valid, logH_L - logH_m, -1.0)
        logD = logH_m + pt.log1mexp(pt.minimum(u, 0.0))
        logF = _log1mexp_neg_from_log(logD)
        logS = -pt.exp(logD)
        logf = logf + pt.exp(logH_L)  # f / S(L)
    term_F = pt.switch(pt.gt(r, 1.0), (r - 1.0) * logF, 0.0)
    term_S = pt.switch(pt.gt(n, r), (n - r) * logS, 0.0)
    out = log_comb + term_F + term_S + logf
    return pt.switch(valid, out, -np.inf)
