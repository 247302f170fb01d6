r"""Closed forms of the toxicity model's predictions, per posterior draw (NumPy only).

These are the formulas of :mod:`netbayes.models.toxicity` written for plain arrays of
posterior draws (first axis = draw), so that predictions need neither PyMC nor PyTensor. The
model itself calls them for its risk table, predictive check and simulations, so there is one
implementation. Importing this module imports NumPy, :mod:`netbayes.normal` (the normal CDF)
and :mod:`netbayes.vocab`, nothing else of netbayes.

Model (probit, conditional on the patient propensity)
-----------------------------------------------------
For a treatment block with activity :math:`A` and prior cumulative activity :math:`P` (both GBq
of 177Lu-octreotate or its marrow equivalent), the CTCAE grade :math:`G_l` of cell line
:math:`l` (:data:`CELL_LINES`) satisfies

.. math::

    P(G_l \le g \mid u) = \Phi(c_{l,g+1} - \eta - u), \qquad u \sim \mathcal N(0, \sigma_u^2),

    \eta = \beta_A\,\frac{A - 29.9}{10} + \beta_P\,\frac{P}{10} + \delta,

with cutpoints :math:`c_{l1} < c_{l2} < c_{l3} < c_{l4}` built from ``c3`` and ``log_gap``
(:func:`cutpoints`). For a *new* patient :math:`u` is unknown and integrated out:

* per line, exactly:
  :math:`P(G_l \ge III) = 1 - \Phi\bigl((c_{l3} - \eta)/\sqrt{1 + \sigma_u^2}\bigr)`;
* any line: :math:`P(\max_l G_l \ge III) = 1 - E_u\bigl[\prod_l \Phi(c_{l3} - \eta - u)\bigr]`,
  by the quadrature rule of :func:`normal_quadrature`. Per posterior draw this is a smooth
  increasing function of the scalar :math:`\eta`; for many patients :func:`any_line_risk_table`
  tabulates it once per draw and interpolates, with a proven error bound.

Treatment lines (:data:`netbayes.vocab.LINES`)
----------------------------------------------
``I-PRRT``
    The reference cohort (the Rotterdam retreatment group at its first course):
    :math:`\delta = 0`. ``prior_gbq`` is usually 0.
``R-PRRT``, ``RR-PRRT``
    Retreatment of a patient *selected* for it (tolerated earlier PRRT, met the haematological
    criteria): :math:`\delta = \delta_{retreated}`, the same for both lines; the lines differ
    only through their activities.
``188Re-HEDP``
    ``planned_gbq`` is GBq of **188Re-HEDP**; it enters as :math:`A = \theta \times`
    ``planned_gbq`` (177Lu-equivalent), with the 188Re pilot cohort's effect
    :math:`\delta = \delta_{re188}`.

``prior_gbq`` is always GBq of 177Lu-octreotate; earlier 188Re-HEDP activity (e.g. the first
cycle before a second one) goes in ``prior_re188_gbq`` and is converted with :math:`\theta`.
The Rotterdam safety-control cohort effect (:math:`\delta_{control}`) describes a published
cohort, not a kind of patient, and is not used for predictions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.polynomial.hermite_e import hermegauss
from numpy.typing import ArrayLike, NDArray

from netbayes import spec, vocab
from netbayes.normal import ndtr
from netbayes.spec import A_REF_GBQ, DOSE_SCALE_GBQ

__all__ = [
    "A_REF_GBQ",
    "CELL_LINES",
    "DEFAULT_N_NODES",
    "DEFAULT_RULE",
    "DOSE_SCALE_GBQ",
    "LINE_EFFECT",
    "N_CUTPOINTS",
    "N_GRADES",
    "PARAMS",
    "AnyLineRiskTable",
    "any_line_risk_table",
    "cutpoints",
    "gauss_hermite_nodes",
    "grade3_risk",
    "grade_probs",
    "increments_from_cutpoints_np",
    "line_effect",
    "linear_predictor",
    "normal_quadrature",
    "ordered_cutpoints_from_increments_np",
    "simulate_grades",
    "worst_grade_probs",
]

QuadratureRule = Literal["trapezoid", "gauss-hermite"]

CELL_LINES: tuple[str, ...] = tuple(vocab.CELL_LINES)
"""Cell lines, in the order of every ``line`` axis (leucocytes, platelets, haemoglobin)."""
N_GRADES = 5
"""Number of CTCAE grades modelled (0, I, II, III, IV)."""
N_CUTPOINTS = N_GRADES - 1
DEFAULT_N_NODES = 96
"""Default number of quadrature nodes for integrating out the patient propensity."""
DEFAULT_RULE: QuadratureRule = "trapezoid"
"""Default quadrature rule for integrating out the patient propensity."""
_TRAPEZOID_HALF_WIDTH = 8.0

PARAMS: tuple[str, ...] = spec.TOXICITY_PARAMS
"""Posterior variables the predictions need (:data:`netbayes.spec.TOXICITY_PARAMS`)."""

LINE_EFFECT: dict[str, str | None] = {
    name: ls.toxicity_effect for name, ls in spec.LINE_SPECS.items()
}
"""Cohort effect applied to each treatment line (``None``: the reference, 0)."""
_OTHER_NUCLIDE = tuple(n for n, ls in spec.LINE_SPECS.items() if not ls.adds_lu177)
_CHUNK_ELEMENTS = 4_000_000  # quadrature work arrays are chunked to ~32 MB


# ----------------------------------------------------------------------------------------------
# quadrature over the patient propensity
# ----------------------------------------------------------------------------------------------
def _check_n_nodes(n_nodes: int) -> int:
    if isinstance(n_nodes, bool) or int(n_nodes) != n_nodes or n_nodes < 1:
        raise ValueError(f"n_nodes={n_nodes!r} is not allowed; expected a positive integer")
    return int(n_nodes)


@lru_cache(maxsize=64)
def _gauss_hermite_cached(n_nodes: int) -> tuple[NDArray, NDArray]:
    x, w = hermegauss(n_nodes)
    w = w / w.sum()
    keep = w > 0.0  # very large n: extreme weights underflow; drop them (no log(0))
    x, w = x[keep], w[keep] / w[keep].sum()
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


@lru_cache(maxsize=64)
def _trapezoid_cached(n_nodes: int) -> tuple[NDArray, NDArray]:
    if n_nodes == 1:
        x, w = np.zeros(1), np.ones(1)
    else:
        x = np.linspace(-_TRAPEZOID_HALF_WIDTH, _TRAPEZOID_HALF_WIDTH, n_nodes)
        logw = -0.5 * x**2
        w = np.exp(logw - logw.max())
        w = w / w.sum()
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


def gauss_hermite_nodes(n_nodes: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Probabilists' Gauss-Hermite rule for expectations under :math:`\mathcal N(0, 1)`.

    .. math::

        E[h(X)] \approx \sum_{k=1}^{n} w_k\, h(x_k), \qquad X \sim \mathcal N(0, 1),
        \qquad \sum_k w_k = 1,

    exact for polynomials of degree :math:`\le 2n - 1`.  Built from
    :func:`numpy.polynomial.hermite_e.hermegauss` (weight :math:`e^{-x^2/2}`), weights normalised
    to sum to 1.

    Parameters
    ----------
    n_nodes : int
        Number of nodes (>= 1).

    Returns
    -------
    nodes, weights : ndarray of float64, shape (n_nodes,)
        Read-only arrays (cached).

    Notes
    -----
    For the steep integrands of the toxicity model (:math:`\sigma_u \gtrsim 2`) the trapezoid
    rule of :func:`normal_quadrature` is far more accurate per node.
    """
    return _gauss_hermite_cached(_check_n_nodes(n_nodes))


def normal_quadrature(
    n_nodes: int = DEFAULT_N_NODES, rule: QuadratureRule = DEFAULT_RULE
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Nodes and weights for :math:`E[h(X)]`, :math:`X \sim \mathcal N(0, 1)`.

    Parameters
    ----------
    n_nodes : int
        Number of nodes.
    rule : {"trapezoid", "gauss-hermite"}
        ``"trapezoid"`` (default): equispaced nodes on :math:`[-8, 8]` with weights
        :math:`\propto \varphi(x_k)` normalised to sum 1 (truncation error
        :math:`P(|X| > 8) \approx 10^{-15}`); converges geometrically in ``n_nodes`` at a rate set
        by the distance of the integrand's complex singularities from the real axis.
        ``"gauss-hermite"``: :func:`gauss_hermite_nodes`.

    Returns
    -------
    nodes, weights : ndarray of float64
        Read-only, weights sum to 1.

    Raises
    ------
    ValueError
        If ``n_nodes`` is not a positive integer or ``rule`` is unknown.

    Notes
    -----
    Maximum absolute error for :math:`E[\prod_{l=1}^3 F(a_l - \sigma X)]` over random
    :math:`a_l`, measured against adaptive quadrature:

    ============  =====  ==========  ==========  ==========
    rule          nodes  sigma = 2   sigma = 3   sigma = 4
    ============  =====  ==========  ==========  ==========
    GH, logit     32     1e-6        1e-4        --
    GH, probit    32     4e-5        1e-3        --
    GH, probit    128    2e-12       2e-7        1e-5
    trap, logit   96     3e-16       4e-16       4e-12
    trap, probit  96     3e-16       4e-15       4e-10
    ============  =====  ==========  ==========  ==========
    """
    n_nodes = _check_n_nodes(n_nodes)
    if rule == "trapezoid":
        return _trapezoid_cached(n_nodes)
    if rule == "gauss-hermite":
        return _gauss_hermite_cached(n_nodes)
    raise ValueError(f"rule={rule!r} is not allowed; expected 'trapezoid' or 'gauss-hermite'")


# ----------------------------------------------------------------------------------------------
# cutpoints and linear predictor
# ----------------------------------------------------------------------------------------------
def ordered_cutpoints_from_increments_np(
    c1: ArrayLike, log_increments: ArrayLike
) -> NDArray[np.float64]:
    r"""Strictly increasing cutpoints :math:`c_1,\ c_{j+1} = c_j + e^{d_j}` (NumPy).

    Parameters
    ----------
    c1 : array_like, shape (...)
        First cutpoint.
    log_increments : array_like, shape (..., K - 1)
        Log gaps :math:`d_j`, broadcast with ``c1``.

    Returns
    -------
    ndarray, shape (..., K)
    """
    c1 = np.asarray(c1, dtype=float)
    d = np.asarray(log_increments, dtype=float)
    steps = np.cumsum(np.exp(d), axis=-1)
    zero = np.zeros_like(d[..., :1])
    return c1[..., None] + np.concatenate([zero, steps], axis=-1)


def increments_from_cutpoints_np(
    cutpoints: ArrayLike,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Inverse of :func:`ordered_cutpoints_from_increments_np` (e.g. for initial values).

    Parameters
    ----------
    cutpoints : array_like, shape (..., K)
        Strictly increasing along the last axis.

    Returns
    -------
    c1 : ndarray, shape (...)
    log_increments : ndarray, shape (..., K - 1)

    Raises
    ------
    ValueError
        If the cutpoints are not strictly increasing.
    """
    c = np.asarray(cutpoints, dtype=float)
    gaps = np.diff(c, axis=-1)
    if np.any(gaps <= 0):
        raise ValueError("cutpoints must be strictly increasing along the last axis")
    return c[..., 0], np.log(gaps)


def cutpoints(c3: ArrayLike, log_gap: ArrayLike) -> NDArray[np.float64]:
    r"""The four cutpoints per line from the grade III cutpoint and the three log gaps.

    :math:`c_2 = c_3 - e^{d_2}`, :math:`c_1 = c_2 - e^{d_1}`, :math:`c_4 = c_3 + e^{d_3}`
    with ``log_gap[..., :] = (d_1, d_2, d_3)`` = log of ``c2-c1``, ``c3-c2``, ``c4-c3``.

    Parameters
    ----------
    c3 : array_like, shape (..., L)
    log_gap : array_like, shape (..., L, 3)

    Returns
    -------
    ndarray, shape (..., L, 4)
    """
    c3 = np.asarray(c3, dtype=float)
    g = np.exp(np.asarray(log_gap, dtype=float))
    c2 = c3 - g[..., 1]
    c1 = c2 - g[..., 0]
    return np.stack([c1, c2, c3, c3 + g[..., 2]], axis=-1)


def linear_predictor(
    activity: ArrayLike,
    prior: ArrayLike,
    beta_activity: ArrayLike,
    beta_prior: ArrayLike,
    delta: ArrayLike,
) -> NDArray[np.float64]:
    r""":math:`\eta = \beta_A (A - 29.9)/10 + \beta_P P/10 + \delta` (all arguments broadcast).

    Parameters
    ----------
    activity, prior : array_like
        177Lu-equivalent GBq given in the block and before it.
    beta_activity, beta_prior, delta : array_like
        Probit dose effects per 10 GBq and the cohort effect.

    Returns
    -------
    ndarray
    """
    return (
        np.asarray(beta_activity) * (np.asarray(activity, dtype=float) - A_REF_GBQ) / DOSE_SCALE_GBQ
        + np.asarray(beta_prior) * np.asarray(prior, dtype=float) / DOSE_SCALE_GBQ
        + np.asarray(delta)
    )


def simulate_grades(
    eta: ArrayLike, cut: ArrayLike, u: ArrayLike, rng: np.random.Generator
) -> NDArray[np.int64]:
    """Draw grades from the latent-variable model: ``y = eta + u + N(0, 1)``, grade = #cuts < y.

    Parameters
    ----------
    eta, u : array_like
        Linear predictor and patient propensity (broadcast together, shape (...)).
    cut : array_like, shape (..., 4)
        Cutpoints (broadcast with the batch shape).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of int, shape (...)
        Grades 0-4.
    """
    mean = np.asarray(eta, dtype=float) + np.asarray(u, dtype=float)
    y = mean + rng.normal(size=mean.shape)
    return (y[..., None] > np.asarray(cut)).sum(-1)


# ----------------------------------------------------------------------------------------------
# predictions
# ----------------------------------------------------------------------------------------------
def _draws(params: Mapping[str, ArrayLike]) -> dict[str, NDArray[np.float64]]:
    """Validate and reshape the posterior arrays to (S,), (S, 3), (S, 3, 3)."""
    missing = [k for k in PARAMS if k not in params]
    if missing:
        raise ValueError(
            f"params is missing {missing}; the toxicity predictions need {list(PARAMS)}"
        )
    L = len(CELL_LINES)
    out: dict[str, NDArray[np.float64]] = {}
    for k in PARAMS:
        x = np.asarray(params[k], dtype=float)
        want = {"c3": (L,), "log_gap": (L, N_CUTPOINTS - 1)}.get(k, ())
        if x.shape == want:
            x = x[None]
        if x.ndim == 0:
            x = x[None]
        if x.shape[1:] != want:
            raise ValueError(
                f"params[{k!r}] has shape {x.shape}; expected (draws, {', '.join(map(str, want))})"
                if want
                else f"params[{k!r}] has shape {x.shape}; expected (draws,)"
            )
        out[k] = x
    sizes = {k: len(v) for k, v in out.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"params have different numbers of draws: {sizes}")
    return out


def _patients(
    planned_gbq: ArrayLike,
    prior_gbq: ArrayLike,
    line: ArrayLike | str,
    prior_re188_gbq: ArrayLike | None,
) -> tuple[NDArray, NDArray, NDArray, NDArray]:
    a = np.atleast_1d(np.asarray(planned_gbq, dtype=float))
    p = np.atleast_1d(np.asarray(prior_gbq, dtype=float))
    r = np.zeros_like(a) if prior_re188_gbq is None else np.asarray(prior_re188_gbq, float)
    r = np.atleast_1d(r)
    ln = np.atleast_1d(np.asarray(line, dtype=object))
    for name, v in (("planned_gbq", a), ("prior_gbq", p), ("prior_re188_gbq", r), ("line", ln)):
        if v.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one value per patient), got shape {v.shape}")
    n = len(a)
    if n == 0:
        raise ValueError("planned_gbq is empty; expected at least one patient")
    for name, v in (("prior_gbq", p), ("prior_re188_gbq", r), ("line", ln)):
        if len(v) == 1 and n > 1:
            continue
        if len(v) != n:
            raise ValueError(f"{name} has length {len(v)}; expected {n} (len(planned_gbq)) or 1")
    p, r, ln = (np.broadcast_to(v, (n,)) for v in (p, r, ln))
    for name, v in (("planned_gbq", a), ("prior_gbq", p), ("prior_re188_gbq", r)):
        bad = ~np.isfinite(v) | (v < 0)
        if bad.any():
            raise ValueError(
                f"{name}={float(v[bad][0])!r} is not allowed; expected an activity >= 0 GBq"
            )
    bad_line = [x for x in ln if x not in LINE_EFFECT]
    if bad_line:
        raise ValueError(
            f"line={bad_line[0]!r} is not allowed; expected one of {', '.join(vocab.LINES)}"
        )
    return a, p, r, ln


def line_effect(params: Mapping[str, ArrayLike], line: Sequence[str]) -> NDArray[np.float64]:
    """Cohort effect :math:`\\delta` per draw and patient for the given treatment lines.

    Parameters
    ----------
    params : mapping
        Posterior draws (see :data:`PARAMS`); only the ``delta_*`` entries are used.
    line : sequence of str, length P
        Treatment lines (:data:`netbayes.vocab.LINES`).

    Returns
    -------
    ndarray, shape (S, P)
    """
    S = None
    cols = []
    for ln in line:
        key = LINE_EFFECT[ln]
        if key is None:
            cols.append(None)
        else:
            v = np.atleast_1d(np.asarray(params[key], dtype=float))
            S = len(v)
            cols.append(v)
    if S is None:
        S = len(np.atleast_1d(np.asarray(params["sigma_u"])))
    return np.stack([np.zeros(S) if c is None else c for c in cols], axis=1)


def _eta(
    th: Mapping[str, NDArray], a: NDArray, p: NDArray, r: NDArray, ln: NDArray
) -> NDArray[np.float64]:
    """(S, P) linear predictor; activities of a non-177Lu line (188Re) converted with theta."""
    re = np.isin(ln, _OTHER_NUCLIDE)
    theta = th["theta"][:, None]
    act = np.where(re[None], theta * a[None], a[None])
    prior = p[None] + theta * r[None]
    delta = line_effect(th, list(ln))
    return linear_predictor(act, prior, th["beta_activity"][:, None], th["beta_prior"][:, None],
                            delta)  # fmt: skip


def _chunks(S: int, P: int, K: int) -> list[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(1, S * len(CELL_LINES) * K))
    return [slice(i, min(P, i + step)) for i in range(0, P, step)]


def _prod_cdf_expectation(
    z: NDArray, sigma_u: NDArray, n_nodes: int, rule: QuadratureRule
) -> NDArray[np.float64]:
    r""":math:`E_u[\prod_l \Phi(z_l - u)]` for z (S, P, L), by quadrature; returns (S, P)."""
    x, w = normal_quadrature(n_nodes, rule)
    S, P, _ = z.shape
    out = np.empty((S, P))
    u = sigma_u[:, None, None] * x  # (S, 1, K)
    for sl in _chunks(S, P, len(x)):
        f = ndtr(z[:, sl, :, None] - u[:, :, None, :])  # (S, p, L, K)
        out[:, sl] = np.prod(f, axis=2) @ w
    return out


def grade3_risk(
    params: Mapping[str, ArrayLike],
    planned_gbq: ArrayLike,
    prior_gbq: ArrayLike,
    line: ArrayLike | str,
    *,
    prior_re188_gbq: ArrayLike | None = None,
    n_nodes: int = DEFAULT_N_NODES,
    rule: QuadratureRule = DEFAULT_RULE,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Posterior draws of P(grade >= III) after the planned phase, per line and any line.

    For a new patient (propensity integrated out) treated on ``line`` with ``planned_gbq`` after
    ``prior_gbq``:

    .. math::

        P(G_l \ge III) = 1 - \Phi\Bigl(\frac{c_{l3} - \eta}{\sqrt{1 + \sigma_u^2}}\Bigr),
        \qquad
        P(\max_l G_l \ge III) = 1 - E_u\Bigl[\prod_l \Phi(c_{l3} - \eta - u)\Bigr],

    with :math:`\eta` from :func:`linear_predictor` and the line semantics of the module
    docstring (``I-PRRT`` reference; ``R-PRRT``/``RR-PRRT`` + :math:`\delta_{retreated}`;
    ``188Re-HEDP``: ``planned_gbq`` in GBq 188Re-HEDP times :math:`\theta`, +
    :math:`\delta_{re188}`).

    Parameters
    ----------
    params : mapping of str to array_like
        Posterior draws of every name in :data:`PARAMS`, draws on axis 0 as stored in the
        fitted posterior (``FitResult.draws(name)``): ``c3`` (S, 3), ``log_gap`` (S, 3, 3), the
        others (S,). A single parameter set without the draw axis is accepted (S = 1).
    planned_gbq : array_like, shape (P,)
        Activity planned in the phase: GBq 177Lu-octreotate, or GBq 188Re-HEDP on the
        ``188Re-HEDP`` line. >= 0.
    prior_gbq : array_like, shape (P,) or (1,)
        Cumulative 177Lu-octreotate activity given before the phase (GBq >= 0).
    line : str or array_like of str, shape (P,) or (1,)
        Treatment line per patient, one of :data:`netbayes.vocab.LINES`.
    prior_re188_gbq : array_like, optional
        GBq of 188Re-HEDP given before the phase (default 0); added to the prior activity as
        :math:`\theta \times` ``prior_re188_gbq``.
    n_nodes : int
        Quadrature nodes for the "any line" expectation (:func:`normal_quadrature`).
    rule : {"trapezoid", "gauss-hermite"}
        Quadrature rule.

    Returns
    -------
    per_line : ndarray, shape (S, P, 3)
        :math:`P(G_l \ge III)` in :data:`netbayes.vocab.CELL_LINES` order.
    any_line : ndarray, shape (S, P)
        :math:`P(\max_l G_l \ge III)`.

    Raises
    ------
    ValueError
        Missing or mis-shaped parameters, activities that are negative or not finite, an
        unknown line, or inputs of inconsistent length (the message names the field and
        value).

    Notes
    -----
    Memory is bounded: the quadrature is done in chunks of patients (about 32 MB of work
    arrays), so S = 4000 draws and many patients are fine.
    """
    th = _draws(params)
    a, p, r, ln = _patients(planned_gbq, prior_gbq, line, prior_re188_gbq)
    return _grade3_from_eta(th, _eta(th, a, p, r, ln), n_nodes, rule)


def _grade3_from_eta(
    th: Mapping[str, NDArray],
    eta: NDArray,
    n_nodes: int = DEFAULT_N_NODES,
    rule: QuadratureRule = DEFAULT_RULE,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`grade3_risk` from the linear predictor ``eta`` (S, P) of checked draws."""
    c3 = th["c3"]  # (S, L)
    sig = th["sigma_u"]
    z = c3[:, None, :] - eta[:, :, None]  # (S, P, L)
    per_line = ndtr(-z / np.sqrt(1.0 + sig**2)[:, None, None])
    any_line = 1.0 - _prod_cdf_expectation(z, sig, n_nodes, rule)
    return per_line, any_line


def grade_probs(
    params: Mapping[str, ArrayLike],
    planned_gbq: ArrayLike,
    prior_gbq: ArrayLike,
    line: ArrayLike | str,
    *,
    prior_re188_gbq: ArrayLike | None = None,
) -> NDArray[np.float64]:
    r"""Posterior draws of the full grade distribution (0-IV) per cell line for new patients.

    Exact for the probit link: :math:`P(G_l \le g) = \Phi((c_{l,g+1} - \eta)/\sqrt{1 +
    \sigma_u^2})`, differenced over the grades.

    Parameters
    ----------
    params, planned_gbq, prior_gbq, line, prior_re188_gbq
        As in :func:`grade3_risk`.

    Returns
    -------
    ndarray, shape (S, P, 3, 5)
        :math:`P(G_l = g)` for the lines in :data:`netbayes.vocab.CELL_LINES` order and grades
        0, I, II, III, IV; sums to 1 over the last axis. ``probs[..., 3:].sum(-1)`` equals the
        ``per_line`` output of :func:`grade3_risk`.
    """
    th = _draws(params)
    a, p, r, ln = _patients(planned_gbq, prior_gbq, line, prior_re188_gbq)
    eta = _eta(th, a, p, r, ln)
    cut = cutpoints(th["c3"], th["log_gap"])  # (S, L, 4)
    scale = np.sqrt(1.0 + th["sigma_u"] ** 2)[:, None, None, None]
    cum = ndtr((cut[:, None] - eta[:, :, None, None]) / scale)  # (S, P, L, 4)
    zeros = np.zeros_like(cum[..., :1])
    return np.diff(np.concatenate([zeros, cum, zeros + 1.0], axis=-1), axis=-1)


def worst_grade_probs(
    params: Mapping[str, ArrayLike],
    planned_gbq: ArrayLike,
    prior_gbq: ArrayLike,
    line: ArrayLike | str,
    *,
    prior_re188_gbq: ArrayLike | None = None,
    n_nodes: int = DEFAULT_N_NODES,
    rule: QuadratureRule = DEFAULT_RULE,
) -> NDArray[np.float64]:
    r"""Posterior draws of the worst grade over the three lines: (<= II, III, IV).

    :math:`P(\max_l G_l \le II) = E_u[\prod_l \Phi(c_{l3} - \eta - u)]` and
    :math:`P(\max_l G_l \le III) = E_u[\prod_l \Phi(c_{l4} - \eta - u)]`, by quadrature.

    Parameters
    ----------
    params, planned_gbq, prior_gbq, line, prior_re188_gbq, n_nodes, rule
        As in :func:`grade3_risk`.

    Returns
    -------
    ndarray, shape (S, P, 3)
        Probabilities of worst grade <= II, = III and = IV; ``1 - probs[..., 0]`` is the
        ``any_line`` output of :func:`grade3_risk`.
    """
    th = _draws(params)
    a, p, r, ln = _patients(planned_gbq, prior_gbq, line, prior_re188_gbq)
    eta = _eta(th, a, p, r, ln)
    cut = cutpoints(th["c3"], th["log_gap"])  # (S, L, 4)
    le2 = _prod_cdf_expectation(cut[:, None, :, 2] - eta[..., None], th["sigma_u"], n_nodes, rule)
    le3 = _prod_cdf_expectation(cut[:, None, :, 3] - eta[..., None], th["sigma_u"], n_nodes, rule)
    return np.stack([le2, le3 - le2, 1.0 - le3], axis=-1)


# ----------------------------------------------------------------------------------------------
# the any-line risk for many patients: tabulated per draw, interpolated
# ----------------------------------------------------------------------------------------------
TABLE_MAX_STEP = 0.04
"""Largest grid step (in :math:`\\eta`) of :func:`any_line_risk_table`; the interpolation error
is at most ``D4_BOUND / 384 * step**4`` (about 5.3e-8 at this step)."""
_CLAMP_SD = 8.0
_COEF_RECORD = np.dtype([("c0", "f8"), ("c1", "f8"), ("c2", "f8"), ("c3", "f8")])
_EVAL_RECORDS = 1 << 15  # coefficient records gathered at once when evaluating (1 MB)
_SUB_BATCH = 1 << 20  # elements per work array while tabulating (8 MB)


def _normal_derivative_sups() -> tuple[float, ...]:
    r""":math:`M_a = \sup_x |\frac{d^a}{dx^a}\Phi(x)|` for a = 0..4 (closed forms).

    :math:`\Phi' = \varphi`, :math:`\Phi'' = -x\varphi` (largest at :math:`|x| = 1`),
    :math:`\Phi''' = (x^2 - 1)\varphi` (largest at 0; the other extremes, at
    :math:`x^2 = 3`, are smaller), :math:`\Phi'''' = -(x^3 - 3x)\varphi`, extreme where
    :math:`x^4 - 6x^2 + 3 = 0`, i.e. :math:`x^2 = 3 \mp \sqrt 6` (the smaller root wins).
    """

    def phi(x: float) -> float:
        return math.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)

    r6 = math.sqrt(6.0)
    return (
        1.0,
        phi(0.0),
        phi(1.0),  # |x phi(x)|
        max(phi(0.0), 2.0 * phi(math.sqrt(3.0))),  # |(x^2 - 1) phi(x)|
        max(abs(x**3 - 3.0 * x) * phi(x) for x in (math.sqrt(3 - r6), math.sqrt(3 + r6))),
    )


def _product_d4_bound(n_factors: int) -> float:
    r"""Bound on :math:`|h''''|` for :math:`h(y) = \prod_{l=1}^{L} \Phi(c_l - y)`, any cutpoints.

    Leibniz: :math:`h'''' = \sum_{a_1 + \dots + a_L = 4} \binom{4}{a_1, \dots, a_L}
    \prod_l \Phi^{(a_l)}(c_l - y)\,(-1)^{a_l}`, each factor bounded by :math:`M_{a_l}`
    (:func:`_normal_derivative_sups`); 7.91 for three cell lines.
    """
    m = _normal_derivative_sups()
    total = 0.0
    for a in itertools.product(range(5), repeat=n_factors):
        if sum(a) == 4:
            coef = math.factorial(4) / math.prod(math.factorial(k) for k in a)
            total += coef * math.prod(m[k] for k in a)
    return total


D4_BOUND = _product_d4_bound(len(CELL_LINES))
r"""Bound on the fourth derivative in :math:`\eta` of the any-line risk of every draw (any
cutpoints, any :math:`\sigma_u`): the quadrature sum :math:`1 - \sum_k w_k h(\eta + \sigma_u
x_k)` has positive weights summing to 1, so its fourth derivative is bounded by that of
:math:`h(y) = \prod_l \Phi(c_{l3} - y)` (:func:`_product_d4_bound`)."""


@dataclass(frozen=True)
class AnyLineRiskTable:
    r"""The any-line grade >= III risk of every posterior draw as a function of :math:`\eta`,
    tabulated and interpolated (cubic Hermite: values and exact derivatives at the nodes).

    Built by :func:`any_line_risk_table`; call it with linear predictors to get the risks.

    Attributes
    ----------
    start, step : numpy.ndarray, shape (S,)
        First node and grid step per draw.
    last : numpy.ndarray, shape (S,)
        Index of the last node per draw (as float); :math:`\eta` beyond the grid is clamped.
    coef : numpy.ndarray, shape (S * (G - 1), 4)
        Cubic coefficients per draw and interval, in powers of the position in the interval
        (one row per interval, so that a lookup reads one 32-byte record).
    max_error : float
        Proven bound on ``|table(eta) - quadrature(eta)|`` for every draw and every
        :math:`\eta` (interpolation bound plus, where the grid was clamped, the saturated
        tail; see :func:`any_line_risk_table`).
    """

    start: NDArray[np.float64]
    step: NDArray[np.float64]
    last: NDArray[np.float64]
    coef: NDArray[np.float64]
    max_error: float

    @property
    def n_draws(self) -> int:
        """Number of posterior draws S."""
        return int(self.start.shape[0])

    def __call__(self, eta: ArrayLike) -> NDArray[np.float64]:
        """The any-line risk per draw at ``eta``.

        Parameters
        ----------
        eta : array_like, shape (..., S)
            Linear predictors, the draw axis last (:func:`linear_predictor` per draw).

        Returns
        -------
        numpy.ndarray, shape (..., S)
            :math:`P(\\max_l G_l \\ge III)`, clipped to [0, 1]; within ``max_error`` of the
            quadrature for :math:`\\eta` in the range the table was built for (and beyond
            the saturation limits); other values are clamped to the range's ends.
        """
        S = self.n_draws
        eta = np.asarray(eta, dtype=float)
        if eta.shape[-1:] != (S,):
            raise ValueError(f"eta must have the draw axis last, length {S}; got {eta.shape}")
        n_int = self.coef.shape[0] // S
        t = eta - self.start
        t /= self.step
        np.maximum(t, 0.0, out=t)  # clamp to the grid
        np.minimum(t, self.last, out=t)
        j = t.astype(np.intp)  # floor: t >= 0
        np.minimum(j, n_int - 1, out=j)
        t -= j  # position in the interval, [0, 1]
        j += np.arange(S, dtype=np.intp) * n_int
        table = self.coef.view(_COEF_RECORD).reshape(-1)
        out = np.empty_like(t)
        flat_j, flat_t, flat_out = j.reshape(-1, S), t.reshape(-1, S), out.reshape(-1, S)
        rows = max(1, _EVAL_RECORDS // S)  # records gathered at once (small: no page faults)
        for r0 in range(0, flat_j.shape[0], rows):
            c = table.take(flat_j[r0 : r0 + rows])  # one 32-byte record per lookup
            tt, o = flat_t[r0 : r0 + rows], flat_out[r0 : r0 + rows]
            np.multiply(c["c3"], tt, out=o)
            for name in ("c2", "c1"):
                o += c[name]
                o *= tt
            o += c["c0"]
        np.maximum(out, 0.0, out=out)
        return np.minimum(out, 1.0, out=out)


def _h_and_slope(c: NDArray, y: NDArray) -> tuple[NDArray, NDArray]:
    r""":math:`h(y) = \prod_l \Phi(c_l - y)` and :math:`-dh/dy` for c (B, L), y (B, N)."""
    z = c[:, :, None] - y[:, None, :]  # (B, L, N)
    cdf = ndtr(z)
    pdf = np.exp(-0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
    h = cdf[:, 0].copy()
    for lin in range(1, z.shape[1]):
        h *= cdf[:, lin]
    slope = np.zeros_like(h)  # -h'(y) = sum_l pdf_l prod_{m != l} cdf_m
    for lin in range(z.shape[1]):
        term = pdf[:, lin].copy()
        for m in range(z.shape[1]):
            if m != lin:
                term *= cdf[:, m]
        slope += term
    return h, slope


def any_line_risk_table(
    params: Mapping[str, ArrayLike],
    eta_min: ArrayLike,
    eta_max: ArrayLike,
    *,
    n_nodes: int = DEFAULT_N_NODES,
    rule: QuadratureRule = DEFAULT_RULE,
    max_step: float = TABLE_MAX_STEP,
) -> AnyLineRiskTable:
    r"""Tabulate the any-line risk of :func:`grade3_risk` per draw over a range of :math:`\eta`.

    Per draw, :math:`g(\eta) = 1 - \sum_k w_k h(\eta + \sigma_u x_k)` with
    :math:`h(y) = \prod_l \Phi(c_{l3} - y)` and the nodes and weights of
    :func:`normal_quadrature` is exactly the ``any_line`` output of :func:`grade3_risk` at a
    patient with linear predictor :math:`\eta` (the same quadrature, same nodes). It is
    tabulated with its derivative on a grid of step :math:`\tau \le` ``max_step`` and
    interpolated by cubic Hermite polynomials.

    Parameters
    ----------
    params : mapping of str to array_like
        Posterior draws (:data:`PARAMS`, as for :func:`grade3_risk`).
    eta_min, eta_max : array_like, shape (S,)
        Per draw, the range of linear predictors to cover (e.g. over a batch of patients).
    n_nodes, rule
        Quadrature, as in :func:`grade3_risk`.
    max_step : float
        Largest grid step.

    Returns
    -------
    AnyLineRiskTable

    Notes
    -----
    *Error bound.* Cubic Hermite interpolation of a function with exact values and
    derivatives at the nodes errs by at most :math:`\tau^4/384\,\sup|g''''|`; the weights are
    positive and sum to 1, so :math:`\sup|g''''| \le \sup|h''''| \le` :data:`D4_BOUND`
    (7.91), hence at most :math:`2.1\times10^{-2}\,\tau^4` (5.3e-8 at the default step 0.04).
    :math:`g` increases in :math:`\eta` from :math:`1 - \sum_k w_k \approx 0` to 1. Outside
    :math:`[\min_l c_{l3} - 8 s, \max_l c_{l3} + 8 s]`, :math:`s = \sqrt{1 + \sigma_u^2}`,
    it is saturated (:math:`< 10^{-14}` from its limit) and the grid is clamped there; by
    monotonicity the clamped value errs by at most its distance to the limit, which is
    computed and added to ``max_error``. Values are clipped to [0, 1].

    *Cost.* With the default equispaced (trapezoid) rule the nodes :math:`\sigma_u x_k` are
    multiples of :math:`\sigma_u \Delta` (:math:`\Delta` the node spacing), so the grid step
    is chosen as a multiple or a fraction of it: every :math:`h(\eta_j + \sigma_u x_k)` then
    lies on one fine grid per draw and is computed once (a few thousand normal CDFs per draw
    instead of nodes x grid points). Draws with :math:`\sigma_u \Delta` below
    ``max_step / n_nodes`` (and any non-equispaced rule) are evaluated node by node.
    """
    th = _draws(params)
    c = th["c3"]  # (S, L)
    sig = th["sigma_u"]
    S = c.shape[0]
    lo_req = np.broadcast_to(np.asarray(eta_min, dtype=float), (S,))
    hi_req = np.broadcast_to(np.asarray(eta_max, dtype=float), (S,))
    if not (np.all(np.isfinite(lo_req)) and np.all(np.isfinite(hi_req))):
        raise ValueError("eta_min and eta_max must be finite")
    if not (isinstance(max_step, (int, float)) and 0.0 < max_step <= 1.0):
        raise ValueError(f"max_step={max_step!r} is not allowed; expected a number in (0, 1]")
    x, w = normal_quadrature(n_nodes, rule)
    K = len(x)
    spread = _CLAMP_SD * np.sqrt(1.0 + sig**2)
    sat_lo, sat_hi = c.min(axis=1) - spread, c.max(axis=1) + spread
    start = np.clip(np.minimum(lo_req, hi_req), sat_lo, sat_hi)
    stop = np.clip(np.maximum(lo_req, hi_req), sat_lo, sat_hi)

    # grid step per draw: tau = n * phi with sigma * Delta = m * phi (fine grid phi)
    delta = (x[-1] - x[0]) / (K - 1) if K > 1 else 0.0
    aligned = K > 1 and bool(np.allclose(np.diff(x), delta, rtol=0.0, atol=1e-12))
    sd = sig * delta
    m = np.zeros(S, dtype=np.int64)
    n = np.zeros(S, dtype=np.int64)
    if aligned:
        big = sd >= max_step
        m[big] = np.ceil(sd[big] / max_step)
        n[big] = 1
        small = ~big & (sd * K > max_step)  # fewer fine points than node-by-node work
        m[small] = 1
        n[small] = np.floor(max_step / sd[small])
    fine = np.where(m > 0, sd / np.maximum(m, 1), 0.0)
    step = np.where(m > 0, n * fine, max_step)
    n_nodes_grid = np.maximum(np.ceil((stop - start) / step).astype(np.int64) + 1, 2)
    G = int(n_nodes_grid.max())
    Y = np.empty((S, G))
    D = np.empty((S, G))  # dg/deta
    for key in sorted(set(zip(m.tolist(), n.tolist(), strict=True))):
        mm, nn = key
        idx = np.flatnonzero((m == mm) & (n == nn))
        Gg = int(n_nodes_grid[idx].max())
        if mm > 0:  # aligned: one fine grid per draw
            N = (Gg - 1) * nn + (K - 1) * mm + 1
            per = max(1, _SUB_BATCH // (N * c.shape[1]))
            for b0 in range(0, len(idx), per):
                ib = idx[b0 : b0 + per]
                y = (start[ib] + sig[ib] * x[0])[:, None] + fine[ib, None] * np.arange(N)
                h, slope = _h_and_slope(c[ib], y)
                for vals, target in ((h, Y), (slope, D)):
                    # node k of grid point j is fine point j n + k m: a strided view, summed
                    strides = (vals.strides[0], nn * vals.itemsize, mm * vals.itemsize)
                    nodes = as_strided(vals, (len(ib), Gg, K), strides, writeable=False)
                    target[ib, :Gg] = np.einsum("bjk,k->bj", nodes, w)
                Y[ib, :Gg] = 1.0 - Y[ib, :Gg]
        else:  # node by node (tiny sigma_u, or nodes not equispaced)
            per = max(1, _SUB_BATCH // (Gg * K * c.shape[1]))
            for b0 in range(0, len(idx), per):
                ib = idx[b0 : b0 + per]
                eta = start[ib, None] + step[ib, None] * np.arange(Gg)  # (B, G)
                y = (eta[:, :, None] + sig[ib, None, None] * x).reshape(len(ib), -1)
                h, slope = _h_and_slope(c[ib], y)
                Y[ib, :Gg] = 1.0 - h.reshape(len(ib), Gg, K) @ w
                D[ib, :Gg] = slope.reshape(len(ib), Gg, K) @ w
        if Gg < G:
            Y[idx, Gg:] = Y[idx, Gg - 1 : Gg]
            D[idx, Gg:] = 0.0
    # cubic Hermite coefficients per interval, in the position t in [0, 1]: y0, m0,
    # 3 dy - 2 m0 - m1, m0 + m1 - 2 dy (slopes m scaled by the step), one at a time
    first, final = Y[:, 0].copy(), Y[np.arange(S), n_nodes_grid - 1]
    coef = np.empty((S, G - 1, 4))
    coef[..., 0] = Y[:, :-1]
    np.multiply(D[:, :-1], step[:, None], out=coef[..., 1])  # m0
    m1 = D[:, 1:] * step[:, None]
    del D
    dy = Y[:, 1:] - Y[:, :-1]
    del Y
    coef[..., 2] = 3.0 * dy - 2.0 * coef[..., 1] - m1
    coef[..., 3] = coef[..., 1] + m1 - 2.0 * dy
    del m1, dy
    coef = coef.reshape(-1, 4)
    last = (n_nodes_grid - 1).astype(float)
    err = D4_BOUND / 384.0 * float(np.max(step)) ** 4
    low = lo_req < sat_lo  # clamped below: the risk there lies in [1 - sum(w), first]
    high = hi_req > sat_hi  # clamped above: in [final, 1]
    tail = 0.0
    if low.any():
        tail = max(tail, float(np.max(first[low] - (1.0 - w.sum()))))
    if high.any():
        tail = max(tail, float(np.max(1.0 - final[high])))
    return AnyLineRiskTable(
        start=start, step=step, last=last, coef=coef, max_error=err + tail + 1e-15
    )
