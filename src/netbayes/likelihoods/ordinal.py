r"""Cumulative-link (ordinal) likelihood terms for CTCAE haematological toxicity grades.

Model
-----
For patient :math:`i` and blood cell line :math:`l` (leucocytes, platelets, haemoglobin) the
CTCAE grade :math:`G_{il} \in \{0, \dots, 4\}` (0, I, II, III, IV) is the coarsening of a latent

.. math::

    y^*_{il} = \eta_{il} + u_i + \varepsilon_{il}, \qquad
    u_i \sim \mathcal N(0, \sigma_u^2), \qquad \varepsilon_{il} \overset{iid}{\sim} F,

with :math:`F` the standard logistic (``link="logit"``) or standard normal (``link="probit"``)
distribution function, and :math:`G_{il} \le g \iff y^*_{il} \le c_{l,g+1}` for ordered cutpoints
:math:`c_{l,1} < c_{l,2} < c_{l,3} < c_{l,4}`, so that

.. math::

    P(G_{il} \le g \mid u_i) = F(c_{l,g+1} - \eta_{il} - u_i), \qquad g = 0, \dots, 3.

:math:`u_i` is a patient propensity shared by the cell lines (and by a patient's cycles); it is
what makes "grade III/IV in any line" differ from the product of per-line probabilities.

Everything here is a pure PyTensor function: inputs may be PyTensor variables or numpy arrays,
outputs are PyTensor tensors (call ``.eval()`` to get numbers).  All probabilities are computed
in log space with :math:`\log F`, ``log1mexp`` and ``logsumexp`` so that nothing evaluates
``log(0)``; the functions give finite values and finite gradients for linear predictors far in
the tails (tested at :math:`|\eta| = 30`).  Nothing here knows about papers or cohorts.

Numerical integration over :math:`u`
------------------------------------
The shared propensity is integrated out with a fixed quadrature rule for
:math:`E[h(u)] = E[h(\sigma_u X)]`, :math:`X \sim \mathcal N(0, 1)`, see
:func:`normal_quadrature`.  The integrands are products of smooth steps of unit width in
:math:`u`, i.e. of width :math:`1/\sigma_u` in :math:`X`, so any fixed rule needs more nodes as
:math:`\sigma_u` grows.  Gauss-Hermite (:func:`gauss_hermite_nodes`) wastes most of its nodes in
the far Gaussian tails: with 32 nodes its absolute error is ~1e-5 (logit) to ~1e-3 (probit) at
:math:`\sigma_u = 3`.  The default rule is therefore the Gaussian-weighted trapezoid rule on an
equispaced grid over :math:`[-8, 8]` with 96 nodes, which is accurate to about 1e-12 for
:math:`\sigma_u \le 3` and 1e-9 at :math:`\sigma_u = 4` for both links (the trapezoid rule
converges geometrically for analytic integrands on the line).  The rules (and the NumPy
cutpoint helpers) are defined in :mod:`netbayes.formulas.toxicity`, which has no PyTensor
dependency, and re-exported here.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pytensor
import pytensor.tensor as pt
from numpy.typing import NDArray
from pytensor.graph.basic import Variable
from pytensor.tensor import TensorLike, TensorVariable

# NumPy-only pieces live in netbayes.formulas.toxicity (no PyTensor on the prediction path);
# they are re-exported here so that the likelihood API stays complete.
from netbayes.formulas.toxicity import (
    DEFAULT_N_NODES,
    DEFAULT_RULE,
    N_CUTPOINTS,
    N_GRADES,
    QuadratureRule,
    gauss_hermite_nodes,
    increments_from_cutpoints_np,
    normal_quadrature,
    ordered_cutpoints_from_increments_np,
)
from netbayes.likelihoods.lattice import lattice_loglik

__all__ = [
    "DEFAULT_N_NODES",
    "DEFAULT_RULE",
    "LINKS",
    "N_CUTPOINTS",
    "N_GRADES",
    "any_line_counts_loglik",
    "any_line_probs",
    "coarsened_counts_loglik",
    "full_grade_counts_loglik",
    "gauss_hermite_nodes",
    "increments_from_cutpoints_np",
    "individual_grades_loglik",
    "log_cdf",
    "margin_tables_loglik",
    "marginal_line_probs",
    "multinomial_loglik",
    "normal_quadrature",
    "ordered_cutpoints_from_increments",
    "ordered_cutpoints_from_increments_np",
    "ordinal_logprobs",
    "pattern_logprobs",
    "poisson_multinomial_lattice_loglik",
    "poisson_multinomial_loglik",
]

Link = Literal["logit", "probit"]

LINKS: tuple[str, ...] = ("logit", "probit")
_SQRT2 = float(np.sqrt(2.0))


# ----------------------------------------------------------------------------------------------
# link functions
# ----------------------------------------------------------------------------------------------
def _check_link(link: str) -> None:
    if link not in LINKS:
        raise ValueError(f"link must be one of {LINKS}, got {link!r}")


def _as_float(x: TensorLike) -> TensorVariable:
    """Tensor of a float dtype.

    Plain data keeps a float dtype it already has, otherwise becomes ``floatX``.  PyTensor's
    own conversion turns a Python ``6`` into an int8 constant, and int8 arithmetic with float
    constants is float32, so e.g. ``gammaln(6 + 1.0)`` would silently lose precision.
    """
    if not isinstance(x, Variable):
        x = np.asarray(x)
        if x.dtype.kind != "f":
            x = x.astype(pytensor.config.floatX)
    x = pt.as_tensor_variable(x)
    if not x.dtype.startswith("float"):
        x = pt.cast(x, pytensor.config.floatX)
    return x


def _tiny(x: TensorVariable) -> float:
    """Smallest positive normal number of ``x``'s float dtype (used to keep ``log1mexp`` finite)."""
    dtype = x.dtype if str(x.dtype).startswith("float") else "float64"
    return float(np.finfo(dtype).tiny)


def log_cdf(z: TensorLike, link: Link = "logit") -> TensorVariable:
    r"""Log of the standard logistic or normal distribution function, stable in both tails.

    Parameters
    ----------
    z : tensor_like
        Argument.
    link : {"logit", "probit"}
        ``"logit"``: :math:`\log F(z) = -\log(1 + e^{-z})` (``-softplus(-z)``).
        ``"probit"``: :math:`\log\Phi(z)`, computed as
        :math:`\log(\operatorname{erfcx}(-z/\sqrt2)/2) - z^2/2` for :math:`z < -1` and
        :math:`\operatorname{log1p}(-\operatorname{erfc}(z/\sqrt2)/2)` otherwise.

    Returns
    -------
    TensorVariable
        :math:`\log F(z)`, same shape as ``z``.  Both distributions are symmetric, so
        :math:`\log(1 - F(z)) = \log F(-z)`.

    Notes
    -----
    The probit branches are fed "safe" arguments (the double-``switch`` trick), so the branch
    that is not selected can neither overflow nor feed NaN into gradients.
    """
    _check_link(link)
    z = _as_float(z)
    if link == "logit":
        return -pt.softplus(-z)
    lower = pt.lt(z, -1.0)
    z_lo = pt.switch(lower, z, -1.0)
    z_hi = pt.switch(lower, 0.0, z)
    lo = pt.log(pt.erfcx(-z_lo / _SQRT2) / 2.0) - pt.sqr(z_lo) / 2.0
    hi = pt.log1p(-pt.erfc(z_hi / _SQRT2) / 2.0)
    return pt.switch(lower, lo, hi)


def _log_cdf_diff(a: TensorVariable, b: TensorVariable, link: Link) -> TensorVariable:
    r""":math:`\log(F(b) - F(a))` for :math:`a < b`, stable in both tails.

    When the pair lies in the upper tail (:math:`a + b > 0`) the symmetric identity
    :math:`F(b) - F(a) = F(-a) - F(-b)` is used, so the computation is always
    :math:`\log F(b') + \operatorname{log1mexp}(\log F(a') - \log F(b'))` with
    :math:`a' < b'` and :math:`a' + b' \le 0`, where :math:`\log F` has full relative precision.
    The ``log1mexp`` argument is capped at ``-tiny`` so that numerically coincident cutpoints give
    a very small but finite log-probability instead of ``-inf``.
    """
    upper = pt.gt(a + b, 0.0)
    a2 = pt.switch(upper, -b, a)
    b2 = pt.switch(upper, -a, b)
    lb = log_cdf(b2, link)
    la = log_cdf(a2, link)
    return lb + pt.log1mexp(pt.minimum(la - lb, -_tiny(lb)))


def _check_last_axis(x: TensorVariable, size: int, name: str) -> None:
    if x.type.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (last axis of size {size})")
    static = x.type.shape[-1]
    if static is not None and static != size:
        raise ValueError(f"{name} must have last axis of size {size}, got {static}")


# ----------------------------------------------------------------------------------------------
# conditional category probabilities
# ----------------------------------------------------------------------------------------------
def ordinal_logprobs(
    eta: TensorLike, cutpoints: TensorLike, link: Link = "logit"
) -> TensorVariable:
    r"""Log category probabilities of a cumulative-link ordinal model.

    .. math::

        \log P(G = g) = \log\bigl(F(c_{g+1} - \eta) - F(c_g - \eta)\bigr),
        \qquad c_0 = -\infty,\ c_{K+1} = +\infty,

    i.e. :math:`\log F(c_1 - \eta)` for the lowest category, :math:`\log F(\eta - c_K)` for the
    highest and a stable log-difference (see Notes) in between.

    Parameters
    ----------
    eta : tensor_like, shape (...)
        Linear predictor (location of the latent variable; include any patient effect here).
    cutpoints : tensor_like, shape (..., K)
        Strictly increasing cutpoints along the last axis; ``K = 4`` for CTCAE grades 0-IV.
        The batch shape broadcasts with ``eta``'s shape.
    link : {"logit", "probit"}
        Distribution of the latent error (standard logistic or standard normal).

    Returns
    -------
    TensorVariable, shape (..., K + 1)
        :math:`\log P(G = g)` for :math:`g = 0, \dots, K`; finite for any finite input (e.g.
        :math:`\eta = \pm 30`) and ``logsumexp`` to 0 over the last axis up to rounding.

    Notes
    -----
    Interior categories use :math:`\log F(b) + \operatorname{log1mexp}(\log F(a) - \log F(b))`,
    reflected to :math:`F(-a) - F(-b)` when :math:`a + b > 0`, so that the smaller of the two
    tails is always the one differenced.  Cutpoints that are not increasing are not checked
    (a symbolic check would cost a graph assertion); they give meaningless, but finite, output.
    """
    _check_link(link)
    eta = _as_float(eta)
    cutpoints = _as_float(cutpoints)
    if cutpoints.type.ndim == 0 or cutpoints.type.shape[-1] == 0:
        raise ValueError("cutpoints must have a non-empty last axis")
    z = cutpoints - pt.shape_padright(eta)
    first = log_cdf(z[..., :1], link)
    last = log_cdf(-z[..., -1:], link)
    middle = _log_cdf_diff(z[..., :-1], z[..., 1:], link)
    return pt.concatenate([first, middle, last], axis=-1)


def multinomial_loglik(counts: TensorLike, logp: TensorLike) -> TensorVariable:
    r"""Multinomial log-likelihood, including the multinomial coefficient.

    .. math::

        \log\binom{n}{k_1, \dots, k_J} + \sum_j k_j \log p_j, \qquad n = \sum_j k_j.

    Parameters
    ----------
    counts : tensor_like, shape (..., J)
        Non-negative counts per category.
    logp : tensor_like, shape (..., J)
        Log category probabilities (broadcast with ``counts``).

    Returns
    -------
    TensorVariable, shape (...)
        One log-likelihood per row (sum it for the total).

    Notes
    -----
    Terms with a zero count contribute exactly 0 even if the log-probability is ``-inf``.
    """
    counts = _as_float(counts)
    logp = _as_float(logp)
    n = counts.sum(axis=-1)
    log_coef = pt.gammaln(n + 1.0) - pt.gammaln(counts + 1.0).sum(axis=-1)
    terms = pt.switch(pt.eq(counts, 0), 0.0, counts * logp)
    return log_coef + terms.sum(axis=-1)


def _category_logprobs(
    eta: TensorLike,
    cutpoints: TensorLike,
    link: Link,
    sigma_u: TensorLike | None,
    n_nodes: int,
    rule: QuadratureRule,
) -> TensorVariable:
    if sigma_u is None:
        return ordinal_logprobs(eta, cutpoints, link)
    return marginal_line_probs(eta, cutpoints, sigma_u, link, n_nodes, rule=rule, log=True)


def _as_numpy_if_constant(x: TensorLike) -> NDArray | None:
    """Return ``x`` as a numpy array when it is plain data (not a symbolic variable)."""
    if isinstance(x, pt.TensorVariable) or hasattr(x, "owner"):
        return None
    try:
        return np.asarray(x)
    except Exception:  # pragma: no cover - exotic inputs are treated as symbolic
        return None


def full_grade_counts_loglik(
    counts: TensorLike,
    eta: TensorLike,
    cutpoints: TensorLike,
    link: Link = "logit",
    *,
    sigma_u: TensorLike | None = None,
    n_nodes: int = DEFAULT_N_NODES,
    rule: QuadratureRule = DEFAULT_RULE,
) -> TensorVariable:
    r"""Multinomial log-likelihood of counts per grade 0, I, II, III, IV.

    E.g. "out of 11 treatment cycles, leukopenia grade 0: 6, I: 4, II: 1, III: 0, IV: 0" is
    ``counts = [6, 4, 1, 0, 0]``:

    .. math::

        \log\binom{n}{k_0, \dots, k_4} + \sum_{g=0}^{4} k_g \log p_g,

    with :math:`p_g = P(G = g \mid \eta)` from :func:`ordinal_logprobs`, or, if ``sigma_u`` is
    given, the marginal :math:`p_g = E_u[P(G = g \mid \eta + u)]` from
    :func:`marginal_line_probs`.

    Parameters
    ----------
    counts : tensor_like, shape (..., 5)
        Counts per grade.
    eta, cutpoints, link
        As in :func:`ordinal_logprobs` (``cutpoints`` last axis 4).
    sigma_u : tensor_like, optional
        If given, integrate :math:`u \sim \mathcal N(0, \sigma_u^2)` out of each category
        probability (population-level counts over *different* patients).  Leave ``None`` when
        ``eta`` already contains the patient effect.
    n_nodes, rule
        Quadrature settings, see :func:`normal_quadrature`; only used with ``sigma_u``.

    Returns
    -------
    TensorVariable, shape (...)
        Log-likelihood per row.

    Notes
    -----
    The multinomial assumes the :math:`n` units are independent given the probabilities.  Counts
    over several cycles of the *same* patients are not independent once :math:`u` is integrated
    out; for those keep the patient effect in ``eta`` (``sigma_u=None``).
    """
    counts = _as_float(counts)
    _check_last_axis(counts, N_GRADES, "counts")
    cutpoints = _as_float(cutpoints)
    _check_last_axis(cutpoints, N_CUTPOINTS, "cutpoints")
    logp = _category_logprobs(eta, cutpoints, link, sigma_u, n_nodes, rule)
    return multinomial_loglik(counts, logp)


def _coarsen_logprobs(logp5: TensorVariable) -> TensorVariable:
    """Collapse 5 grade log-probabilities to (<= II, III, IV)."""
    le2 = pt.logsumexp(logp5[..., :3], axis=-1, keepdims=True)
    return pt.concatenate([le2, logp5[..., 3:]], axis=-1)


def _check_partial_counts(n: TensorLike, *parts: TensorLike) -> None:
    n_np = _as_numpy_if_constant(n)
    parts_np = [_as_numpy_if_constant(p) for p in parts]
    if n_np is None or any(p is None for p in parts_np):
        return
    total = sum(parts_np)
    if np.any(np.asarray(n_np) < total) or any(np.any(p < 0) for p in parts_np):
        raise ValueError("need 0 <= sub-counts and their sum <= n")


def coarsened_counts_loglik(
    n: TensorLike,
    n_g3: TensorLike,
    n_g4: TensorLike,
    eta: TensorLike,
    cutpoints: TensorLike,
    link: Link = "logit",
    *,
    sigma_u: TensorLike | None = None,
    n_nodes: int = DEFAULT_N_NODES,
    rule: QuadratureRule = DEFAULT_RULE,
) -> TensorVariable:
    r"""Multinomial log-likelihood when only grade III and IV counts out of ``n`` are reported.

    Published tables typically give e.g. "leucocytes grade III: 14, grade IV: 0 of 181
    patients"; grades 0-II are lumped, so the categories are :math:`\{\le \mathrm{II},
    \mathrm{III}, \mathrm{IV}\}` with

    .. math::

        p_{\le II} = F(c_3 - \eta), \quad p_{III} = F(c_4 - \eta) - F(c_3 - \eta), \quad
        p_{IV} = 1 - F(c_4 - \eta),

    and the log-likelihood is
    :math:`\log\frac{n!}{(n - k_3 - k_4)!\,k_3!\,k_4!} + (n - k_3 - k_4)\log p_{\le II}
    + k_3 \log p_{III} + k_4 \log p_{IV}`.  This equals the full-grade multinomial
    log-likelihood summed over all splits of the :math:`n - k_3 - k_4` lumped units into
    grades 0, I, II.

    Parameters
    ----------
    n, n_g3, n_g4 : tensor_like, shape (...)
        Number of units (patients or cycles) and how many had grade III and grade IV.
    eta, cutpoints, link
        As in :func:`ordinal_logprobs` (``cutpoints`` last axis 4).
    sigma_u, n_nodes, rule
        As in :func:`full_grade_counts_loglik`: give ``sigma_u`` to use the marginal
        (population-averaged) probabilities, appropriate for per-line counts over different
        patients when ``eta`` holds no patient effect.

    Returns
    -------
    TensorVariable, shape (...)
        Log-likelihood per row.

    Notes
    -----
    Published per-patient counts usually refer to the *worst* grade over all cycles; ``eta``
    must then describe the worst-over-cycles grade, not a per-cycle grade.
    """
    _check_partial_counts(n, n_g3, n_g4)
    n = _as_float(n)
    n_g3 = _as_float(n_g3)
    n_g4 = _as_float(n_g4)
    cutpoints = _as_float(cutpoints)
    _check_last_axis(cutpoints, N_CUTPOINTS, "cutpoints")
    logp = _coarsen_logprobs(_category_logprobs(eta, cutpoints, link, sigma_u, n_nodes, rule))
    counts = pt.stack(pt.broadcast_arrays(n - n_g3 - n_g4, n_g3, n_g4), axis=-1)
    return multinomial_loglik(counts, logp)


def individual_grades_loglik(
    grades: TensorLike,
    eta: TensorLike,
    cutpoints: TensorLike,
    link: Link = "logit",
    *,
    reduce: bool = True,
) -> TensorVariable:
    r"""Log-likelihood of individually observed grades.

    .. math::

        \sum_i \log P(G_i = g_i \mid \eta_i) ,

    for individual-level records (patient, cycle, cell line, grade, activity).  ``eta`` must
    already include the patient effect :math:`u_i` (e.g. a ``pm.Normal`` per patient) and
    ``cutpoints`` the cutpoints of each record's cell line.

    Parameters
    ----------
    grades : tensor_like of int, shape (...)
        Observed grades in ``0..4``; checked when given as plain data.
    eta : tensor_like, shape (...)
        Linear predictor per record.
    cutpoints : tensor_like, shape (..., 4)
        Cutpoints per record (or shared, broadcasting).
    link : {"logit", "probit"}
    reduce : bool, default True
        Return the sum (scalar); with ``False`` return the pointwise log-likelihoods.

    Returns
    -------
    TensorVariable
        Scalar sum, or shape (...) pointwise values.
    """
    g_np = _as_numpy_if_constant(grades)
    if g_np is not None:
        if not np.issubdtype(g_np.dtype, np.integer):
            if not np.all(np.equal(np.mod(g_np, 1), 0)):
                raise ValueError("grades must be integers")
        if np.any((g_np < 0) | (g_np > N_GRADES - 1)):
            raise ValueError(f"grades must lie in 0..{N_GRADES - 1}")
    grades = pt.as_tensor_variable(grades)
    cutpoints = _as_float(cutpoints)
    _check_last_axis(cutpoints, N_CUTPOINTS, "cutpoints")
    logp = ordinal_logprobs(eta, cutpoints, link)
    onehot = pt.eq(pt.shape_padright(grades), pt.arange(N_GRADES))
    pointwise = pt.switch(onehot, logp, 0.0).sum(axis=-1)
    return pointwise.sum() if reduce else pointwise


# ----------------------------------------------------------------------------------------------
# quadrature over the patient propensity
# ----------------------------------------------------------------------------------------------
def _scaled_nodes(
    sigma_u: TensorLike, n_nodes: int, rule: QuadratureRule
) -> tuple[TensorVariable, TensorVariable]:
    """``u_k = sigma_u * x_k`` with shape ``(*sigma_u.shape, K)`` and ``log w_k`` (K,)."""
    x, w = normal_quadrature(n_nodes, rule)
    sigma_u = _as_float(sigma_u)
    u = pt.shape_padright(sigma_u) * pt.as_tensor_variable(np.asarray(x))
    return u, pt.as_tensor_variable(np.log(w))


def marginal_line_probs(
    eta: TensorLike,
    cutpoints: TensorLike,
    sigma_u: TensorLike,
    link: Link = "logit",
    n_nodes: int = DEFAULT_N_NODES,
    *,
    rule: QuadratureRule = DEFAULT_RULE,
    log: bool = False,
) -> TensorVariable:
    r"""Per-line category probabilities with the patient propensity integrated out.

    .. math::

        \bar p_g = E_u\bigl[P(G = g \mid \eta + u)\bigr]
                 = \int P(G = g \mid \eta + \sigma_u x)\,\varphi(x)\,dx
        \approx \sum_k w_k\, P(G = g \mid \eta + \sigma_u x_k),

    evaluated as :math:`\operatorname{logsumexp}_k(\log w_k + \log P(G = g \mid \eta +
    \sigma_u x_k))`.  These population-averaged probabilities are what per-line counts over
    different patients (e.g. a published table) are about; with the probit link
    :math:`\bar P(G \le g) = \Phi\bigl((c_{g+1} - \eta)/\sqrt{1 + \sigma_u^2}\bigr)` exactly.

    Parameters
    ----------
    eta : tensor_like, shape (...)
        Linear predictor without the patient effect.
    cutpoints : tensor_like, shape (..., K)
        Cutpoints (broadcast with ``eta``).
    sigma_u : tensor_like
        Standard deviation of the patient propensity; scalar or broadcastable with the batch
        shape (...).  Only :math:`|\sigma_u|` matters (the rules are symmetric).
    link : {"logit", "probit"}
    n_nodes : int
        Quadrature nodes, see :func:`normal_quadrature`.
    rule : {"trapezoid", "gauss-hermite"}
    log : bool, default False
        Return log-probabilities (recommended inside models) instead of probabilities.

    Returns
    -------
    TensorVariable, shape (..., K + 1)
    """
    _check_link(link)
    eta = _as_float(eta)
    cutpoints = _as_float(cutpoints)
    u, logw = _scaled_nodes(sigma_u, n_nodes, rule)
    eta_k = pt.shape_padright(eta) + u  # (..., K)
    logp_k = ordinal_logprobs(eta_k, pt.expand_dims(cutpoints, -2), link)  # (..., K, G)
    out = pt.logsumexp(logp_k + pt.shape_padright(logw), axis=-2)
    return out if log else pt.exp(out)


def any_line_probs(
    eta_lines: TensorLike,
    cutpoints_lines: TensorLike,
    sigma_u: TensorLike,
    link: Link = "logit",
    n_nodes: int = DEFAULT_N_NODES,
    *,
    rule: QuadratureRule = DEFAULT_RULE,
    log: bool = False,
) -> TensorVariable:
    r"""Distribution of a patient's worst grade across cell lines: (<= II, III, IV).

    With :math:`L` lines sharing the propensity :math:`u \sim \mathcal N(0, \sigma_u^2)` and
    conditionally independent latent errors, :math:`M = \max_l G_l` has

    .. math::

        P(M \le \mathrm{II}) &= E_u\Bigl[\prod_l F(c_{l3} - \eta_l - u)\Bigr]
                              = E_u\bigl[e^{s_3(u)}\bigr], \\
        P(M = \mathrm{III}) &= E_u\bigl[e^{s_4(u)} - e^{s_3(u)}\bigr], \\
        P(M = \mathrm{IV})  &= E_u\bigl[1 - e^{s_4(u)}\bigr],

    with :math:`s_j(u) = \sum_l \log F(c_{lj} - \eta_l - u)`.  Each expectation is computed by
    quadrature in log space, :math:`\operatorname{logsumexp}_k(\log w_k + s_3(u_k))`,
    :math:`\operatorname{logsumexp}_k(\log w_k + s_4 + \operatorname{log1mexp}(s_3 - s_4))` and
    :math:`\operatorname{logsumexp}_k(\log w_k + \operatorname{log1mexp}(s_4))`, so small
    probabilities keep full relative precision (no ``1 - P`` cancellation).  The three
    probabilities sum to :math:`\sum_k w_k = 1`.

    Parameters
    ----------
    eta_lines : tensor_like, shape (..., L)
        Linear predictor per cell line, without the patient effect.
    cutpoints_lines : tensor_like, shape (..., L, 4)
        Cutpoints per line.
    sigma_u : tensor_like
        Propensity SD, scalar or broadcastable with the batch shape (...).  With
        :math:`\sigma_u = 0` the lines are independent and e.g.
        :math:`P(M \le II) = \prod_l F(c_{l3} - \eta_l)`.
    link : {"logit", "probit"}
    n_nodes : int
    rule : {"trapezoid", "gauss-hermite"}
        Quadrature, see :func:`normal_quadrature`.
    log : bool, default False
        Return log-probabilities instead of probabilities.

    Returns
    -------
    TensorVariable, shape (..., 3)
        :math:`(P(M \le II), P(M = III), P(M = IV))` (or their logs).
    """
    _check_link(link)
    eta_lines = _as_float(eta_lines)
    cutpoints_lines = _as_float(cutpoints_lines)
    _check_last_axis(cutpoints_lines, N_CUTPOINTS, "cutpoints_lines")
    z = cutpoints_lines - pt.shape_padright(eta_lines)  # (..., L, 4)
    u, logw = _scaled_nodes(sigma_u, n_nodes, rule)  # (*s, K), (K,)
    u = pt.expand_dims(u, -2)  # (*s, 1, K)
    s3 = log_cdf(pt.shape_padright(z[..., 2]) - u, link).sum(axis=-2)  # (..., K)
    s4 = log_cdf(pt.shape_padright(z[..., 3]) - u, link).sum(axis=-2)
    tiny = _tiny(s3)
    lp_le2 = pt.logsumexp(logw + s3, axis=-1)
    lp_3 = pt.logsumexp(logw + s4 + pt.log1mexp(pt.minimum(s3 - s4, -tiny)), axis=-1)
    lp_4 = pt.logsumexp(logw + pt.log1mexp(pt.minimum(s4, -tiny)), axis=-1)
    out = pt.stack([lp_le2, lp_3, lp_4], axis=-1)
    return out if log else pt.exp(out)


def any_line_counts_loglik(
    n: TensorLike,
    n_any_g3: TensorLike,
    n_any_g4: TensorLike,
    eta_lines: TensorLike,
    cutpoints_lines: TensorLike,
    sigma_u: TensorLike,
    link: Link = "logit",
    n_nodes: int = DEFAULT_N_NODES,
    *,
    rule: QuadratureRule = DEFAULT_RULE,
) -> TensorVariable:
    r"""Multinomial log-likelihood of "any cell line" grade III / IV patient counts.

    Reading implemented ("worst grade across lines"): of ``n`` patients, ``n_any_g4`` had
    grade IV in at least one line and ``n_any_g3`` had grade III in at least one line **and no
    grade IV in any line**, i.e. the counts are of :math:`M = \max_l G_l` and are disjoint:

    .. math::

        \log\frac{n!}{(n - k_3 - k_4)!\,k_3!\,k_4!}
        + (n - k_3 - k_4)\log P(M \le II) + k_3 \log P(M = III) + k_4 \log P(M = IV),

    with probabilities from :func:`any_line_probs`.

    Ambiguity: a published "any grade III haematotoxicity: k" may instead count every patient
    with a grade III somewhere, including patients who also had a grade IV in another line
    (then the two counts overlap and are not multinomial).  Check the paper; if the counts
    overlap or are only given as "grade III/IV" combined, the unambiguous datum is the number
    with :math:`M \ge III`, a binomial with probability :math:`1 - P(M \le II)` (use
    :func:`any_line_probs` with ``log=True`` and :func:`multinomial_loglik`).

    Parameters
    ----------
    n, n_any_g3, n_any_g4 : tensor_like, shape (...)
        Patients and worst-grade-III / worst-grade-IV counts.
    eta_lines, cutpoints_lines, sigma_u, link, n_nodes, rule
        As in :func:`any_line_probs`.

    Returns
    -------
    TensorVariable, shape (...)
        Log-likelihood per row.
    """
    _check_partial_counts(n, n_any_g3, n_any_g4)
    n = _as_float(n)
    n_any_g3 = _as_float(n_any_g3)
    n_any_g4 = _as_float(n_any_g4)
    logp = any_line_probs(eta_lines, cutpoints_lines, sigma_u, link, n_nodes, rule=rule, log=True)
    counts = pt.stack(pt.broadcast_arrays(n - n_any_g3 - n_any_g4, n_any_g3, n_any_g4), axis=-1)
    return multinomial_loglik(counts, logp)


# ----------------------------------------------------------------------------------------------
# cutpoint parametrisation
# ----------------------------------------------------------------------------------------------
def ordered_cutpoints_from_increments(c1: TensorLike, log_increments: TensorLike) -> TensorVariable:
    r"""Strictly increasing cutpoints from unconstrained parameters.

    .. math::

        c_1, \quad c_{j+1} = c_j + e^{d_j}, \qquad j = 1, \dots, K - 1.

    Parameters
    ----------
    c1 : tensor_like, shape (...)
        First cutpoint.
    log_increments : tensor_like, shape (..., K - 1)
        Log gaps :math:`d_j` (3 for CTCAE grades), broadcast with ``c1``.

    Returns
    -------
    TensorVariable, shape (..., K)
    """
    c1 = _as_float(c1)
    log_increments = _as_float(log_increments)
    steps = pt.cumsum(pt.exp(log_increments), axis=-1)
    zero = pt.zeros_like(log_increments[..., :1])
    return pt.shape_padright(c1) + pt.concatenate([zero, steps], axis=-1)


# ----------------------------------------------------------------------------------------------
# exact likelihoods of overlapping margins (issue 16 d4; docs/toxicity_margins.md)
# ----------------------------------------------------------------------------------------------
def pattern_logprobs(
    z3_lines: TensorLike,
    sigma_u: TensorLike,
    link: Link = "probit",
    n_nodes: int = DEFAULT_N_NODES,
    *,
    rule: QuadratureRule = DEFAULT_RULE,
) -> TensorVariable:
    r"""Log-probabilities of the 8 patterns of grade >= III indicators over three lines.

    .. math::

        \log \pi_S = \log E_u\Bigl[\prod_{l \in S} F(u - z_l)
                     \prod_{l \notin S} F(z_l - u)\Bigr],

    :math:`z_l = c_{l3} - \eta_l` (conditional scale), by quadrature in log space. The order
    of the patterns is :data:`netbayes.formulas.toxicity_margins.PATTERNS`.

    Parameters
    ----------
    z3_lines : tensor_like, shape (..., 3)
        Grade III cutpoint minus linear predictor per line, without the patient effect.
    sigma_u : tensor_like
        Propensity SD (scalar or broadcast with the batch shape).
    link, n_nodes, rule
        As in :func:`any_line_probs`.

    Returns
    -------
    TensorVariable, shape (..., 8)
    """
    from netbayes.formulas.toxicity_margins import PATTERNS

    _check_link(link)
    z = _as_float(z3_lines)
    _check_last_axis(z, 3, "z3_lines")
    u, logw = _scaled_nodes(sigma_u, n_nodes, rule)  # (*s, K)
    zu = pt.shape_padright(z) - pt.expand_dims(u, -2)  # (..., 3, K)
    lo = log_cdf(zu, link)
    hi = log_cdf(-zu, link)
    pat = np.asarray(PATTERNS, dtype=bool)[..., None]  # (8, 3, 1)
    terms = pt.switch(pat, pt.expand_dims(hi, -3), pt.expand_dims(lo, -3))  # (..., 8, 3, K)
    return pt.logsumexp(terms.sum(axis=-2) + logw, axis=-1)


def margin_tables_loglik(
    tables: TensorLike, log_coef: TensorLike, group: TensorLike, log_pi: TensorLike, n_groups: int
) -> TensorVariable:
    r"""Exact log-likelihood of margins of a multinomial: a log-sum over consistent tables.

    .. math::

        \ell_j = \log \sum_{t:\ \mathrm{group}_t = j}
                 \exp\Bigl(\log c_t + \sum_S N_{tS} \log \pi_{jS}\Bigr),

    with the tables and coefficients of
    :func:`netbayes.formulas.toxicity_margins.margin_tables` (rows of several margins stacked;
    ``group`` says which margin set, e.g. which phase, a row belongs to; the rows of two
    readings of one phase's margins share its group and are summed).

    Parameters
    ----------
    tables : tensor_like, shape (T, 8)
        Pattern counts.
    log_coef : tensor_like, shape (T,)
    group : tensor_like of int, shape (T,)
        Group of each table in ``0 .. n_groups - 1``.
    log_pi : tensor_like, shape (n_groups, 8)
        Pattern log-probabilities per group (:func:`pattern_logprobs`).
    n_groups : int

    Returns
    -------
    TensorVariable, shape (n_groups,)
        A group without tables gets a very negative value (impossible margins).
    """
    tables = _as_float(tables)
    lp = _as_float(log_pi)[group]  # (T, 8)
    terms = pt.switch(pt.gt(tables, 0), tables * lp, 0.0).sum(axis=-1) + _as_float(log_coef)
    onehot = pt.eq(pt.shape_padleft(group), pt.arange(n_groups)[:, None])  # (G, T)
    masked = pt.switch(onehot, pt.shape_padleft(terms), -1e30)
    return pt.logsumexp(masked, axis=-1)


def poisson_multinomial_loglik(counts: NDArray, logp: TensorLike) -> TensorVariable:
    r"""Exact log-probability of category counts of units with their own probabilities.

    The dynamic programme of
    :func:`netbayes.formulas.toxicity_margins.log_poisson_multinomial`, in PyTensor: states
    are the count vectors below ``counts``, one step per unit.

    Parameters
    ----------
    counts : ndarray of int, shape (G,)
        Observed counts (plain data: they fix the state space), summing to the units.
    logp : tensor_like, shape (J, G)
        Log category probabilities of each unit.

    Returns
    -------
    TensorVariable
        Scalar.
    """
    c = np.asarray(counts).astype(int)
    logp = _as_float(logp)
    J = logp.type.shape[0]
    if J is not None and int(c.sum()) != J:
        raise ValueError(f"counts={c.tolist()} must sum to the {J} units of logp")
    shape = tuple(int(v) + 1 for v in c)
    init = np.full(shape, -1e4)
    init[(0,) * len(c)] = 0.0
    state = pt.as_tensor_variable(init)
    for j in range(int(c.sum())):
        parts = []
        for g in range(len(c)):
            if c[g] == 0:
                continue
            pad = [(0, 0)] * len(c)
            pad[g] = (1, 0)
            sl = [slice(None)] * len(c)
            sl[g] = slice(0, -1)
            shifted = pt.concatenate(
                [pt.full([1 if a == g else shape[a] for a in range(len(c))], -1e4),
                 state[tuple(sl)]],
                axis=g,
            )  # fmt: skip
            parts.append(shifted + logp[j, g])
        state = pt.logsumexp(pt.stack(parts), axis=0)
    return state[tuple(int(v) for v in c)]


def poisson_multinomial_lattice_loglik(
    prev: TensorLike, row: TensorLike, init: TensorLike, final: TensorLike, logp: TensorLike
) -> TensorVariable:
    r"""Exact log-probabilities of several count vectors of units with their own probabilities.

    The dynamic programme of :func:`poisson_multinomial_loglik` on the flattened state space
    of :func:`netbayes.formulas.toxicity_margins.count_lattice`, so that the counts can be data
    containers (a compiled model re-used on other counts).

    Parameters
    ----------
    prev, row, init, final
        From :func:`~netbayes.formulas.toxicity_margins.count_lattice`.
    logp : tensor_like, shape (J, R, G)
        Log category probabilities of unit ``j`` in row ``r`` (every row counts the same
        ``J`` units, e.g. the cycles, per cell line).

    Returns
    -------
    TensorVariable, shape (R,)
        -inf for a row whose count vector does not sum to ``J`` (the units must each fall in
        one category).

    Notes
    -----
    One operation, :class:`netbayes.likelihoods.lattice.LatticeLogLik`, that visits each
    state once (a state's predecessors have one unit fewer) and differentiates by the
    reverse pass of the same recursion; it replaces a graph of four operations per unit, whose
    values it gives to rounding (tested), at a tenth of the cost.
    """
    logp = _as_float(logp)
    if logp.type.ndim != 3:
        raise ValueError(f"logp must be 3-dimensional (units, rows, categories), got {logp.type}")
    return lattice_loglik(prev, row, init, final, logp)
