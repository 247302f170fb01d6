"""Sampling and convergence diagnostics shared by the netbayes models.

:func:`sample` runs NUTS (nutpie by default, PyMC's sampler on request) on a PyMC model and
returns a :class:`FitResult`: the posterior as an ``xarray.DataTree``, a per-parameter diagnostics
table, and plain NumPy draws. A fit that misses the convergence targets (any divergence,
R-hat > 1.01, bulk ESS < 400) emits a :class:`ConvergenceWarning` saying what to try.
:func:`compile_swappable` compiles a model once for many data sets (a simulation study:
``nutpie.sample(compiled.with_data(**values), ...)`` per replicate), cached on disk.

Compiles are cached on disk, in PyTensor's numba cache folder: nutpie's two C callbacks in
numba's cache, and a JSON record of what the compile found (sizes, names, shapes, the
callbacks' key) under a digest of the model's graph before rewriting
(:mod:`netbayes.graph_hash`). A later process with the same model reads the record and loads
the callbacks in about a second, instead of 5-10 s of graph rewrites (or minutes of numba
compilation the first time); the draws are the same. Deleting that folder clears both.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from netbayes.spec import ESS_MIN, RHAT_MAX  # convergence targets (the store checks cards)

__all__ = [
    "COMPILED_CACHE_SIZE",
    "ESS_MIN",
    "RHAT_MAX",
    "ConvergenceWarning",
    "FitResult",
    "clear_compiled",
    "compile_swappable",
    "diagnose",
    "sample",
]


class ConvergenceWarning(UserWarning):
    """The sampler did not meet the convergence targets; the posterior may be unreliable."""


@dataclass
class FitResult:
    """A fitted model's posterior with its diagnostics.

    Attributes
    ----------
    posterior : xarray.DataTree
        Groups ``posterior`` and ``sample_stats`` (and whatever the sampler adds).
    diagnostics : pandas.DataFrame
        One row per scalar parameter: ``r_hat``, ``ess_bulk``, ``ess_tail``.
    n_divergences : int
        Post-warm-up divergent transitions, all chains.
    sampler : str
        ``"nutpie"`` or ``"pymc"``.
    seconds : dict of str to float
        Wall times: ``compile`` (0 for PyMC's sampler, whose compile is inside ``sample``; the
        comparison alone when a compiled model was re-used),
        ``sample``, ``total``.
    problems : list of str
        The convergence problems found (empty when the targets are met).
    settings : dict
        The sampler settings used: ``draws``, ``tune``, ``chains``, ``seed``,
        ``target_accept`` (for the model card of a stored posterior).
    model_info : dict or None
        What model was fitted (model type, configuration, priors, variables to store, hash of
        the user's data; :mod:`netbayes.models.base`), set by ``SurvivalModel.fit`` and
        ``ToxicityModel.fit``; None for a bare :func:`sample` of any PyMC model.
    """

    posterior: xr.DataTree
    diagnostics: pd.DataFrame
    n_divergences: int
    sampler: str
    seconds: dict[str, float]
    problems: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    model_info: dict[str, Any] | None = None

    @property
    def converged(self) -> bool:
        """True when there are no divergences, R-hat <= 1.01 and bulk ESS >= 400 everywhere."""
        return not self.problems

    def draws(self, var: str) -> np.ndarray:
        """Return the posterior draws of ``var`` as a NumPy array, chains stacked first.

        Parameters
        ----------
        var : str
            A posterior variable name.

        Returns
        -------
        numpy.ndarray
            Shape ``(chains * draws, *var_shape)``.
        """
        post = self.posterior["posterior"].dataset
        if var not in post:
            raise KeyError(f"{var!r} is not a posterior variable; available: {', '.join(post)}")
        da = post[var]
        arr = da.to_numpy()
        return arr.reshape((-1, *arr.shape[2:]))

    def all_draws(self) -> dict[str, np.ndarray]:
        """Return every posterior variable's draws as plain arrays (see :meth:`draws`)."""
        return {v: self.draws(v) for v in self.posterior["posterior"].dataset.data_vars}

    def save(self, folder: str | Path, *, overwrite: bool = False) -> Path:
        """Save this fit in ``folder`` (NetCDF DataTree + fast-read draws + model card).

        ``netbayes.Predictor.load(folder)`` predicts from it; see
        :func:`netbayes.store.save_fit` for the layout. A fit that did not converge is saved
        with ``converged: false`` in its card.

        Parameters
        ----------
        folder : str or pathlib.Path
            A folder (created if needed); it holds at most one fit per model type, e.g. a
            survival fit and a toxicity fit.
        overwrite : bool
            Replace a fit of the same model type already saved there (default False).

        Returns
        -------
        pathlib.Path
            The DataTree file written (opens with ``arviz.from_netcdf``).

        Raises
        ------
        ValueError
            The fit does not know its model (:attr:`model_info` is None), or ``folder`` is a
            file or the installed package's models folder.
        FileExistsError
            A fit of this model type is saved in ``folder`` and ``overwrite`` is False.
        """
        from netbayes.store import save_fit

        return save_fit(self, folder, overwrite=overwrite)


def _divergences(tree: xr.DataTree) -> int:
    stats = tree["sample_stats"].dataset
    for name in ("diverging", "divergent"):
        if name in stats:
            return int(stats[name].to_numpy().sum())
    return 0


def diagnose(tree: xr.DataTree, var_names: list[str] | None = None) -> pd.DataFrame:
    """Compute R-hat and bulk/tail ESS for every scalar element of the posterior variables.

    Parameters
    ----------
    tree : xarray.DataTree
        Must have a ``posterior`` group with ``chain`` and ``draw`` dimensions.
    var_names : list of str, optional
        Variables to include (default: all).

    Returns
    -------
    pandas.DataFrame
        Indexed by parameter label (``"a[midgut]"``), columns ``r_hat``, ``ess_bulk``,
        ``ess_tail``.
    """
    import arviz as az

    post = tree["posterior"].dataset
    if var_names is not None:
        post = post[var_names]
    rhat = az.rhat(post)
    ess_b = az.ess(post, method="bulk")
    ess_t = az.ess(post, method="tail")
    rows = []
    for v in post.data_vars:
        r, b, t = (np.atleast_1d(x[v].to_numpy()).ravel() for x in (rhat, ess_b, ess_t))
        extra = [d for d in post[v].dims if d not in ("chain", "draw")]
        if extra:
            idx = post[v].isel(chain=0, draw=0).to_series().index
            labels = [
                f"{v}[{','.join(map(str, k if isinstance(k, tuple) else (k,)))}]" for k in idx
            ]
        else:
            labels = [v]
        rows += list(zip(labels, r, b, t, strict=True))
    return pd.DataFrame(rows, columns=["parameter", "r_hat", "ess_bulk", "ess_tail"]).set_index(
        "parameter"
    )


def _problems(diag: pd.DataFrame, n_div: int) -> list[str]:
    out = []
    if n_div:
        out.append(
            f"{n_div} divergent transitions: raise target_accept (e.g. 0.95), or look for a "
            "funnel (a hierarchical scale near zero) and reparameterise"
        )
    bad_r = diag[~(diag["r_hat"] <= RHAT_MAX)]
    if len(bad_r):
        worst = bad_r["r_hat"].idxmax() if bad_r["r_hat"].notna().any() else bad_r.index[0]
        out.append(
            f"R-hat > {RHAT_MAX} for {len(bad_r)} parameters (worst {worst}: "
            f"{bad_r['r_hat'].max():.3f}): run more tuning and draws, or more chains"
        )
    bad_e = diag[~(diag["ess_bulk"] >= ESS_MIN)]
    if len(bad_e):
        worst = bad_e["ess_bulk"].idxmin() if bad_e["ess_bulk"].notna().any() else bad_e.index[0]
        out.append(
            f"bulk ESS < {ESS_MIN} for {len(bad_e)} parameters (worst {worst}: "
            f"{bad_e['ess_bulk'].min():.0f}): draw more samples"
        )
    return out


# ----------------------------------------------------------------------------------------------
# compiled models, re-used within a process
# ----------------------------------------------------------------------------------------------
COMPILED_CACHE_SIZE = 4
"""How many compiled nutpie models :func:`sample` keeps for re-use (most recently used)."""


@dataclass
class _Compiled:
    """A compiled nutpie model and what it was compiled from."""

    outputs: list[Any]  # the log density and the values the trace expands to (graphs)
    inputs: list[Any]  # the value variables, then the data (shared variables) in graph order
    meta: tuple[Any, ...]  # names, shapes, coordinates, dims, bounds checks
    data: list[np.ndarray]  # the data's values when compiled (nutpie copies them)
    compiled: Any


_COMPILED: list[_Compiled] = []


def clear_compiled() -> None:
    """Forget the compiled models that :func:`sample` keeps for re-use."""
    _COMPILED.clear()


def _model_graph(model: Any) -> tuple[list[Any], list[Any], list[Any], tuple[Any, ...]]:
    """What nutpie compiles of ``model``: the outputs (the log density, then the values the
    trace expands to), the value variables, the data (shared variables, in graph order) and the
    rest it depends on (names, shapes, coordinates, dims, bounds checks)."""
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import graph_inputs

    values = [model.rvs_to_values[v] for v in model.free_RVs]
    outputs = [model.logp(), *model.unobserved_value_vars]
    shared = [v for v in graph_inputs(outputs) if isinstance(v, SharedVariable)]
    meta = (
        [v.name for v in model.free_RVs],
        [v.name for v in values],
        [v.name for v in model.unobserved_value_vars],
        {k: None if c is None else tuple(c) for k, c in model.coords.items()},
        {k: int(v.eval()) for k, v in model.dim_lengths.items()},
        {k: tuple(v) for k, v in model.named_vars_to_dims.items()},
        bool(model.check_bounds),
    )
    return outputs, values, shared, meta


def _compile_key(model: Any) -> _Compiled | None:
    """What a compiled nutpie model depends on, for :func:`_find_compiled`; None when the model
    holds something the comparison does not cover (then it is compiled afresh)."""
    if any(v is not None for v in model.rvs_to_initial_values.values()):
        return None  # initial values of the user's own: not compared
    outputs, values, shared, meta = _model_graph(model)
    data = [np.array(v.get_value(borrow=False)) for v in shared]
    return _Compiled(outputs, [*values, *shared], meta, data, None)


def _same(a: _Compiled, b: _Compiled) -> bool:
    """The same computation on the same data: PyTensor's graph equality (operations with their
    parameters, constants by value) with the inputs paired in order, and equal data."""
    from pytensor.graph.basic import equal_computations

    if a.meta != b.meta or len(a.inputs) != len(b.inputs) or len(a.outputs) != len(b.outputs):
        return False
    if any(x.type != y.type for x, y in zip(a.inputs, b.inputs, strict=True)):
        return False
    if any(
        x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y, equal_nan=True)
        for x, y in zip(a.data, b.data, strict=True)
    ):
        return False
    return equal_computations(a.outputs, b.outputs, in_xs=a.inputs, in_ys=b.inputs)


def _nutpie_compiled(model: Any, reuse: bool) -> Any:
    """nutpie's compiled model of ``model``: a kept one when ``reuse`` and an earlier model of
    this process was the same computation on the same data, else a fresh compile (kept)."""
    key = None
    if reuse:
        try:
            key = _compile_key(model)
        except Exception:  # anything unexpected: compile afresh, keep nothing
            key = None
    if key is not None:
        for i, c in enumerate(_COMPILED):
            if _same(c, key):
                _COMPILED.append(_COMPILED.pop(i))  # most recently used last
                return c.compiled
    graph = None  # the key's graph, so that the compile does not build it again
    if key is not None:
        n = len(key.inputs) - len(key.data)
        graph = (key.outputs, key.inputs[:n], key.inputs[n:], key.meta)
    compiled = _fresh_compile(model, graph)
    if key is not None:
        key.compiled = compiled
        _COMPILED.append(key)
        del _COMPILED[:-COMPILED_CACHE_SIZE]
    return compiled


# ----------------------------------------------------------------------------------------------
# compiled models, cached on disk across processes
# ----------------------------------------------------------------------------------------------
_CFUNC_LOGP = """
def netbayes_logp(dim, x_, out_, logp_, user_data_):
    if dim != {n_dim}:
        return -1
    try:
        x = carray(x_, ({n_dim},))
        out = carray(out_, ({n_dim},))
        logp = carray(logp_, ())
{load}        logp_val, grad = inner(x{args})
        logp[()] = logp_val
        out[...] = grad
        if not np.all(np.isfinite(out)):
            return 3
        if not np.isfinite(logp_val):
            return 4
    except Exception:
        return 1
    return 0
"""
_CFUNC_EXPAND = """
def netbayes_expand(dim, expanded, x_, out_, user_data_):
    if dim != {n_dim}:
        return -1
    if expanded != {n_expanded}:
        return -1
    try:
        x = carray(x_, ({n_dim},))
        out = carray(out_, ({n_expanded},))
{load}        (values,) = inner(x{args})
        out[...] = values
    except Exception:
        return -2
    return 0
"""


def _fresh_compile(model: Any, graph: tuple[Any, ...] | None = None) -> Any:
    """Compile ``model`` for nutpie: :func:`_compile_cached` where it applies, else nutpie's
    own ``compile_pymc_model`` (the same draws either way). ``graph``: :func:`_model_graph`'s
    answer for ``model`` when the caller has it."""
    import nutpie

    try:
        compiled = _compile_cached(model, graph=graph)
    except (ImportError, AttributeError, TypeError):  # another nutpie/PyTensor: their compile
        compiled = None
    return nutpie.compile_pymc_model(model) if compiled is None else compiled


def _compile_cached(
    model: Any, *, swappable: bool = False, graph: tuple[Any, ...] | None = None
) -> Any:
    """nutpie's numba model of ``model`` with its two C callbacks cached on disk.

    nutpie compiles the log density (with its gradient) and the trace expansion as PyTensor
    numba functions, which PyTensor caches on disk, and wraps each in a numba C callback,
    which it compiles afresh in every process (most of its 15-30 s). Here the callbacks are
    written as source, registered with PyTensor's numba cache under a key (SHA-256 of
    PyTensor's keys of the two functions, the callbacks' source, the data, the sizes and the
    numba and nutpie versions), and compiled with numba's cache: a later process with the same
    model loads them instead. The callbacks compute what nutpie's do (the same values, so the
    same draws; tested). None when PyTensor has no cache key for a function or its numba cache
    is off (``pytensor.config.numba__cache``).

    PyTensor's keys exist only after its graph rewrites (most of what is left of a compile,
    5-10 s), so what a compile found is also recorded under a digest of the model's graph
    *before* rewriting (:func:`_graph_key`): a later process with the same graph reads the
    record and loads the callbacks without rewriting or compiling anything. The model it
    returns then has no PyTensor functions (``logp_func`` and ``expand_func`` are None);
    nutpie samples through the callbacks alone, with the same draws.

    With ``swappable=False`` (:func:`sample`) the model's data are constants of the callbacks
    and their values part of the key. With ``swappable=True`` the callbacks read the data
    where nutpie's do, through its user data, so ``compiled.with_data(**values)`` swaps them
    as with ``nutpie.compile_pymc_model(model, freeze_model=False)``; the key holds the data's
    types and ranks only, so every process and every data set of the model share one compile
    (the simulation benchmarks). ``graph``: :func:`_model_graph`'s answer for ``model``, where
    the caller built it already.
    """
    import hashlib

    import numba
    import nutpie
    from nutpie.compile_pymc import _make_functions, _wrap_with_lock
    from pymc.initial_point import make_initial_point_fn
    from pytensor import config
    from pytensor.link.numba.cache import CACHED_SRC_FUNCTIONS

    if not config.numba__cache:
        return None
    point_fn = make_initial_point_fn(
        model=model,
        default_strategy="support_point",
        jitter_rvs=set(model.free_RVs),
        return_transformed=True,
    )  # fmt: skip  (what nutpie.compile_pymc_model uses by default)
    graph = _model_graph(model) if graph is None else graph
    graph_key = _graph_key(model, graph, swappable, point_fn)
    if graph_key is not None:
        compiled = _load_recorded(model, graph, graph_key, swappable, point_fn)
        if compiled is not None:
            return compiled
    n_dim, n_expanded, logp_fn, expand_fn, initial_point_fn, shape_info, reparameterized = (
        _make_functions(
            model, mode="NUMBA", compute_grad=True, join_expanded=True,
            pymc_initial_point_fn=_wrap_with_lock(point_fn), var_names=None,
        )
    )  # fmt: skip
    fns = {"netbayes_logp": logp_fn, "netbayes_expand": expand_fn}
    shared = {name: list(fn.get_shared()) for name, fn in fns.items()}
    user = _user_data(shared, swappable)
    if user is None:
        return None
    parts = {}
    for name, fn in fns.items():
        inner = fn.vm.jit_fn
        inner_key = CACHED_SRC_FUNCTIONS.get(inner.py_func)
        if inner_key is None:
            return None
        parts[name] = (inner, inner_key, *_callback_source(name, shared[name], user, n_dim,
                                                           n_expanded, swappable))  # fmt: skip
    h = hashlib.sha256()
    for text in ("netbayes-cfunc-2", numba.__version__, nutpie.__version__, str(n_dim),
                 str(n_expanded)):  # fmt: skip
        h.update(text.encode() + b"\0")
    for _, inner_key, data, src in parts.values():
        h.update(f"{inner_key}\0{src}\0".encode())
        for a in data:
            if swappable:  # the values are read at each call: their types only
                h.update(f"{a.dtype.str}{a.ndim}\0".encode())
            else:
                h.update(f"{a.dtype.str}{a.shape}\0".encode())
                h.update(a.tobytes())
    key = h.hexdigest()
    cfuncs = {
        name: _callback(name, src, key, inner, data, swappable)
        for name, (inner, _, data, src) in parts.items()
    }
    if graph_key is not None:
        _record(graph_key, graph[2], shared, {
            "key": key, "n_dim": int(n_dim), "n_expanded": int(n_expanded),
            "names": [str(x) for x in shape_info[0]],
            "slices": [[int(s.start), int(s.stop)] for s in shape_info[1]],
            "shapes": [[int(k) for k in shape] for shape in shape_info[2]],
            "reparameterized": [str(x) for x in reparameterized],
            "src": {name: part[3] for name, part in parts.items()},
        })  # fmt: skip
    return _nutpie_model(model, n_dim, n_expanded, shape_info, reparameterized, cfuncs,
                         initial_point_fn, user, logp_fn, expand_fn)  # fmt: skip


_CALLBACK_TEMPLATES = {"netbayes_logp": _CFUNC_LOGP, "netbayes_expand": _CFUNC_EXPAND}


@dataclass
class _UserData:
    """nutpie's user data of a compiled model: its copies of the data (swappable only), the
    data's keys, the record of their addresses and shapes, and where in the record each is."""

    shared_data: dict[str, np.ndarray]
    shared_var_keys: dict[Any, str]
    record: np.ndarray
    words: dict[str, Any]


def _user_data(shared: dict[str, list[Any]], swappable: bool) -> _UserData | None:
    """nutpie's user data for the callbacks' data (``shared``: each callback's shared
    variables); None for a record layout the callbacks cannot read."""
    from nutpie.compile_pymc import make_user_data

    shared_data: dict[str, np.ndarray] = {}  # nutpie's copies (swappable only)
    shared_var_keys: dict[Any, str] = {}
    if swappable:
        for v in [x for vs in shared.values() for x in vs]:
            if v not in shared_var_keys:
                shared_var_keys[v] = key = f"d{len(shared_var_keys)}"
                shared_data[key] = np.array(v.get_value(), order="C", copy=True)
                shared_data[key].flags.writeable = False
    record = make_user_data(shared_var_keys, shared_data)
    words = _user_data_words(record.dtype, shared_var_keys) if swappable else {}
    if words is None:
        return None
    return _UserData(shared_data, shared_var_keys, record, words)


def _callback_source(
    name: str, shared: list[Any], user: _UserData, n_dim: int, n_expanded: int, swappable: bool
) -> tuple[list[np.ndarray], str]:
    """The data a callback reads (nutpie's copies when swappable, else the values, constants
    of the callback) and its source."""
    if swappable:  # read at each call from nutpie's copies; here only their types
        data = [user.shared_data[user.shared_var_keys[v]] for v in shared]
    else:
        data = [np.array(v.get_value(), order="C", copy=True) for v in shared]
    args = "".join(f", d{i}" for i in range(len(data)))
    load = ""
    if swappable:  # each array from nutpie's user data: its address and shape
        load = f"        w = carray(user_data_, ({user.words['n']},), np.uint64)\n"
        for i, v in enumerate(shared):
            ptr, dims = user.words[user.shared_var_keys[v]]
            shape = "".join(f"int(w[{k}]), " for k in dims)
            at = f"address_as_void_pointer(w[{ptr}])"
            load += f"        d{i} = carray({at}, ({shape}), t{i})\n"
    src = _CALLBACK_TEMPLATES[name].format(n_dim=n_dim, n_expanded=n_expanded, args=args,
                                           load=load)  # fmt: skip
    return data, src


def _callback(name: str, src: str, key: str, inner: Any, data: list[np.ndarray],
              swappable: bool) -> Any:  # fmt: skip
    """The C callback ``name`` compiled from ``src`` with numba's cache, under ``key``."""
    import numba
    from nutpie.compile_pymc import address_as_void_pointer
    from pytensor.link.numba.cache import compile_numba_function_src

    T = numba.types
    sigs = {
        "netbayes_logp": T.int64(
            T.uint64, T.CPointer(T.double), T.CPointer(T.double), T.CPointer(T.double), T.voidptr
        ),
        "netbayes_expand": T.int64(
            T.uint64, T.uint64, T.CPointer(T.double), T.CPointer(T.double), T.voidptr
        ),
    }
    env = {
        "__name__": __name__,  # numba rebuilds a cached function's environment from it
        "inner": inner, "np": np, "carray": numba.carray,
    }  # fmt: skip
    if swappable:
        env["address_as_void_pointer"] = address_as_void_pointer
        env.update({f"t{i}": a.dtype.type for i, a in enumerate(data)})
    else:
        env.update({f"d{i}": a for i, a in enumerate(data)})
    py = compile_numba_function_src(src, name, env, cache_key=f"{key}-{name}")
    return numba.cfunc(sigs[name], cache=True)(py)


def _nutpie_model(model: Any, n_dim: int, n_expanded: int, shape_info: Any,
                  reparameterized: list[str], cfuncs: dict[str, Any], initial_point_fn: Any,
                  user: _UserData, logp_fn: Any, expand_fn: Any) -> Any:  # fmt: skip
    """nutpie's compiled model from its parts."""
    from nutpie.compile_pymc import CompiledPyMCModel, _prepare_dims_and_coords

    dims, coords = _prepare_dims_and_coords(model, shape_info, reparameterized)
    return CompiledPyMCModel(
        _n_dim=n_dim,
        dims=dims,
        _coords=coords,
        _shapes={name: tuple(shape) for name, _, shape in zip(*shape_info, strict=True)},
        compiled_logp_func=cfuncs["netbayes_logp"],
        compiled_expand_func=cfuncs["netbayes_expand"],
        initial_point_func=initial_point_fn,
        shared_data=user.shared_data,
        shared_var_keys=user.shared_var_keys,
        user_data=user.record,
        n_expanded=n_expanded,
        shape_info=shape_info,
        logp_func=logp_fn,
        expand_func=expand_fn,
        reparameterized_names=reparameterized,
    )


# ----------------------------------------------------------------------------------------------
# the record of a compile, under a digest of the model's graph before rewriting
# ----------------------------------------------------------------------------------------------
_RECORD_FORMAT = "netbayes-compiled-1"


def _graph_key(model: Any, graph: tuple[Any, ...], swappable: bool, point_fn: Any) -> str | None:
    """A digest of everything a compile of ``model`` depends on, before PyTensor rewrites its
    graph (:func:`netbayes.graph_hash.graph_digest`): the graph (operations with their
    parameters, constants by value, types), the data (their values, or with ``swappable``
    their types and shapes), names, coordinates and dims, the free variables' shapes, every
    PyTensor setting, the versions of Python, NumPy, PyTensor, PyMC, numba and nutpie, and
    the source of this module and of :mod:`netbayes.graph_hash`. None where the graph holds
    something the digest cannot describe exactly, or the model has initial values of the
    user's own (then the compile runs)."""
    import platform
    import sys

    import numba
    import nutpie
    import pymc
    import pytensor
    from pytensor import config

    from netbayes.graph_hash import Unhashable, graph_digest

    if any(v is not None for v in model.rvs_to_initial_values.values()):
        return None
    outputs, values, shared, meta = graph
    try:
        settings = []
        for name in sorted(config._config_var_dict):
            text = repr(getattr(config, name))
            if " at 0x" not in text:  # an object's address differs in every process
                settings.append((name, text))
        data = []
        for v in shared:
            a = np.asarray(v.get_value(borrow=True))
            data.append((a.dtype.str, a.shape) if swappable else a)
        try:
            shapes = sorted((k, tuple(np.shape(x))) for k, x in point_fn(0).items())
        except Exception:  # no initial point: no record; the compile reports the error
            return None
        extra = (
            _RECORD_FORMAT,
            bool(swappable),
            sys.version,
            platform.machine(),
            np.__version__,
            pytensor.__version__,
            pymc.__version__,
            numba.__version__,
            nutpie.__version__,
            tuple(settings),
            meta,
            tuple(data),
            tuple(shapes),
            _compile_cached,  # described with this module's source digest
            graph_digest,  # and with graph_hash's: another digest, other records
        )
        return graph_digest(outputs, [*values, *shared], extra)
    except Unhashable:
        return None


def _record_path(graph_key: str) -> Path:
    from pytensor.link.numba.cache import NUMBA_CACHE_PATH

    return Path(NUMBA_CACHE_PATH) / f"netbayes-{graph_key}.json"


def _record(graph_key: str, shared_all: list[Any], shared: dict[str, list[Any]],
            found: dict[str, Any]) -> None:  # fmt: skip
    """Write what a compile found under ``graph_key`` (JSON, atomically), with each callback's
    data as positions among the graph's shared variables; nothing when a callback reads a
    shared variable the graph does not hold."""
    import json

    from netbayes.store import write_atomic

    where = {id(v): i for i, v in enumerate(shared_all)}
    if any(id(v) not in where for vs in shared.values() for v in vs):
        return
    doc = {"format": _RECORD_FORMAT, **found,
           "shared": {name: [where[id(v)] for v in vs] for name, vs in shared.items()}}  # fmt: skip
    try:
        text = json.dumps(doc, sort_keys=True)
    except (TypeError, ValueError):  # pragma: no cover - nothing JSON cannot hold is recorded
        return
    try:
        write_atomic(_record_path(graph_key), text.encode())
    except OSError:  # a read-only cache: the next process compiles again
        pass


def _not_compiled(*args: Any) -> Any:  # pragma: no cover - never called
    """Stands for a callback's inner function when the callback is loaded from numba's cache
    (a loaded callback holds its inner function's code); numba cannot compile a call to it,
    so a callback missing from the cache fails to build instead of being compiled wrongly."""
    raise RuntimeError("a recorded callback was not in numba's cache")


def _load_recorded(model: Any, graph: tuple[Any, ...], graph_key: str, swappable: bool,
                   point_fn: Any) -> Any:  # fmt: skip
    """nutpie's model of ``model`` from the record under ``graph_key`` and the two callbacks in
    numba's cache, or None (no record, an unreadable one, a callback whose source differs or
    that is not in the cache: then the compile runs)."""
    import json

    from nutpie.compile_pymc import _rv_dict_to_flat_array_wrapper, _wrap_with_lock

    try:
        doc = json.loads(_record_path(graph_key).read_text())
        if not isinstance(doc, dict) or doc.get("format") != _RECORD_FORMAT:
            return None
        shared_all = graph[2]
        shared = {name: [shared_all[int(i)] for i in doc["shared"][name]]
                  for name in _CALLBACK_TEMPLATES}  # fmt: skip
        n_dim, n_expanded = int(doc["n_dim"]), int(doc["n_expanded"])
        names = [str(x) for x in doc["names"]]
        slices = [slice(int(a), int(b)) for a, b in doc["slices"]]
        shapes = [np.array(s, dtype=np.int64) for s in doc["shapes"]]
        key = str(doc["key"])
        srcs = {name: str(doc["src"][name]) for name in _CALLBACK_TEMPLATES}
        reparameterized = [str(x) for x in doc["reparameterized"]]
    except (OSError, ValueError, KeyError, TypeError, IndexError):  # not a record of ours
        return None
    user = _user_data(shared, swappable)
    if user is None:
        return None
    cfuncs = {}
    for name in _CALLBACK_TEMPLATES:
        data, src = _callback_source(name, shared[name], user, n_dim, n_expanded, swappable)
        if src != srcs[name]:
            return None
        try:
            cfuncs[name] = _callback(name, src, key, _not_compiled, data, swappable)
        except Exception:  # not in numba's cache (numba cannot compile the stand-in)
            return None
        if cfuncs[name].cache_hits != 1:
            return None
    n_free = len(model.free_RVs)  # the free variables come first (nutpie's layout)
    initial_point_fn = _rv_dict_to_flat_array_wrapper(
        _wrap_with_lock(point_fn), names=names[:n_free], shapes=shapes[:n_free]
    )
    shape_info = (names, slices, shapes)
    return _nutpie_model(model, n_dim, n_expanded, shape_info, reparameterized, cfuncs,
                         initial_point_fn, user, None, None)  # fmt: skip


def _user_data_words(dtype: np.dtype, keys: dict[Any, str]) -> dict[str, Any] | None:
    """Where nutpie's user data record (:func:`nutpie.compile_pymc.make_user_data`) keeps each
    array's address and shape, in 8-byte words: ``{key: (address word, shape words)}`` and
    ``n`` (the record's length in words); None for a layout other than packed 8-byte fields."""
    if dtype.itemsize % 8:
        return None
    sub, base = dtype.fields["shared"][:2]
    out: dict[str, Any] = {"n": dtype.itemsize // 8}
    for key in keys.values():
        ptr_t, ptr_off = sub["data"].fields[key][:2]
        shape_t, shape_off = sub["shape"].fields[key][:2]
        ptr = base + sub.fields["data"][1] + ptr_off
        start = base + sub.fields["shape"][1] + shape_off
        n = shape_t.shape[0] if shape_t.shape else 0
        if ptr_t.itemsize != 8 or (n and shape_t.base.itemsize != 8) or (ptr | start) % 8:
            return None
        out[key] = (ptr // 8, [start // 8 + j for j in range(n)])
    return out


def compile_swappable(model: Any) -> Any:
    """nutpie's numba model of ``model`` whose data can be swapped, compiled once per machine.

    What ``nutpie.compile_pymc_model(model, freeze_model=False)`` returns (``with_data``
    swaps the model's ``pymc.Data`` values; the same draws for the same data and seed), with
    its C callbacks cached on disk, keyed by the model's computation and the data's types and
    shapes, not their values: a later process, or a simulation study's worker, loads them in
    about a second instead of compiling for 15-30 s. The model it returns then has no
    PyTensor functions (``logp_func`` and ``expand_func`` are None; nutpie does not use them).
    Falls back to nutpie's own compile where the cache does not apply (another nutpie or
    PyTensor, PyTensor's numba cache off).

    Parameters
    ----------
    model : pymc.Model

    Returns
    -------
    nutpie.compile_pymc.CompiledPyMCModel
    """
    import nutpie

    try:
        compiled = _compile_cached(model, swappable=True)
    except (ImportError, AttributeError, TypeError, KeyError):  # another nutpie/PyTensor
        compiled = None
    if compiled is None:
        return nutpie.compile_pymc_model(model, freeze_model=False)
    return compiled


def sample(
    model: Any,
    *,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int | None = None,
    seed: int = 20261121,
    sampler: Literal["nutpie", "pymc"] = "nutpie",
    progress: bool = True,
    target_accept: float = 0.9,
    var_names: list[str] | None = None,
    reuse_compiled: bool = True,
    adaptation: Literal["diag", "low_rank"] = "diag",
) -> FitResult:
    """Sample a PyMC model with NUTS and diagnose convergence.

    Parameters
    ----------
    model : pymc.Model
        The model to sample.
    draws, tune, chains : int
        Post-warm-up draws per chain, warm-up draws per chain, number of chains.
    cores : int, optional
        Chains run in parallel on this many cores (default: all available, at most ``chains``).
    seed : int
        Random seed, 0 to 2**63-1. The same seed, data and software versions on the same
        machine give the same draws, bit for bit, except in the process that first compiles
        the model into an empty PyTensor cache (numba's code built there differs in the last
        bits from the cached code later processes load; README, "Reproducibility"); another
        machine or other versions give a statistically equivalent posterior, not the same
        draws.
    sampler : {"nutpie", "pymc"}
        nutpie (compiled, fast; default) or PyMC's own NUTS.
    progress : bool
        Show a progress bar.
    target_accept : float
        Target acceptance rate of the step-size adaptation (both samplers).
    var_names : list of str, optional
        Variables whose diagnostics count (default: every posterior variable).
    reuse_compiled : bool
        nutpie only: re-use the compiled model of an earlier fit in this process when the
        model is the same computation on the same data (PyTensor's graph equality: every
        operation with its parameters, constants and data by value, the same variables,
        shapes and coordinates), which saves the compile. The last
        :data:`COMPILED_CACHE_SIZE` compiled models are kept; :func:`clear_compiled` forgets
        them. The draws are those of a fresh compile. Across processes, a model compiled
        before on this machine (the same graph, data, settings and versions) is loaded from
        PyTensor's numba cache without rewriting or compiling, whatever this setting.
    adaptation : {"diag", "low_rank"}
        nutpie only: the mass matrix adapted in warm-up, diagonal (nutpie's default) or
        diagonal plus a low-rank correction for the posterior's strongest correlations
        (nutpie's ``low_rank``; more effective draws per gradient where parameters are
        correlated).

    Returns
    -------
    FitResult

    Warns
    -----
    ConvergenceWarning
        If there are divergences, an R-hat above 1.01 or a bulk ESS below 400, naming the worst
        parameter and what to try.
    """
    import os

    if draws < 1 or tune < 0 or chains < 1:
        raise ValueError(
            f"draws={draws}, tune={tune}, chains={chains}: need draws >= 1, tune >= 0, chains >= 1"
        )
    if sampler not in ("nutpie", "pymc"):
        raise ValueError(f"sampler={sampler!r} is not allowed; expected 'nutpie' or 'pymc'")
    if adaptation not in ("diag", "low_rank"):
        raise ValueError(f"adaptation={adaptation!r} is not allowed; expected 'diag' or 'low_rank'")
    if sampler == "pymc" and adaptation != "diag":
        raise ValueError(
            f"adaptation={adaptation!r} is not allowed with sampler='pymc' (PyMC's NUTS adapts "
            "a diagonal mass matrix); expected 'diag', or sampler='nutpie'"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(  # before the compile, not after it
            f"seed={seed!r} is not allowed; expected an integer from 0 to 2**63-1"
        )
    cores = cores or min(chains, os.cpu_count() or 1)
    t0 = time.perf_counter()
    if sampler == "nutpie":
        import nutpie

        compiled = _nutpie_compiled(model, bool(reuse_compiled))
        t1 = time.perf_counter()
        tree = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            seed=seed,
            progress_bar=progress,
            target_accept=target_accept,
            adaptation=adaptation,
        )
    else:
        import pymc as pm

        t1 = time.perf_counter()
        with model:
            tree = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=cores,
                random_seed=seed,
                progressbar=progress,
                target_accept=target_accept,
                compute_convergence_checks=False,
                # PyMC >= 6 picks nutpie by itself when it is installed; "pymc" means its own NUTS
                nuts_sampler="pymc",
            )
    t2 = time.perf_counter()
    diag = diagnose(tree, var_names)
    n_div = _divergences(tree)
    problems = _problems(diag, n_div)
    result = FitResult(
        posterior=tree,
        diagnostics=diag,
        n_divergences=n_div,
        sampler=sampler,
        seconds={"compile": t1 - t0, "sample": t2 - t1, "total": t2 - t0},
        problems=problems,
        settings={
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "seed": seed,
            "target_accept": float(target_accept),
            "adaptation": adaptation,
        },
    )
    if problems:
        warnings.warn(
            "The fit did not converge well; do not report it as is:\n  - "
            + "\n  - ".join(problems),
            ConvergenceWarning,
            stacklevel=2,
        )
    return result
