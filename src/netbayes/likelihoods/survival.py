r"""Weibull survival likelihood terms, including terms for published summaries.

Every function here is a pure PyTensor function: it takes tensors (or NumPy arrays / Python
floats, which are converted) and returns a symbolic tensor, so it can be used inside a PyMC
model (``pm.Potential``) or evaluated on its own with ``.eval()`` / ``pytensor.function``.
The only exception is :func:`wald_se_from_ci`, a plain NumPy data-preparation helper.

Parametrisation (used everywhere)
---------------------------------
Shape :math:`k > 0`, scale :math:`\lambda > 0`, cumulative hazard
:math:`H(t) = (t/\lambda)^k`, and

.. math::

    S(t) = e^{-H(t)}, \quad
    f(t) = \frac{k}{t} H(t) e^{-H(t)}, \quad
    h(t) = \frac{k}{t} H(t), \quad
    \operatorname{median} = \lambda (\ln 2)^{1/k}.

This is ``scipy.stats.weibull_min(c=k, scale=lam)`` and ``pm.Weibull(alpha=k, beta=lam)``.

Numerics
--------
All terms are computed from :math:`\log H = k(\log t - \log\lambda)`, which never overflows
or underflows for representable ``t``. In particular the log-survival is the closed form
:math:`-H(t)` (``pm.Censored(pm.Weibull.dist(...))`` computes ``log(1 - CDF)``, which is
``-inf`` with NaN gradients far in the right tail, e.g. ``t=5000, k=1.5, lam=10`` where the
truth is about ``-11180.34``), and the log-CDF :math:`\log(1 - e^{-H})` switches to the series
:math:`\log H - H/2` when :math:`H < e^{-20}`, so it stays finite and accurate even where
:math:`H` itself underflows. Branches selected with ``switch`` use "safe" inputs in the
branch not taken, so gradients stay finite (no ``0 * inf``).

Nothing here knows about papers or cohorts: model builders combine these terms.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.tensor.variable import TensorVariable

__all__ = [
    "censored_weibull_loglik",
    "implied_spearman_from_logx_grid",
    "implied_spearman_selected",
    "implied_spearman_selected_mixture",
    "implied_spearman_selected_weibull",
    "implied_spearman_selected_weibull_mixture",
    "km_median_order_stat_logp",
    "km_se_logp",
    "median_se_asymptotic",
    "pearson_from_spearman_gaussian",
    "spearman_fisher_logp",
    "spearman_from_pearson_gaussian",
    "wald_se_from_ci",
    "weibull_logcdf",
    "weibull_loghazard",
    "weibull_logpdf",
    "weibull_logsf",
    "weibull_median",
]

from netbayes.families._pt import TensorLike, _as_float
from netbayes.families._weibull_pt import (  # noqa: F401  (re-exported)
    _LN2,
    _LOG_2PI,
    _ln2_plus_HL,
    _log1mexp_neg_from_log,
    _log_cumhaz_lower,
    _safe_logH,
    censored_weibull_loglik,
    km_median_order_stat_logp,
    weibull_logcdf,
    weibull_loghazard,
    weibull_logpdf,
    weibull_logsf,
    weibull_median,
)

# Fieller-Hartley-Pearson (1957): var(atanh(r_s)) ~= 1.06 / (n - 3).
_FHP_VAR = 1.06


# ---------------------------------------------------------------------------------------------
# 4.-6. Published confidence-interval widths
# ---------------------------------------------------------------------------------------------


def wald_se_from_ci(
    median: Any, lo: Any, hi: Any, level: float = 0.95
) -> tuple[np.ndarray | float, np.ndarray | str]:
    r"""Standard error implied by a published symmetric Wald confidence interval (NumPy).

    With :math:`z = \Phi^{-1}((1 + \text{level})/2)` (1.96 for 95%):

    * ``"symmetric"``: :math:`\widehat{SE} = (hi - lo) / (2z)`;
    * ``"upper"``: if the lower bound was clipped at 0, i.e. ``lo <= 0`` while the symmetric
      lower bound :math:`m - (hi - m)` would be negative, only the upper half is used:
      :math:`\widehat{SE} = (hi - m)/z`;
    * ``"missing"``: any of ``median``, ``lo``, ``hi`` is NaN: :math:`\widehat{SE}` = NaN.

    No check is made that the interval is otherwise symmetric (a log-scale or
    Brookmeyer-Crowley interval would be asymmetric); callers may compare
    ``hi - median`` with ``median - lo`` themselves.

    Parameters
    ----------
    median, lo, hi : float or array_like
        Point estimate and confidence bounds (broadcast).
    level : float
        Confidence level of the interval.

    Returns
    -------
    se : float or ndarray
        Implied standard errors.
    flag : str or ndarray of str
        ``"symmetric"``, ``"upper"`` or ``"missing"`` per element; scalars in, scalars out.
    """
    from scipy.stats import norm

    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    z = float(norm.ppf(0.5 + level / 2.0))
    m, lo_, hi_ = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (median, lo, hi)))
    missing = np.isnan(m) | np.isnan(lo_) | np.isnan(hi_)
    with np.errstate(invalid="ignore"):
        clipped = ~missing & (lo_ <= 0.0) & (m - (hi_ - m) < 0.0)
    se = np.where(clipped, (hi_ - m) / z, (hi_ - lo_) / (2.0 * z))
    se = np.where(missing, np.nan, se)
    flag = np.where(missing, "missing", np.where(clipped, "upper", "symmetric"))
    if se.ndim == 0:
        return float(se), str(flag)
    return se, flag


def median_se_asymptotic(
    k: TensorLike, lam: TensorLike, n: TensorLike, lower: TensorLike | None = None
) -> TensorVariable:
    r"""Asymptotic standard error of the sample median of :math:`n` iid Weibull times.

    .. math:: SE = \frac{\sqrt{p(1-p)/n}}{f(m)}, \quad p = 1/2,

    with :math:`m` the median. Since :math:`f(m) = (k/m) H(m) S(m)` with :math:`S(m) = 1/2`,

    .. math:: SE = \frac{m}{k\,H(m)\sqrt{n}},

    i.e. :math:`m / (k \ln 2 \sqrt n)` untruncated (:math:`H(m) = \ln 2`). With left
    truncation at :math:`L` the truncated density :math:`f(t)/S(L)` at the truncated median
    (:func:`weibull_median`) gives the same formula with :math:`H(m) = H(L) + \ln 2`.
    This is the uncensored large-sample SE; censoring makes the true SE larger.

    Parameters
    ----------
    k, lam : tensor_like
        Weibull shape and scale.
    n : tensor_like
        Sample size.
    lower : tensor_like, optional
        Left-truncation threshold :math:`L`.

    Returns
    -------
    TensorVariable
        Asymptotic SE of the median.
    """
    k, lam, n = _as_float(k), _as_float(lam), _as_float(n)
    H_m = _ln2_plus_HL(k, lam, lower)
    m = lam * H_m ** (1.0 / k)
    return m / (k * H_m * pt.sqrt(n))


def km_se_logp(
    se_obs: TensorLike,
    k: TensorLike,
    lam: TensorLike,
    n: TensorLike,
    sigma: TensorLike,
    lower: TensorLike | None = None,
) -> TensorVariable:
    r"""Log density of a published median's SE, as a noisy measurement on the log scale.

    .. math::

        \log \widehat{SE}_{obs} \sim \mathcal N\bigl(\log SE(k, \lambda, n, L),\ \sigma\bigr),

    with :math:`SE` from :func:`median_se_asymptotic`. For fixed :math:`n` and median, the
    SE is :math:`\propto 1/k`, so the CI width informs the Weibull shape; :math:`\sigma`
    absorbs censoring, rounding of published bounds and the asymptotic approximation.

    This is the **Jacobian-free** form: it is the density of :math:`\log \widehat{SE}_{obs}`,
    not of :math:`\widehat{SE}_{obs}` (which would add :math:`-\log\widehat{SE}_{obs}`). The
    omitted term depends only on the data, so posteriors are unaffected (also when
    :math:`\sigma` is a parameter). Missing SEs (NaN) must be dropped by the caller.

    Parameters
    ----------
    se_obs : tensor_like
        Observed SEs (e.g. from :func:`wald_se_from_ci`), :math:`> 0`.
    k, lam : tensor_like
        Weibull shape and scale.
    n : tensor_like
        Sample sizes.
    sigma : tensor_like
        SD of the log-scale measurement error, :math:`> 0`.
    lower : tensor_like, optional
        Left-truncation threshold (see :func:`median_se_asymptotic`).

    Returns
    -------
    TensorVariable
        Log density of :math:`\log \widehat{SE}_{obs}`.
    """
    se_obs, sigma = _as_float(se_obs), _as_float(sigma)
    mu = pt.log(median_se_asymptotic(k, lam, n, lower))
    z = (pt.log(se_obs) - mu) / sigma
    return -0.5 * z**2 - pt.log(sigma) - 0.5 * _LOG_2PI


# ---------------------------------------------------------------------------------------------
# 7. Spearman correlation
# ---------------------------------------------------------------------------------------------


def spearman_from_pearson_gaussian(rho: TensorLike) -> TensorVariable:
    r"""Spearman correlation of a Gaussian copula with Pearson correlation :math:`\rho`.

    .. math:: \rho_S = \frac{6}{\pi}\arcsin(\rho / 2).

    Holds for any pair of continuous margins joined by a Gaussian copula (e.g.
    :math:`\rho` = correlation of the normal scores / of the logs of lognormal times).

    Parameters
    ----------
    rho : tensor_like
        Pearson correlation of the Gaussian copula, in :math:`[-1, 1]`.

    Returns
    -------
    TensorVariable
        Population Spearman correlation.
    """
    return (6.0 / math.pi) * pt.arcsin(_as_float(rho) / 2.0)


def pearson_from_spearman_gaussian(rs: TensorLike) -> TensorVariable:
    r"""Inverse of :func:`spearman_from_pearson_gaussian`: :math:`\rho = 2\sin(\pi\rho_S/6)`."""
    return 2.0 * pt.sin((math.pi / 6.0) * _as_float(rs))


def spearman_fisher_logp(
    rs_obs: TensorLike,
    rs_model: TensorLike,
    n: TensorLike,
    attenuation: TensorLike = 1.0,
) -> TensorVariable:
    r"""Log density of an observed Spearman correlation via Fisher's z.

    .. math::

        \operatorname{atanh}(r_{S,obs}) \sim
        \mathcal N\!\left(a \operatorname{atanh}(\rho_S),\ \sqrt{1.06/(n-3)}\right),

    the Fieller-Hartley-Pearson (1957) variance for Spearman's coefficient, around the
    population value shrunk by an attenuation factor :math:`a` (``attenuation``, default 1).
    A coefficient computed on partly censored times (censoring independent of the pair) is
    attenuated toward 0: its Fisher z is about :math:`a` times the uncensored one, with the
    usual variance around it
    (see :data:`netbayes.models.survival.SurvivalPriors.spearman_attenuation`). Jacobian-free:
    this is the density of :math:`\operatorname{atanh}(r_{S,obs})`; the omitted
    :math:`-\log(1 - r_{S,obs}^2)` depends on data only. Requires :math:`n > 3` and
    :math:`|r| < 1`. The small-sample bias of :math:`r_S` (:math:`O(1/n)`) is ignored.

    Parameters
    ----------
    rs_obs : tensor_like
        Observed (published) Spearman correlation.
    rs_model : tensor_like
        Model-implied population Spearman correlation.
    n : tensor_like
        Number of pairs.
    attenuation : tensor_like
        Multiplier :math:`a > 0` of the population Fisher z (1: an uncensored coefficient).

    Returns
    -------
    TensorVariable
        Log density of :math:`\operatorname{atanh}(r_{S,obs})`.
    """
    rs_obs, rs_model, n = _as_float(rs_obs), _as_float(rs_model), _as_float(n)
    var = _FHP_VAR / (n - 3.0)
    d = pt.arctanh(rs_obs) - _as_float(attenuation) * pt.arctanh(rs_model)
    return -0.5 * d**2 / var - 0.5 * pt.log(var) - 0.5 * _LOG_2PI


# ---------------------------------------------------------------------------------------------
# 8. Spearman correlation implied by a log-linear Weibull regression among selected pairs
# ---------------------------------------------------------------------------------------------


def _midpoint_u(n_grid: int) -> np.ndarray:
    if n_grid < 2:
        raise ValueError("n_grid must be >= 2")
    return (np.arange(n_grid) + 0.5) / n_grid


def implied_spearman_from_logx_grid(
    beta: TensorLike, k: TensorLike, logx: TensorLike
) -> TensorVariable:
    r"""Population Spearman correlation of :math:`(X, Y)` given a quantile grid of :math:`\log X`.

    Model: :math:`Y \mid X \sim \mathrm{Weibull}(k,\ \lambda_0 X^{\beta})`, i.e.
    :math:`\log Y = \log\lambda_0 + \beta\log X + k^{-1}\log E`, :math:`E \sim \mathrm{Exp}(1)`.
    Two such :math:`Y` share the shape, so
    :math:`P(Y_j < Y_i \mid x_i, x_j) = \sigma\{k\beta(\log x_i - \log x_j)\}` with
    :math:`\sigma` the logistic function (expit), and with :math:`U = F_X(X)`:

    .. math::

        \rho_S = 12\,E[F_X(X) F_Y(Y)] - 3
               = 12\,E_{i,j}\bigl[U_i\,\sigma\{k\beta(\log x_i - \log x_j)\}\bigr] - 3,

    for independent :math:`i, j` from the (selected) population of :math:`X`. The expectation
    is computed by the midpoint rule on ``logx[i] = log F_X^{-1}((i + 1/2)/N)``. It depends
    on :math:`\beta, k` only via :math:`k\beta` and does not depend on :math:`\lambda_0`.

    Parameters
    ----------
    beta, k : tensor_like
        Scalar slope of :math:`\log Y` on :math:`\log X` and Weibull shape of :math:`Y`.
    logx : tensor_like
        1-d array of :math:`\log X` at the quantile midpoints :math:`(i + 1/2)/N`, increasing.

    Returns
    -------
    TensorVariable
        Scalar population Spearman correlation (discretisation error about :math:`1/N^2`).
    """
    beta, k, logx = _as_float(beta), _as_float(k), _as_float(logx)
    n_grid = logx.shape[0]
    u = (pt.arange(n_grid, dtype="float64") + 0.5) / pt.cast(n_grid, "float64")
    p_less = pt.sigmoid(k * beta * (logx[:, None] - logx[None, :]))  # P(Y_j < Y_i)
    return 12.0 * pt.mean(u[:, None] * p_less) - 3.0


def implied_spearman_selected(
    beta: TensorLike,
    k: TensorLike,
    sigma_logprior: TensorLike,
    threshold: TensorLike,
    mu_logprior: TensorLike = 0.0,
    n_grid: int = 200,
) -> TensorVariable:
    r"""Spearman correlation implied among pairs with :math:`X \ge` threshold, lognormal :math:`X`.

    :math:`\log X \sim \mathcal N(\mu, \sigma)` (``mu_logprior``, ``sigma_logprior``),
    selected to :math:`X \ge c` (``threshold``; use 0 for no selection), and
    :math:`Y \mid X \sim \mathrm{Weibull}(k, \lambda_0 X^\beta)`; see
    :func:`implied_spearman_from_logx_grid`. The truncated-normal quantiles are
    :math:`z_i = \sqrt2\,\operatorname{erfcinv}\{(1-u_i)\operatorname{erfc}(z_0/\sqrt2)\}`,
    :math:`z_0 = (\log c - \mu)/\sigma`, which is stable in the upper tail. Deterministic
    and differentiable; scalar inputs.

    Parameters
    ----------
    beta, k : tensor_like
        Slope of :math:`\log Y` on :math:`\log X`; Weibull shape of :math:`Y`.
    sigma_logprior, mu_logprior : tensor_like
        SD and mean of :math:`\log X` before selection.
    threshold : tensor_like
        Selection threshold :math:`c` on :math:`X`.
    n_grid : int
        Number of quantile grid points.

    Returns
    -------
    TensorVariable
        Scalar population Spearman correlation among selected pairs.
    """
    sigma, mu, c = _as_float(sigma_logprior), _as_float(mu_logprior), _as_float(threshold)
    u = _midpoint_u(n_grid)
    z0 = (pt.log(c) - mu) / sigma  # -inf for c = 0
    q0 = pt.erfc(z0 / math.sqrt(2.0))  # 2 * P(Z > z0)
    z = math.sqrt(2.0) * pt.erfcinv((1.0 - u) * q0)
    return implied_spearman_from_logx_grid(beta, k, mu + sigma * z)


def implied_spearman_selected_weibull(
    beta: TensorLike,
    k: TensorLike,
    k_prior: TensorLike,
    lam_prior: TensorLike,
    threshold: TensorLike,
    n_grid: int = 200,
) -> TensorVariable:
    r"""Spearman correlation implied among pairs with :math:`X \ge` threshold, Weibull :math:`X`.

    :math:`X \sim \mathrm{Weibull}(k_X, \lambda_X)` truncated to :math:`X \ge c`, with
    quantiles :math:`\log x_i = \log\lambda_X + k_X^{-1}\log\{H_X(c) - \log(1-u_i)\}`, and
    :math:`Y \mid X \sim \mathrm{Weibull}(k, \lambda_0 X^\beta)`; see
    :func:`implied_spearman_from_logx_grid`. Scalar inputs; ``threshold=0`` for no selection.

    Parameters
    ----------
    beta, k : tensor_like
        Slope of :math:`\log Y` on :math:`\log X`; Weibull shape of :math:`Y`.
    k_prior, lam_prior : tensor_like
        Weibull shape and scale of :math:`X` before selection.
    threshold : tensor_like
        Selection threshold :math:`c` on :math:`X`.
    n_grid : int
        Number of quantile grid points.

    Returns
    -------
    TensorVariable
        Scalar population Spearman correlation among selected pairs.
    """
    k_x, lam_x = _as_float(k_prior), _as_float(lam_prior)
    _, _, logH_c = _log_cumhaz_lower(threshold, k_x, lam_x)
    e = -np.log1p(-_midpoint_u(n_grid))
    logx = pt.log(lam_x) + pt.log(pt.exp(logH_c) + e) / k_x
    return implied_spearman_from_logx_grid(beta, k, logx)


def _group_grid(weights: Any, n_grid: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised weights, nodes per group and the indices of the groups with weight > 0."""
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or (w < 0).any() or not w.sum() > 0:
        raise ValueError(f"weights={weights!r} is not allowed; expected non-negative, sum > 0")
    sizes = np.broadcast_to(np.asarray(n_grid, dtype=int), w.shape)
    if (sizes < 2).any():
        raise ValueError(f"n_grid={n_grid!r} is not allowed; expected >= 2 nodes per group")
    w = w / w.sum()
    keep = np.flatnonzero(w > 0)
    return w[keep], sizes[keep], keep


def implied_spearman_selected_weibull_mixture(
    beta: TensorLike,
    k: TensorLike,
    k_prior: TensorLike,
    log_lam_prior: TensorLike,
    offsets: TensorLike,
    weights: np.ndarray,
    threshold: TensorLike,
    n_grid: int = 40,
) -> TensorVariable:
    r"""Spearman correlation among selected pairs pooled over groups (tumour types).

    Group :math:`t` (weight :math:`w_t`) has :math:`X \sim \mathrm{Weibull}(k_X,
    \lambda_{X,t})` truncated to :math:`X \ge c` and :math:`\log Y = a_t + \beta\log X +
    k^{-1}\log E`. The published coefficient pools all groups, so group differences in
    :math:`X` and in :math:`Y` enter it: the pooled population value is

    .. math::

        \rho_S = 12 \sum_{i,j} w_i w_j\, F_X(x_i)\,
                  \sigma\{k(\eta_i - \eta_j)\} - 3,\qquad
        \eta_i = a_{t(i)} + \beta \log x_i,

    over the union of the groups' midpoint quantile grids (:math:`w_i = w_{t(i)}/G`), with the
    pooled CDF :math:`F_X(x) = \sum_t w_t F_{X,t}(x)` evaluated in closed form; see
    :func:`implied_spearman_from_logx_grid` for the single-group identity (to which this
    reduces with one group).

    Parameters
    ----------
    beta, k : tensor_like
        Slope of :math:`\log Y` on :math:`\log X`; Weibull shape of :math:`Y`.
    k_prior : tensor_like
        Weibull shape of :math:`X` before selection (shared).
    log_lam_prior : tensor_like
        1-d, log Weibull scale of :math:`X` per group.
    offsets : tensor_like
        1-d, group offsets :math:`a_t` of :math:`\log Y` (any common constant cancels).
    weights : ndarray
        1-d, group shares among the pairs (normalised here; zeros allowed).
    threshold : tensor_like
        Selection threshold :math:`c` on :math:`X` (> 0, or 0 for none).
    n_grid : int or sequence of int
        Quantile grid points per group: one number for all groups, or one per group (e.g.
        proportional to the weights: the discretisation error is O(1/G) per group and is
        weighted by the group's share, so small groups need fewer nodes).

    Returns
    -------
    TensorVariable
        Scalar population Spearman correlation of the pooled selected pairs.
    """
    w, sizes, keep = _group_grid(weights, n_grid)
    beta, k, k_x = _as_float(beta), _as_float(k), _as_float(k_prior)
    log_lam = _as_float(log_lam_prior)[keep]
    a = _as_float(offsets)[keep]
    c = _as_float(threshold)
    g = np.repeat(np.arange(keep.size), sizes)  # group of each node
    e = np.concatenate([-np.log1p(-_midpoint_u(int(n))) for n in sizes])
    # log H_t(c) per group; H = 0 for c = 0
    h_c = pt.switch(c > 0, pt.exp(k_x * (pt.log(pt.maximum(c, 1e-300)) - log_lam)), 0.0)
    logx = log_lam[g] + pt.log(h_c[g] + e) / k_x
    eta = a[g] + beta * logx
    wi = (w / sizes)[g]  # node weights, sum 1
    # pooled CDF of X at every node: sum_t w_t [1 - exp(-(H_t(x) - H_t(c)))], x >= c
    h_x = pt.exp(k_x * (logx[None, :] - log_lam[:, None]))  # (T, nodes)
    cdf = pt.sum(w[:, None] * -pt.expm1(-pt.maximum(h_x - h_c[:, None], 0.0)), axis=0)
    p_less = pt.sigmoid(k * (eta[:, None] - eta[None, :]))
    return 12.0 * pt.sum((wi * cdf)[:, None] * wi[None, :] * p_less) - 3.0


def implied_spearman_selected_mixture(
    family: Any,
    beta: TensorLike,
    k: TensorLike,
    k_prior: TensorLike,
    log_lam_prior: TensorLike,
    offsets: TensorLike,
    weights: np.ndarray,
    threshold: TensorLike,
    n_grid: int = 40,
) -> TensorVariable:
    r"""Spearman correlation among selected pairs pooled over groups, for any survival family.

    The same quantity as :func:`implied_spearman_selected_weibull_mixture` with both times
    drawn from ``family`` (:mod:`netbayes.families`): :math:`X` of group :math:`t` from the
    family with shape :math:`k_X` and scale :math:`\lambda_{X,t}`, truncated to
    :math:`X \ge c`, and :math:`\log Y = a_t + \beta\log X + \varepsilon/k`, so that
    :math:`P(Y_i < Y_j \mid x_i, x_j) = D(k(\eta_j - \eta_i))` with :math:`D` the CDF of the
    difference of two errors (:meth:`~netbayes.families.SurvivalFamily.diff_cdf_pt`). The
    Weibull family uses the closed form of
    :func:`implied_spearman_selected_weibull_mixture` itself.

    Parameters
    ----------
    family : netbayes.families.SurvivalFamily
        The family of both times.
    beta, k, k_prior, log_lam_prior, offsets, weights, threshold, n_grid
        As for :func:`implied_spearman_selected_weibull_mixture`.

    Returns
    -------
    TensorVariable
        Scalar population Spearman correlation of the pooled selected pairs.
    """
    args = (beta, k, k_prior, log_lam_prior, offsets, weights, threshold, n_grid)
    if family.name == "weibull":
        return implied_spearman_selected_weibull_mixture(*args)
    w, sizes, keep = _group_grid(weights, n_grid)
    beta, k, k_x = _as_float(beta), _as_float(k), _as_float(k_prior)
    lam = pt.exp(_as_float(log_lam_prior)[keep])
    a = _as_float(offsets)[keep]
    c = _as_float(threshold)
    g = np.repeat(np.arange(keep.size), sizes)
    u = np.concatenate([_midpoint_u(int(n)) for n in sizes])
    x = family.truncated_quantile_pt(u, k_x, lam[g], c)
    eta = a[g] + beta * pt.log(x)
    wi = (w / sizes)[g]
    # pooled CDF of X among the selected: sum_t w_t [1 - S_t(x) / S_t(c)]
    log_s = family.logsf(x[None, :], k_x, lam[:, None]) - family.logsf(c, k_x, lam)[:, None]
    cdf = pt.sum(w[:, None] * -pt.expm1(pt.minimum(log_s, 0.0)), axis=0)
    p_less = family.diff_cdf_pt(k * (eta[:, None] - eta[None, :]))
    return 12.0 * pt.sum((wi * cdf)[:, None] * wi[None, :] * p_less) - 3.0
