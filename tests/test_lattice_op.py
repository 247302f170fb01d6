"""The 188Re-HEDP count-lattice programme as one operation gives the graph's values and
gradients, in PyTensor's C and numba backends, and is cached by numba like the rest."""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from netbayes.formulas import toxicity_margins as tm
from netbayes.likelihoods import lattice
from netbayes.likelihoods import ordinal as lik

COUNTS = np.array([[5, 3, 2, 1, 0], [4, 4, 1, 1, 1], [9, 0, 1, 1, 0]])  # 11 units per row
J, R, G = 11, 3, 5


_graph = lattice.lattice_graph  # the recursion as the graph it replaced


def _functions(fn, mode, counts=COUNTS):
    lat = tm.count_lattice(counts)
    x = pt.tensor("x", shape=(J, len(counts), G))
    init = pt.tensor("init", shape=lat["init"].shape)
    w = pt.tensor("w", shape=(len(counts),))
    out = fn(lat["prev"], lat["row"], init, lat["final"], x)
    g_x, g_init = pt.grad((out * w).sum(), [x, init])
    f = pytensor.function([x, init, w], [out, g_x, g_init], mode=mode)
    return lambda logp, wv: f(logp, lat["init"], wv)


def _logp(seed, scale=1.0):
    z = np.random.default_rng(seed).normal(size=(J, R, G)) * scale
    return z - np.logaddexp.reduce(z, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def compiled():
    return {(name, mode): _functions(fn, mode)
            for name, fn in (("graph", _graph), ("op", lattice.lattice_loglik))
            for mode in ("FAST_RUN", "NUMBA")}  # fmt: skip


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
@pytest.mark.parametrize("scale", [1.0, 8.0, 60.0])
def test_values_and_gradients_are_the_graphs(compiled, mode, scale):
    """Ordinary and extreme category log-probabilities (scale 60: entries near -400, the
    |eta| = 30 tails): the values agree to rounding and the gradients (logp and init) to
    1e-12 of their size; the forward values are the same sums in the same order."""
    w = np.array([1.0, -0.7, 2.0])
    for seed in range(3):
        lp = _logp(seed, scale)
        ref = compiled["graph", mode](lp, w)
        got = compiled["op", mode](lp, w)
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-14, atol=0)
        for a, b in zip(got[1:], ref[1:], strict=True):
            assert np.isfinite(a).all()
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * max(1.0, np.abs(b).max()))


def test_the_numba_and_c_backends_agree(compiled):
    """The same kernels, called by a compiled numba graph and by perform (fast-math flags aside)."""
    lp, w = _logp(7, 3.0), np.array([0.3, 1.0, -2.0])
    a, b = compiled["op", "NUMBA"](lp, w), compiled["op", "FAST_RUN"](lp, w)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-15)


def test_values_are_the_poisson_multinomial_probabilities():
    """Against the direct NumPy programme of each row (a different recursion)."""
    lp = _logp(11, 2.0)
    lat = tm.count_lattice(COUNTS)
    got = lattice.lattice_loglik(lat["prev"], lat["row"], lat["init"], lat["final"], lp).eval()
    ref = [tm.log_poisson_multinomial(COUNTS[r], lp[:, r]) for r in range(R)]
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_gradient_matches_finite_differences():
    lat = tm.count_lattice(COUNTS[:2])

    def f(x):
        return lattice.lattice_loglik(lat["prev"], lat["row"], lat["init"], lat["final"], x)

    pytensor.gradient.verify_grad(
        f, [_logp(3, 2.0)[:, :2]], rng=np.random.default_rng(1), eps=1e-6, abs_tol=1e-6,
        rel_tol=1e-6,
    )  # fmt: skip


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
def test_a_row_that_does_not_use_every_unit_is_impossible(mode):
    """A count vector summing to fewer units than logp has is -inf, gradient 0 (the graph
    gave a value near -1e4); the other rows are unaffected."""
    counts = np.array([[5, 3, 2, 1, 0], [4, 4, 1, 1, 0]])  # second row: 10 of 11
    f = _functions(lattice.lattice_loglik, mode, counts)
    lp = _logp(2)[:, :2]
    out, g_x, _ = f(lp, np.ones(2))
    assert out[1] == -np.inf and np.isfinite(out[0])
    assert np.all(g_x[:, 1] == 0.0) and np.abs(g_x[:, 0]).sum() > 0
    np.testing.assert_allclose(out[0], tm.log_poisson_multinomial(counts[0], lp[:, 0]))


def test_bad_inputs_are_refused():
    lat = tm.count_lattice(COUNTS)
    with pytest.raises(TypeError, match="prev must be an integer"):
        lattice.lattice_loglik(lat["prev"].astype(float), lat["row"], lat["init"],
                               lat["final"], _logp(0))  # fmt: skip
    with pytest.raises(TypeError, match="logp must be a 3-dimensional"):
        lattice.lattice_loglik(lat["prev"], lat["row"], lat["init"], lat["final"], np.zeros(3))
    with pytest.raises(ValueError, match="logp must be 3-dimensional"):
        lik.poisson_multinomial_lattice_loglik(
            lat["prev"], lat["row"], lat["init"], lat["final"], np.zeros((2, 3))
        )


def test_the_numba_kernels_have_a_cache_key():
    """Without a key PyTensor would not cache the compiled kernels on disk, and the
    toxicity model's compiled callbacks (netbayes.fitting's disk cache) would not be stored."""
    from pytensor.link.numba.dispatch.basic import numba_funcify_and_cache_key

    keys = set()
    for op in (lattice.LatticeLogLik(), lattice.LatticeLogLikGrad()):
        _, key = numba_funcify_and_cache_key(op)
        assert key is not None
        keys.add(key)
    assert len(keys) == 2


@pytest.mark.parametrize("mode", ["FAST_RUN", "NUMBA"])
def test_a_lattice_out_of_order_is_refused(mode):
    """The one-pass programme needs each state after its predecessors (count_lattice's order)."""
    lat = tm.count_lattice(COUNTS[:1])
    prev = lat["prev"].copy()
    prev[1, prev[1] < len(prev)] = 5  # state 1 "comes from" a later state
    x = pt.tensor("x", shape=(J, 1, G))
    f = pytensor.function(
        [x], lattice.lattice_loglik(prev, lat["row"], lat["init"], lat["final"], x), mode=mode
    )
    with pytest.raises(ValueError, match="predecessors must come before it"):
        f(_logp(0)[:, :1])


def test_jax_mode_runs_the_graph_in_place_of_the_operations():
    """PyTensor's JAX rewrites (what PyMC's numpyro/blackjax samplers and nutpie's JAX backend
    apply) replace both operations by the graph and its gradient, which give the same values
    (checked by running the rewritten graph on the C backend; JAX itself need not be
    installed)."""
    from pytensor.compile.mode import JAX
    from pytensor.graph.fg import FunctionGraph

    lat = tm.count_lattice(COUNTS)
    x = pt.tensor("x", shape=(J, R, G))
    init = pt.tensor("init", shape=lat["init"].shape)
    out = lattice.lattice_loglik(lat["prev"], lat["row"], init, lat["final"], x)
    w = np.array([1.0, -0.7, 2.0])
    outs = [out, *pt.grad((out * w).sum(), [x, init])]
    fg = FunctionGraph([x, init], outs, clone=True)
    JAX.optimizer.rewrite(fg)
    names = {type(n.op).__name__ for n in fg.apply_nodes}
    assert not names & {"LatticeLogLik", "LatticeLogLikGrad"}
    rewritten = pytensor.function(fg.inputs, fg.outputs, mode="FAST_RUN")
    lp = _logp(4, 3.0)
    ref = _functions(_graph, "FAST_RUN")(lp, w)
    for a, b in zip(rewritten(lp, lat["init"]), ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-14, atol=1e-14)
