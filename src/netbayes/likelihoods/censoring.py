r"""Censoring before a published Kaplan-Meier median: an effective sample size from Greenwood.

A published KM median and its SE are calibrated in the survival model through the median as an
order statistic of :math:`n` times and the asymptotic SE :math:`\sqrt{S(1-S)/n}/f(m)`. Both
ignore censoring before the median. This module supplies the correction (issue 16; the
derivation is in ``docs/censoring.md``):

Greenwood's asymptotic variance of the KM estimate at time :math:`t`, with :math:`G(u)` the
probability of still being under follow-up at :math:`u` (independent censoring), is

.. math::

    \operatorname{Var}\hat S(t) \approx \frac{S(t)^2}{n} \int_0^t \frac{h(u)}{S(u) G(u)}\,du
    = \frac{S(t)^2}{n} \int_0^t \frac{f(u)}{S(u)^2 G(u)}\,du ,

which is :math:`S(1-S)/n` for :math:`G \equiv 1` (:math:`\int_0^t f/S^2 = 1/S(t) - 1`). The
effective sample size is the number of uncensored patients with the same variance,

.. math::

    n_{eff} = \frac{S(1-S)}{\operatorname{Var}\hat S(t)} = \frac{n}{1 + R},\qquad
    R = \frac{S(t)}{F(t)} \int_0^t \Bigl(\frac{1}{G(u)} - 1\Bigr) \frac{f(u)}{S(u)^2}\,du \ge 0,

(at the median, :math:`S = F = 1/2` and :math:`n_{eff} = n / \int_0^m h/(SG)`). Writing the
excess over :math:`G \equiv 1` makes :math:`R` exactly 0 without censoring, so the corrected
terms reduce to the old ones. :math:`R` is evaluated at the *published* median :math:`\hat m`
(the time at which the paper's Greenwood variance was computed) by Gauss-Legendre quadrature on
:math:`[a, \hat m]`, :math:`a` the larger of a left-truncation point and the time before
which :math:`G = 1`. The nodes and :math:`G` at them depend on the data only, so the model
evaluates only its own :math:`\log f` and :math:`\log S` at fixed times (any family, any
mixture), with finite gradients.

Safe bound. :math:`1/G` is not integrable where :math:`G \to 0` (uniform accrual at
:math:`3F/2`). :math:`G` is floored at :math:`1/n` per row: fewer than one patient expected
under follow-up cannot carry a KM curve, and the floor bounds
:math:`R \le (n - 1)`, i.e. :math:`n_{eff} \ge 1` (since :math:`\frac{S}{F}\int_0^{t}
f/S^2 = 1`).

Follow-up. :math:`G` comes from a row's reported median follow-up :math:`F` (reverse KM: the
median of the potential follow-up :math:`C`) and an accrual assumption (:data:`ACCRUALS`):
``"uniform"`` (default): :math:`C \sim U(F/2, 3F/2)`, administrative censoring after uniform
accrual over a period :math:`F` with a minimum follow-up :math:`F/2`; ``"exponential"``:
:math:`C \sim \mathrm{Exp}` with median :math:`F` (constant loss to follow-up from time 0, the
pessimistic sensitivity check).

The order statistic generalised to a non-integer :math:`n_{eff}`
(:func:`km_median_neff_logp`): :math:`F(\hat m) \sim \mathrm{Beta}(\alpha, \beta)` with
:math:`\alpha = 1 + (r-1)s`, :math:`\beta = 1 + (n-r)s`, :math:`s = (n_{eff}-1)/(n-1)`,
:math:`r = \lceil n/2\rceil`: the :math:`r`-th order statistic of :math:`n` when
:math:`n_{eff} = n`, and :math:`\mathrm{Beta}(a, a)`, :math:`a = (n_{eff}+1)/2`, for odd
:math:`n`; :math:`\alpha + \beta = n_{eff} + 1`, so :math:`\operatorname{Var} F(\hat m)
\approx 1/(4 (n_{eff} + 2))`, the Greenwood variance.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

__all__ = [
    "ACCRUALS",
    "CENSORING",
    "censoring_excess",
    "followup_survival",
    "greenwood_nodes",
    "km_median_neff_logp",
    "n_eff_ratio",
]

ACCRUALS: tuple[str, ...] = ("uniform", "exponential")
"""Accrual assumptions turning a median follow-up :math:`F` into the follow-up law :math:`G`:
``"uniform"`` :math:`C \\sim U(F/2, 3F/2)`; ``"exponential"`` median :math:`F`."""
CENSORING: tuple[str, ...] = ("none", "followup")
"""Censoring treatments of the summary terms: ``"none"`` (the order statistic of :math:`n`,
the asymptotic SE) or ``"followup"`` (:math:`n_{eff}` from the row's follow-up)."""
N_NODES = 24
"""Gauss-Legendre nodes of the Greenwood excess integral (relative error below 1e-6 against
adaptive quadrature over the shapes and follow-up ratios of ``tests/test_censoring.py``)."""
_MAX_EXPONENT = 700.0  # exp(700) ~ 1e304: a guard; the exponent is bounded by log h(u) in use


def check_accrual(accrual: str) -> str:
    """Return ``accrual`` if it is one of :data:`ACCRUALS`, else raise a ValueError naming it."""
    if accrual not in ACCRUALS:
        raise ValueError(f"accrual={accrual!r} is not allowed; expected one of {ACCRUALS}")
    return accrual


def followup_survival(t: Any, followup: Any, accrual: str = "uniform") -> np.ndarray:
    r"""Probability :math:`G(t) = P(C > t)` of still being under follow-up at time ``t``.

    Parameters
    ----------
    t : array_like
        Times (months) since the start of the line.
    followup : array_like
        Median potential follow-up :math:`F > 0` (months; broadcast with ``t``).
    accrual : {"uniform", "exponential"}
        ``"uniform"``: :math:`C \sim U(F/2, 3F/2)`, :math:`G = \mathrm{clip}(3/2 - t/F, 0, 1)`;
        ``"exponential"``: :math:`G = 2^{-t/F}`.

    Returns
    -------
    numpy.ndarray
        :math:`G(t)` in :math:`[0, 1]`.
    """
    check_accrual(accrual)
    t, f = np.broadcast_arrays(np.asarray(t, float), np.asarray(followup, float))
    if accrual == "uniform":
        return np.clip(1.5 - t / f, 0.0, 1.0)
    return np.exp2(-np.maximum(t, 0.0) / f)


def followup_start(followup: Any, accrual: str = "uniform") -> np.ndarray:
    """Time before which :math:`G = 1` (nobody censored yet): :math:`F/2` (uniform), 0."""
    check_accrual(accrual)
    f = np.asarray(followup, float)
    return 0.5 * f if accrual == "uniform" else np.zeros_like(f)


def greenwood_nodes(
    median: Any,
    followup: Any,
    n: Any,
    lower: Any = 0.0,
    accrual: str = "uniform",
    n_nodes: int = N_NODES,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Quadrature nodes and weights of the Greenwood excess integral, per row (data only).

    :math:`R = \frac{S(\hat m)}{F(\hat m)}\sum_i c_i\,f(t_i)/S(t_i)^2` with Gauss-Legendre nodes
    :math:`t_i` on :math:`[a, \hat m]`, :math:`a = \max(L, t_G)` (:math:`t_G` from
    :func:`followup_start`) and :math:`c_i = w_i (1/\max(G(t_i), 1/n) - 1)`. Rows without a
    follow-up (NaN), or whose median is not past :math:`a`, get :math:`c = 0` (no correction)
    and nodes at :math:`\hat m` (finite values for the model to evaluate).

    Parameters
    ----------
    median : array_like, shape (R,)
        Published medians :math:`\hat m` (> 0 where a follow-up is given).
    followup : array_like, shape (R,)
        Median follow-up :math:`F` (months); NaN: no correction for that row.
    n : array_like, shape (R,)
        Patients per row (the floor :math:`G \ge 1/n`).
    lower : array_like, shape (R,) or scalar
        Left-truncation point of the row's law (0: none); no events before it.
    accrual : {"uniform", "exponential"}
        See :func:`followup_survival`.
    n_nodes : int
        Gauss-Legendre nodes per row.

    Returns
    -------
    t, c : numpy.ndarray, shape (R, n_nodes)
        Node times and excess weights :math:`c_i \ge 0`.

    Raises
    ------
    ValueError
        Naming the argument, its value and what is allowed.
    """
    check_accrual(accrual)
    if int(n_nodes) < 2:
        raise ValueError(f"n_nodes={n_nodes!r} is not allowed; expected an integer >= 2")
    m, f, nn, low = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v, float)) for v in
                                          (median, followup, n, lower)))  # fmt: skip
    has_f = ~np.isnan(f)
    if (has_f & ~(f > 0)).any() or np.isinf(f).any():
        bad = float(f[(has_f & ~(f > 0)) | np.isinf(f)][0])
        raise ValueError(f"followup={bad!r} is not allowed; expected a finite time > 0 or NaN")
    if not (np.isfinite(nn) & (nn >= 1)).all():
        raise ValueError(f"n={float(nn[~(np.isfinite(nn) & (nn >= 1))][0])!r} is not allowed; "
                         "expected a finite number >= 1")  # fmt: skip
    a = np.maximum(
        np.nan_to_num(low), np.where(has_f, followup_start(np.where(has_f, f, 1.0), accrual), 0.0)
    )
    use = has_f & np.isfinite(m) & (m > a)
    x, w = np.polynomial.legendre.leggauss(int(n_nodes))
    half = np.where(use, 0.5 * (m - a), 0.0)[:, None]
    safe_m = np.where(np.isfinite(m) & (m > 0), m, 1.0)[:, None]
    t = np.where(use[:, None], a[:, None] + half * (x + 1.0), safe_m)
    g = followup_survival(t, np.where(has_f, f, 1.0)[:, None], accrual)
    g = np.maximum(g, 1.0 / nn[:, None])
    c = np.where(use[:, None], half * w * (1.0 / g - 1.0), 0.0)
    return t, c


def censoring_excess(
    log_f_nodes: Any, log_s_nodes: Any, log_s_m: Any, log_cdf_m: Any, c: np.ndarray
) -> Any:
    r"""PyTensor Greenwood excess :math:`R = \frac{S(\hat m)}{F(\hat m)}\sum_i c_i
    f(t_i)/S(t_i)^2`, so that :math:`n_{eff} = n/(1 + R)`.

    Computed term by term as :math:`c_i\exp\{\log f_i - 2\log S_i + \log S(\hat m) -
    \log F(\hat m)\}`: each exponent is at most about :math:`\log h(t_i)` (since
    :math:`S(\hat m) \le S(t_i)` and :math:`f(t_i) \le` the CDF's growth up to :math:`\hat m`), so
    it is finite wherever the family's log terms are; it is capped at 700 as a guard. Rows with
    :math:`c = 0` give exactly 0 (and zero gradients).

    Parameters
    ----------
    log_f_nodes, log_s_nodes : tensor_like, shape (R, Q)
        The row law's log density and log survival at the nodes of :func:`greenwood_nodes`.
    log_s_m, log_cdf_m : tensor_like, shape (R,)
        Its log survival and log CDF at the published median.
    c : numpy.ndarray, shape (R, Q)
        Excess weights from :func:`greenwood_nodes`.

    Returns
    -------
    TensorVariable, shape (R,)
    """
    import pytensor.tensor as pt

    from netbayes.families._pt import _as_float

    expo = (
        _as_float(log_f_nodes)
        - 2.0 * _as_float(log_s_nodes)
        + (_as_float(log_s_m) - _as_float(log_cdf_m))[..., None]
    )
    return pt.sum(_as_float(c) * pt.exp(pt.minimum(expo, _MAX_EXPONENT)), axis=-1)


def km_median_neff_logp(
    log_cdf_m: Any,
    log_s_m: Any,
    log_f_m: Any,
    n: Any,
    n_eff: Any,
    convention: Literal["ceil", "mid"] = "ceil",
) -> Any:
    r"""PyTensor log density of a KM median with effective sample size :math:`n_{eff}`.

    :math:`F(\hat m) \sim \mathrm{Beta}(\alpha, \beta)` (density in :math:`\hat m`: times
    :math:`f(\hat m)`), :math:`\alpha = 1 + (r - 1)s`, :math:`\beta = 1 + (n - r)s`,
    :math:`s = (n_{eff} - 1)/(n - 1)` (:math:`s = 1` for :math:`n = 1`), :math:`r =
    \lceil n/2\rceil` (``"ceil"``) or :math:`(n+1)/2` (``"mid"``). With :math:`n_{eff} = n`,
    :math:`s = 1` exactly and this is the :math:`r`-th order statistic of :math:`n`
    (:func:`netbayes.likelihoods.survival.km_median_order_stat_logp`); for odd :math:`n` it is
    :math:`\mathrm{Beta}(a, a)`, :math:`a = (n_{eff}+1)/2`, the order statistic generalised to a
    non-integer sample size (``tests/test_censoring.py`` checks both).

    Parameters
    ----------
    log_cdf_m, log_s_m, log_f_m : tensor_like
        :math:`\log F`, :math:`\log S`, :math:`\log f` of the row's law at the median.
    n : array_like
        Patients behind each median (data, :math:`\ge 1`).
    n_eff : tensor_like
        Effective sample sizes, :math:`1 \le n_{eff} \le n`.
    convention : {"ceil", "mid"}
        Rank of the order statistic (see above).

    Returns
    -------
    TensorVariable
        Log density of the published median(s).
    """
    import pytensor.tensor as pt

    from netbayes.families._pt import _as_float

    n = np.asarray(n, float)
    if convention == "ceil":
        r = np.ceil(n / 2.0)
    elif convention == "mid":
        r = (n + 1.0) / 2.0
    else:
        raise ValueError(f"convention={convention!r} is not allowed; expected 'ceil' or 'mid'")
    one = n <= 1.0
    s = pt.switch(one, 1.0, (_as_float(n_eff) - 1.0) / np.where(one, 1.0, n - 1.0))
    alpha = 1.0 + (r - 1.0) * s
    beta = 1.0 + (n - r) * s
    log_comb = pt.gammaln(alpha + beta) - pt.gammaln(alpha) - pt.gammaln(beta)
    return (
        log_comb
        + (alpha - 1.0) * _as_float(log_cdf_m)
        + (beta - 1.0) * _as_float(log_s_m)
        + _as_float(log_f_m)
    )


def n_eff_ratio(
    family: Any,
    k: Any,
    lam: Any,
    followup: Any,
    accrual: str = "uniform",
    t: Any = None,
    lower: float = 0.0,
    n: float = math.inf,
    n_nodes: int = N_NODES,
) -> np.ndarray:
    r""":math:`n_{eff}/n = 1/(1 + R)` of Greenwood's variance at time ``t`` (NumPy).

    For reports, documentation and tests: the same quadrature as the model's terms
    (:func:`greenwood_nodes`), with the family's NumPy closed forms, for the law
    ``family(k, lam)`` truncated to :math:`T \ge` ``lower``.

    Parameters
    ----------
    family : netbayes.families.SurvivalFamily
    k, lam : float
        Shape and scale.
    followup : float
        Median follow-up :math:`F`.
    accrual : {"uniform", "exponential"}
    t : float, optional
        Evaluation time (default: the law's median, truncated at ``lower``).
    lower : float
        Left-truncation point (0: none).
    n : float
        Patients (the floor :math:`G \ge 1/n`; default none).
    n_nodes : int
        Gauss-Legendre nodes.

    Returns
    -------
    numpy.ndarray
        :math:`n_{eff}/n` (0-d).
    """
    k, lam = float(k), float(lam)
    s_l = float(family.sf(lower, k, lam)) if lower > 0 else 1.0
    if t is None:
        t = (
            float(family.truncated_quantile(0.5, k, lam, lower))
            if lower > 0
            else float(family.median(k, lam))
        )
    nodes, c = greenwood_nodes(t, followup, min(n, 1e300), lower, accrual, n_nodes)
    f = family.pdf(nodes, k, lam) / s_l
    s = family.sf(nodes, k, lam) / s_l
    s_m = float(family.sf(t, k, lam)) / s_l
    excess = s_m / (1.0 - s_m) * float(np.sum(c * f / s**2))
    return np.asarray(1.0 / (1.0 + excess))
