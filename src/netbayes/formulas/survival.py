r"""Closed forms of the survival model's predictions, per posterior draw (NumPy only).

These are the formulas of :mod:`netbayes.models.survival` written for plain arrays of posterior
draws (first axis = draw), so that predictions need no PyMC. For a patient of fine tumour type
:math:`j` on treatment line :math:`\ell`:

*First line* (I-PRRT): :math:`T \sim \mathrm{Weibull}(k_1, \lambda)`,
:math:`\log\lambda = \alpha_1 + \sigma_1 z_{1j}` (with ``endpoint="os"`` the first-line OS block
``alpha1_os``, ``sigma1_os``, ``z1_os``, ``k1_os``).

*Salvage lines* (R-PRRT, RR-PRRT, 188Re-HEDP): :math:`T \sim \mathrm{Weibull}(k_2, \lambda)`,

.. math:: \log\lambda = \alpha_2 + \sigma_2 z_{2j} + \beta_x \log(x / 36)
          + \beta_{GBq} (d - 44.7)/10 + \gamma_{RR}[\ell = \mathrm{RR}]
          + \gamma_{188Re}[\ell = \mathrm{188Re}],

with :math:`x` the prior PFS (months; a 188Re-HEDP patient without one is a mixture over the
pilot's reported interval distribution, :func:`re188_prior_pfs_nodes`, as the model fits the
pilot's patients) and :math:`d` the cumulative 177Lu activity *after* the line
(:func:`cumulative_gbq`). :math:`S(t) = \exp(-(t/\lambda)^k)` and the median is
:math:`\lambda (\log 2)^{1/k}`.

A coarse tumour type (``gi_non_pancreatic``) is a mixture over its fine levels with fixed
weights: :math:`S(t) = \sum_j w_j S_j(t)`; its median solves :math:`S(m) = 1/2` (bisection).
A *new* tumour type draws its effect from the population, :math:`z \sim N(0, 1)` per draw.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import cache
from statistics import NormalDist
from typing import Any

import numpy as np

from netbayes import spec
from netbayes.families.weibull import WEIBULL
from netbayes.spec import GBQ_REF, GBQ_UNIT, X_REF

__all__ = [
    "GBQ_REF",
    "GBQ_UNIT",
    "PARAMS",
    "PARAMS_OS",
    "X_REF",
    "covariates",
    "cumulative_gbq",
    "log_scale",
    "mixture_median",
    "mixture_sf",
    "params_for",
    "re188_prior_pfs_nodes",
    "salvage_shift",
    "shape",
    "truncated_weibull",
    "type_intercepts",
    "weibull_median",
    "weibull_sf",
]

PARAMS: tuple[str, ...] = spec.SURVIVAL_PARAMS
"""Posterior variables the PFS predictions need (:data:`netbayes.spec.SURVIVAL_PARAMS`)."""
PARAMS_OS: tuple[str, ...] = spec.SURVIVAL_PARAMS_OS
"""Posterior variables the OS predictions need (first-line OS has its own block)."""


def params_for(endpoint: str) -> tuple[str, ...]:
    """Return the posterior variables needed to predict ``endpoint`` ("pfs" or "os")."""
    return spec.survival_params(endpoint)


def _first_line_names(endpoint: str) -> tuple[str, str, str, str]:
    sfx = "_os" if endpoint == "os" else ""
    return (f"alpha1{sfx}", f"sigma1{sfx}", f"z1{sfx}", f"k1{sfx}")


def type_intercepts(params: Mapping[str, np.ndarray], line: str, endpoint: str = "pfs"):
    """Per-draw population intercept, type SD and type effects of the block of ``line``.

    Parameters
    ----------
    params : mapping of str to numpy.ndarray
        Posterior draws (first axis = draw); ``z1``/``z2`` have shape ``(draws, 6)`` in
        :data:`netbayes.vocab.TUMOUR_TYPES` order.
    line : str
        A treatment line of :data:`netbayes.vocab.LINES`.
    endpoint : {"pfs", "os"}

    Returns
    -------
    alpha : numpy.ndarray, shape (draws,)
    sigma : numpy.ndarray, shape (draws,)
    z : numpy.ndarray, shape (draws, 6)
        ``log lambda`` of fine type ``j`` at the reference covariates is
        ``alpha + sigma * z[:, j]``.
    """
    if spec.line_spec(line).is_first:
        a, s, z, _ = _first_line_names(endpoint)
    else:
        a, s, z = "alpha2", "sigma2", "z2"
    return np.asarray(params[a], float), np.asarray(params[s], float), np.asarray(params[z], float)


def shape(params: Mapping[str, np.ndarray], line: str, endpoint: str = "pfs") -> np.ndarray:
    """Per-draw Weibull shape of the block of ``line``, shape ``(draws,)``."""
    name = _first_line_names(endpoint)[3] if spec.line_spec(line).is_first else "k2"
    return np.asarray(params[name], float)


def cumulative_gbq(prior_gbq: float, planned_gbq: float, line: str) -> float:
    """Cumulative 177Lu activity after the line, the ``d`` of the survival formula.

    The planned activity of a 177Lu-octreotate line (I-PRRT, R-PRRT, RR-PRRT) adds to the prior
    activity; a 188Re-HEDP activity is another nuclide and does not (``d`` = prior 177Lu).
    """
    return float(prior_gbq) + (float(planned_gbq) if spec.line_spec(line).adds_lu177 else 0.0)


def log_scale(
    params: Mapping[str, np.ndarray],
    line: str,
    prior_pfs_months: float | None,
    cumulative: float,
    endpoint: str = "pfs",
    z_new: np.ndarray | None = None,
) -> np.ndarray:
    """Per-draw ``log lambda`` for each fine tumour type (or a new type).

    Parameters
    ----------
    params : mapping
        Posterior draws (see :func:`type_intercepts`).
    line : str
        Treatment line.
    prior_pfs_months : float or None
        PFS after the previous line (salvage lines; ``None`` uses the reference 36 months).
        Ignored for I-PRRT.
    cumulative : float
        Cumulative 177Lu activity after the line (:func:`cumulative_gbq`); ignored for I-PRRT.
    endpoint : {"pfs", "os"}
    z_new : numpy.ndarray, shape (draws,), optional
        Standard-normal draws of a new tumour type's effect. Given: the result is the new
        type's ``log lambda``, shape ``(draws, 1)``.

    Returns
    -------
    numpy.ndarray, shape (draws, 6) or (draws, 1)
    """
    ls = spec.line_spec(line)
    alpha, sigma, z = type_intercepts(params, line, endpoint)
    zz = z if z_new is None else np.asarray(z_new, float)[:, None]
    out = alpha[:, None] + sigma[:, None] * zz
    if ls.is_first:
        return out
    lx, gq = covariates(prior_pfs_months, cumulative)
    return out + salvage_shift(params, line, lx, gq)[:, None]


RE188_PRIOR_PFS_NODES = 8
"""Quantile nodes of :func:`re188_prior_pfs_nodes` (the 188Re-HEDP prior-PFS mixture)."""


@cache
def _expected_normal_range(n: int) -> float:
    r"""Expected range of ``n`` independent standard normals,
    :math:`\int (1 - \Phi^n - (1 - \Phi)^n)\,dx` (2.534 for n = 6), by the trapezoid rule."""
    x = np.linspace(-9.0, 9.0, 18001)
    phi = 0.5 * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))
    y = 1.0 - phi**n - (1.0 - phi) ** n
    return float(np.sum((y[1:] + y[:-1]) * 0.5 * np.diff(x)))


@cache
def re188_prior_pfs_nodes(
    mean: float, lo: float, hi: float, n_patients: int = 6, n_nodes: int = RE188_PRIOR_PFS_NODES
) -> tuple[float, ...]:
    r"""Prior-PFS nodes (months) of a 188Re-HEDP patient whose prior PFS is not known.

    The 188Re-HEDP pilot reports no prior PFS per patient, only the interval between the previous
    systemic treatment and 188Re-HEDP: mean 21 months, range 13-47 over its 6 patients
    (``re188_text_values``, ``rtxt_met_interval*``). The interval is the pilot's only
    information on how long the disease was controlled before 188Re-HEDP; it is used as the
    prior PFS :math:`x` (it includes the time from progression to the next treatment, so it
    overstates the PFS somewhat). :math:`\log x` is normal with SD
    :math:`\sigma = \log(hi/lo)/d_n` (:math:`d_n` the expected range of ``n_patients``
    standard normals) truncated to the reported range, its location chosen so that the
    truncated mean is the reported mean; the nodes are the ``n_nodes`` midpoint quantiles of
    that law, equally weighted. The model fits the pilot's patients as a mixture over these
    nodes, and a 188Re-HEDP prediction without a prior PFS mixes over the same nodes.

    Parameters
    ----------
    mean, lo, hi : float
        The reported mean, minimum and maximum interval (months), ``0 < lo < mean < hi``.
    n_patients : int
        Patients behind the range.
    n_nodes : int
        Quantile nodes.

    Returns
    -------
    tuple of float
        The nodes (months), increasing.
    """
    if not (0.0 < lo < mean < hi) or n_patients < 2 or n_nodes < 1:
        raise ValueError(
            f"re188_prior_pfs_nodes: mean={mean!r}, lo={lo!r}, hi={hi!r}, "
            f"n_patients={n_patients!r}, n_nodes={n_nodes!r}; expected 0 < lo < mean < hi, "
            "n_patients >= 2 and n_nodes >= 1"
        )
    nd = NormalDist()
    sigma = math.log(hi / lo) / _expected_normal_range(int(n_patients))
    la, lb = math.log(lo), math.log(hi)

    def truncated_mean(mu: float) -> float:
        """E[x | lo < x < hi] of the log-normal (mu, sigma) (closed form)."""
        al, be = (la - mu) / sigma, (lb - mu) / sigma
        den = nd.cdf(be) - nd.cdf(al)
        return math.exp(mu + sigma**2 / 2) * (nd.cdf(be - sigma) - nd.cdf(al - sigma)) / den

    a, b = la, lb  # the truncated mean rises with mu: bisection
    for _ in range(80):
        mid = 0.5 * (a + b)
        if truncated_mean(mid) < mean:
            a = mid
        else:
            b = mid
    mu = 0.5 * (a + b)
    pa, pb = nd.cdf((la - mu) / sigma), nd.cdf((lb - mu) / sigma)
    q = (np.arange(n_nodes) + 0.5) / n_nodes
    return tuple(math.exp(mu + sigma * nd.inv_cdf(pa + (pb - pa) * v)) for v in q)


def covariates(prior_pfs_months: Any, cumulative: Any) -> tuple[Any, Any]:
    r"""The salvage covariates on the model's scale: :math:`\log(x / 36)` and
    :math:`(d - 44.7) / 10`.

    Parameters
    ----------
    prior_pfs_months : float, numpy.ndarray or None
        Prior PFS :math:`x` (months); ``None`` is the reference (36 months).
    cumulative : float or numpy.ndarray
        Cumulative 177Lu activity :math:`d` after the line (GBq).

    Returns
    -------
    lx, gq : float or numpy.ndarray
    """
    if prior_pfs_months is None:
        lx: Any = 0.0
    elif np.ndim(prior_pfs_months) == 0:
        lx = math.log(float(prior_pfs_months) / X_REF)
    else:
        lx = np.log(np.asarray(prior_pfs_months, float) / X_REF)
    return lx, (cumulative - GBQ_REF) / GBQ_UNIT


def salvage_shift(params: Mapping[str, np.ndarray], line: str, lx: Any, gq: Any) -> np.ndarray:
    r"""The salvage block's covariate and line terms of :math:`\log\lambda`, per draw.

    :math:`\beta_x\,l_x + \beta_{GBq}\,g + \gamma_{line}`, with :math:`l_x`, :math:`g` from
    :func:`covariates`. This is the one NumPy statement of the AFT predictor's covariate part:
    every prediction (patients, batch summaries, cohort simulation) calls it.

    Parameters
    ----------
    params : mapping
        Posterior draws; ``beta_x``, ``beta_gbq`` and the line effect have shape
        ``(draws,)`` or broadcast against ``lx``/``gq``.
    line : str
        A salvage line.
    lx, gq : float or numpy.ndarray
        The covariates; arrays broadcast against the draws (e.g. shape ``(patients, 1)`` for
        ``(patients, draws)`` output).

    Returns
    -------
    numpy.ndarray
    """
    ls = spec.line_spec(line)
    shift = np.multiply(lx, params["beta_x"]) + np.multiply(gq, params["beta_gbq"])
    if ls.survival_effect is not None:
        shift = shift + params[ls.survival_effect]
    return shift


def weibull_sf(t: np.ndarray, k: np.ndarray, lam: np.ndarray) -> np.ndarray:
    r"""Weibull survival function :math:`\exp(-(t/\lambda)^k)` (broadcasting)."""
    return WEIBULL.sf(t, k, lam)


def weibull_median(k: np.ndarray, lam: np.ndarray) -> np.ndarray:
    r"""Weibull median :math:`\lambda (\log 2)^{1/k}` (broadcasting)."""
    return WEIBULL.median(k, lam)


def mixture_sf(t: np.ndarray, k: np.ndarray, lam: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Survival function of a Weibull mixture over tumour types, shape (draws, T).

    See :meth:`netbayes.families.SurvivalFamily.mixture_sf`.
    """
    return WEIBULL.mixture_sf(t, k, lam, w)


def mixture_median(k: np.ndarray, lam: np.ndarray, w: np.ndarray, iters: int = 60) -> np.ndarray:
    """Median of a Weibull mixture per draw, shape (draws,), by bisection.

    See :meth:`netbayes.families.SurvivalFamily.mixture_median`.
    """
    return WEIBULL.mixture_median(k, lam, w, iters)


def truncated_weibull(
    rng: np.random.Generator, k: np.ndarray, lam: np.ndarray, lower: float, size: tuple[int, ...]
) -> np.ndarray:
    """Draws of Weibull(k, lam) conditioned on T >= ``lower`` (inverse cumulative hazard)."""
    return WEIBULL.truncated_sample(rng, k, lam, lower, size)
