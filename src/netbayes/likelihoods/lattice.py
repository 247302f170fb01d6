r"""The count-lattice dynamic programme of the 188Re-HEDP cycles as one PyTensor operation.

:func:`netbayes.likelihoods.ordinal.poisson_multinomial_lattice_loglik` computes, for each
row :math:`r` (a cell line), the log-probability that :math:`J` units (the cycles) with
their own category probabilities give the observed count vector, by the forward recursion on
the flattened lattice of partial count vectors (:func:`netbayes.formulas.toxicity_margins.
count_lattice`):

.. math::

    \alpha_0 = \mathrm{init}, \qquad
    \alpha_j[m] = \log \sum_g \exp\bigl(\bar\alpha_{j-1}[\mathrm{prev}[m, g]]
        + \log p_j[\mathrm{row}[m], g]\bigr), \qquad
    \mathrm{out}_r = \alpha_J[\mathrm{final}_r],

where :math:`\bar\alpha` is :math:`\alpha` with one more entry, :data:`SENTINEL`, for the
predecessors that do not exist. Written as a graph of PyTensor operations, each of the
:math:`J` steps is a concatenation, a gather, an add and a log-sum-exp, and the gradient adds a
scatter per step: about 70% of the toxicity model's gradient time in nutpie's numba backend,
almost all of it the per-operation overhead of small arrays (``benchmarks/README.md``, "Where
the time goes").

:class:`LatticeLogLik` computes the same recursion in one operation, and its gradient with
the reverse (backward) pass of the same recursion, in one more (:class:`LatticeLogLikGrad`).
With :math:`\beta_J[\mathrm{final}_r] = \bar g_r` (the output's gradient) and the step's
weights :math:`s_j[m, g] = \exp(\bar\alpha_{j-1}[\mathrm{prev}[m, g]] + \log p_j[\mathrm{row}[m],
g] - \alpha_j[m])`,

.. math::

    \frac{\partial}{\partial \log p_j[r, g]} = \sum_{m:\,\mathrm{row}[m] = r} \beta_j[m]\,
    s_j[m, g], \qquad
    \beta_{j-1}[k] = \sum_{(m, g):\,\mathrm{prev}[m, g] = k} \beta_j[m]\, s_j[m, g],

and :math:`\beta_0` is the gradient with respect to ``init``. Both are numba kernels:
registered with PyTensor's numba dispatch with a cache key (nutpie, ``mode="NUMBA"``), so that
a compiled model is cached on disk as before, and called from ``perform`` in PyTensor's C and
Python backends (PyMC's own NUTS). They give the graph's values to rounding (tested against
the graph, finite differences and a direct NumPy recursion, in both backends). For JAX
(PyMC's numpyro and blackjax samplers, nutpie's JAX backend) a graph rewrite of PyTensor's
JAX mode (tag ``"jax"``) puts the graph of the recursion (:func:`lattice_graph`) and its
autodiff gradient back in place of the two operations, so that they do not stand in JAX's
way (tested by applying the JAX rewrites without JAX; run in JAX where it is installed). The
toxicity model as a whole does not compile in JAX, before this operation as now: another part
of its graph has a shape JAX cannot trace.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.link.numba.dispatch.basic import numba_njit

__all__ = ["SENTINEL", "LatticeLogLik", "LatticeLogLikGrad", "lattice_graph", "lattice_loglik"]

SENTINEL = -1e4
"""Log-value of a predecessor that does not exist (``prev`` equal to the number of states)."""
_ORDER_MESSAGE = (
    "prev: each state's predecessors must come before it (indices 0 to the state's own minus "
    "1) or be the sentinel (the number of states), as count_lattice makes them"
)


# ----------------------------------------------------------------------------------------------
# the kernels (numba: nutpie and mode="NUMBA"; perform: the C and Python backends)
# ----------------------------------------------------------------------------------------------
def _forward_loops(prev, row, init, logp):  # pragma: no cover - compiled by numba
    M, G = prev.shape
    size = np.zeros(M, dtype=np.int64)
    alpha = np.empty(M)
    cand = np.empty(G)
    for m in range(M):
        first = -1
        for g in range(G):
            k = prev[m, g]
            if k < 0 or (k < M and k >= m):
                raise ValueError(_ORDER_MESSAGE)
            if k < M and first < 0:
                first = k
        if first < 0:
            size[m] = 0
            alpha[m] = init[m]
            continue
        s = size[first] + 1
        size[m] = s
        if s > logp.shape[0]:
            alpha[m] = -np.inf
            continue
        mx = -np.inf
        for g in range(G):
            k = prev[m, g]
            c = alpha[k] + logp[s - 1, row[m], g] if k < M else -np.inf
            cand[g] = c
            if c > mx:
                mx = c
        if mx == -np.inf:
            alpha[m] = -np.inf
        else:
            acc = 0.0
            for g in range(G):
                acc += np.exp(cand[g] - mx)
            alpha[m] = np.log(acc) + mx
    return alpha, size


def _forward_out_loops(prev, row, init, final, logp):  # pragma: no cover - compiled by numba
    alpha, size = _forward_loops_jit(prev, row, init, logp)
    J = logp.shape[0]
    out = np.empty(final.shape[0])
    for r in range(final.shape[0]):
        out[r] = alpha[final[r]] if size[final[r]] == J else -np.inf
    return out


def _grad_loops(prev, row, init, final, logp, g_out):  # pragma: no cover - compiled by numba
    alpha, size = _forward_loops_jit(prev, row, init, logp)
    J = logp.shape[0]
    M, G = prev.shape
    beta = np.zeros(M)
    for r in range(final.shape[0]):
        if size[final[r]] == J:
            beta[final[r]] += g_out[r]
    g_logp = np.zeros(logp.shape)
    g_init = np.zeros(M)
    for m in range(M - 1, -1, -1):
        b = beta[m]
        s = size[m]
        if s == 0:
            g_init[m] = b
            continue
        a = alpha[m]
        if b == 0.0 or a == -np.inf or s > J:
            continue
        for g in range(G):
            k = prev[m, g]
            if k < M:
                w = b * np.exp(alpha[k] + logp[s - 1, row[m], g] - a)
                g_logp[s - 1, row[m], g] += w
                beta[k] += w
    return g_logp, g_init


def _register_numba() -> None:
    """Register both operations with PyTensor's numba dispatch, with a cache key."""
    from pytensor.link.numba.dispatch.basic import register_funcify_default_op_cache_key

    @register_funcify_default_op_cache_key(LatticeLogLik)
    def _funcify_forward(op: Any, node: Any = None, **kwargs: Any) -> Any:
        return _nb_forward, _KERNEL_VERSION

    @register_funcify_default_op_cache_key(LatticeLogLikGrad)
    def _funcify_grad(op: Any, node: Any = None, **kwargs: Any) -> Any:
        return _nb_grad, _KERNEL_VERSION


def _python_callable(fn: Any) -> Any:
    """A kernel callable from Python (``perform``), compiled on first use and cached by numba
    (PyTensor's numba settings, fast-math flags included, as in a compiled graph)."""
    return numba_njit(fn, final_function=True, cache=True)


def _kernel_version() -> int:
    """Part of the numba cache key of both kernels: a hash of their source, so that a changed
    kernel is never loaded from an older compile on disk."""
    import hashlib
    import inspect

    try:
        text = "".join(inspect.getsource(f) for f in (_forward_loops, _forward_out_loops,
                                                      _grad_loops))  # fmt: skip
    except OSError:  # pragma: no cover - no source files: key on the package version
        from netbayes._version import __version__ as text
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:7], "big")


_KERNEL_VERSION = _kernel_version()

# PyTensor's numba functions (no Python wrapper) for compiled graphs; the outer kernels find
# _forward_loops_jit among this module's globals when numba compiles them
_forward_loops_jit = numba_njit(_forward_loops)
_nb_forward = numba_njit(_forward_out_loops)
_nb_grad = numba_njit(_grad_loops)
_py_forward: Any = None  # the same kernels with a Python wrapper, made on first perform
_py_grad: Any = None


# ----------------------------------------------------------------------------------------------
# the operations
# ----------------------------------------------------------------------------------------------
def _inputs(prev: Any, row: Any, init: Any, final: Any) -> list[Any]:
    prev = pt.as_tensor_variable(prev)
    row = pt.as_tensor_variable(row)
    final = pt.as_tensor_variable(final)
    init = pt.as_tensor_variable(init)
    for name, v, nd in (("prev", prev, 2), ("row", row, 1), ("final", final, 1)):
        if v.type.dtype not in ("int64", "int32") or v.type.ndim != nd:
            raise TypeError(f"{name} must be an integer tensor of {nd} dimensions, got {v.type}")
    if init.type.ndim != 1:
        raise TypeError(f"init must be a vector, got {init.type}")
    return [pt.cast(prev, "int64"), pt.cast(row, "int64"), pt.cast(init, "float64"),
            pt.cast(final, "int64")]  # fmt: skip


class LatticeLogLik(Op):
    """``out[r]``: the log-probability of row ``r``'s final count vector (module docstring).

    Inputs ``prev`` (M, G) int, ``row`` (M,) int, ``init`` (M,) float, ``final`` (R,) int,
    ``logp`` (J, R, G) float; output (R,) float64.
    """

    __props__ = ()

    def make_node(self, prev: Any, row: Any, init: Any, final: Any, logp: Any) -> Apply:
        ins = [*_inputs(prev, row, init, final), pt.cast(pt.as_tensor_variable(logp), "float64")]
        if ins[4].type.ndim != 3:
            raise TypeError(f"logp must be a 3-dimensional tensor (J, R, G), got {ins[4].type}")
        out = pt.tensor(dtype="float64", shape=(ins[3].type.shape[0],))
        return Apply(self, ins, [out])

    def perform(self, node: Apply, inputs: list[np.ndarray], outputs: list[list[Any]]) -> None:
        global _py_forward
        if _py_forward is None:
            _py_forward = _python_callable(_forward_out_loops)
        outputs[0][0] = _py_forward(*inputs)

    def infer_shape(self, node: Apply, shapes: list[Any]) -> list[Any]:
        return [(shapes[3][0],)]

    def pullback(self, inputs: Any, outputs: Any, cotangents: Any) -> list[Any]:
        prev, row, init, final, logp = inputs
        g_logp, g_init = LatticeLogLikGrad()(prev, row, init, final, logp, cotangents[0])
        return [
            disconnected_type(), disconnected_type(), g_init, disconnected_type(), g_logp,
        ]  # fmt: skip

    def connection_pattern(self, node: Apply) -> list[list[bool]]:
        return [[False], [False], [True], [False], [True]]


class LatticeLogLikGrad(Op):
    """Gradients of :class:`LatticeLogLik` with respect to ``logp`` and ``init``, given the
    output's gradient (the reverse pass of the module docstring)."""

    __props__ = ()

    def make_node(self, prev: Any, row: Any, init: Any, final: Any, logp: Any, g_out: Any) -> Apply:
        ins = [*_inputs(prev, row, init, final), pt.cast(pt.as_tensor_variable(logp), "float64"),
               pt.cast(pt.as_tensor_variable(g_out), "float64")]  # fmt: skip
        outs = [pt.tensor(dtype="float64", shape=ins[4].type.shape),
                pt.tensor(dtype="float64", shape=ins[2].type.shape)]  # fmt: skip
        return Apply(self, ins, outs)

    def perform(self, node: Apply, inputs: list[np.ndarray], outputs: list[list[Any]]) -> None:
        global _py_grad
        if _py_grad is None:
            _py_grad = _python_callable(_grad_loops)
        outputs[0][0], outputs[1][0] = _py_grad(*inputs)

    def infer_shape(self, node: Apply, shapes: list[Any]) -> list[Any]:
        return [shapes[4], shapes[2]]

    def pullback(self, inputs: Any, outputs: Any, cotangents: Any) -> list[Any]:
        return [grad_not_implemented(self, i, x) for i, x in enumerate(inputs)]


def lattice_loglik(prev: Any, row: Any, init: Any, final: Any, logp: Any) -> Any:
    """:class:`LatticeLogLik` applied to the inputs (see the module docstring)."""
    return LatticeLogLik()(prev, row, init, final, logp)


def lattice_graph(prev: Any, row: Any, init: Any, final: Any, logp: Any) -> Any:
    """The same recursion as a graph of PyTensor operations: every state advanced at every
    unit, a missing predecessor at :data:`SENTINEL` (a row whose counts do not sum to the
    number of units gets a value near ``SENTINEL`` times the missing units rather than -inf).
    What JAX runs (the module docstring), and the reference of the tests."""
    logp = pt.as_tensor_variable(logp)
    J = logp.type.shape[0]
    if J is None:
        raise ValueError("logp must have a known number of units (first axis)")
    state = pt.as_tensor_variable(init)
    for j in range(J):
        ext = pt.concatenate([state, pt.as_tensor_variable(np.array([SENTINEL]))])
        state = pt.logsumexp(ext[prev] + logp[j][row], axis=-1)
    return state[final]


def _register_jax_rewrite() -> None:
    """In PyTensor's JAX mode only, replace both operations by :func:`lattice_graph` and its
    gradient (no JAX import here: the rewrite is registered by tag)."""
    import pytensor
    from pytensor.compile import optdb
    from pytensor.graph.rewriting.basic import in2out, node_rewriter

    @node_rewriter([LatticeLogLik, LatticeLogLikGrad])
    def lattice_as_graph(fgraph: Any, node: Apply) -> list[Any] | None:
        prev, row, init, final, logp = node.inputs[:5]
        if logp.type.shape[0] is None:
            return None
        out = lattice_graph(prev, row, init, final, logp)
        if isinstance(node.op, LatticeLogLik):
            return [out]
        g_out = node.inputs[5]
        g_logp, g_init = pytensor.grad((out * g_out).sum(), [logp, init])
        return [g_logp, g_init]

    optdb.register("netbayes_lattice_as_graph", in2out(lattice_as_graph), "jax", position=0.5)


_register_numba()
_register_jax_rewrite()
