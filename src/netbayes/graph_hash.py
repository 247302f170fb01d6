"""A stable digest of a PyTensor graph: the same in every process for the same computation.

:func:`graph_digest` walks a graph from its outputs and hashes (SHA-256) every operation with
its parameters (``__props__``), every variable's type, every constant by value and the
inputs by position. Nothing depends on Python's ``hash`` or on object identity, so two
processes that build the same model get the same digest. It is what
:mod:`netbayes.fitting` keys its disk cache of compiled models on *before* PyTensor rewrites
the graph, so that a later process skips the rewrites as well as numba.

A digest must never be shared by two computations that compile differently. Where the walk
meets something it cannot describe exactly (an operation without ``__props__``, a lambda, an
object without a stable description, a variable that is neither an input nor a constant), it
raises :class:`Unhashable` and the caller compiles without the cache. An operation or function
defined outside PyTensor, PyMC and NumPy (netbayes' own lattice operation, say) is described by
its class or function name *and* the SHA-256 of its module's source, so that an edited
gradient or kernel never loads an older compile; PyTensor, PyMC and NumPy are described by
their versions, which the caller hashes.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import types
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

__all__ = ["Unhashable", "graph_digest", "tokens"]

_VERSIONED = ("pytensor", "pymc", "numpy", "builtins")  # described by their versions
_MAX_DEPTH = 16
_SOURCE_DIGESTS: dict[str, bytes] = {}


class Unhashable(Exception):
    """The graph holds something :func:`graph_digest` cannot describe exactly."""


def _module_digest(module: str) -> bytes:
    """SHA-256 of a module's source, for classes and functions defined outside the versioned
    packages (their behaviour is their source)."""
    if module not in _SOURCE_DIGESTS:
        mod = sys.modules.get(module)
        try:
            text = inspect.getsource(mod) if mod is not None else None
        except (OSError, TypeError):
            text = None
        if text is None:
            raise Unhashable(f"no source for module {module!r}")
        _SOURCE_DIGESTS[module] = hashlib.sha256(text.encode()).digest()
    return _SOURCE_DIGESTS[module]


def _name_token(obj: Any) -> bytes:
    """A class's or function's qualified name (and its module's source digest when the module
    is not versioned); :class:`Unhashable` for lambdas and local definitions."""
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str) or "<" in qualname:
        raise Unhashable(f"no stable name for {obj!r}")
    out = f"{module}:{qualname}".encode()
    if module.split(".")[0] not in _VERSIONED:
        out += b"@" + _module_digest(module)
    return out


def tokens(x: Any, out: list[bytes], depth: int = 0) -> None:
    """Append an unambiguous description of ``x`` to ``out`` (each token is later hashed with
    its length, so that no two descriptions run together)."""
    if depth > _MAX_DEPTH:
        raise Unhashable("nested too deeply")
    t = type(x)
    if x is None:
        out.append(b"N")
    elif t is bool:
        out.append(b"B1" if x else b"B0")
    elif t is int:
        out.append(b"I" + str(x).encode())
    elif t is float:
        out.append(b"F" + x.hex().encode())
    elif t is str:
        out.append(b"S" + x.encode())
    elif t is bytes:
        out.append(b"Y" + x)
    elif isinstance(x, (np.ndarray, np.generic)):
        a = np.asarray(x)
        if a.dtype.hasobject:
            raise Unhashable("an array of Python objects")
        out.append(f"A{a.dtype.str}{a.shape}".encode())
        out.append(np.ascontiguousarray(a).tobytes())
    elif isinstance(x, np.dtype):
        out.append(b"D" + x.str.encode())
    elif isinstance(x, (tuple, list)):
        out.append(b"(" + t.__name__.encode())
        for y in x:
            tokens(y, out, depth + 1)
        out.append(b")")
    elif isinstance(x, slice):
        out.append(b"(slice")
        for y in (x.start, x.stop, x.step):
            tokens(y, out, depth + 1)
        out.append(b")")
    elif isinstance(x, Mapping):
        items = []
        for k, v in x.items():
            kt: list[bytes] = []
            tokens(k, kt, depth + 1)
            vt: list[bytes] = []
            tokens(v, vt, depth + 1)
            items.append((kt, vt))
        out.append(b"{")
        for kt, vt in sorted(items):
            out.extend(kt)
            out.extend(vt)
        out.append(b"}")
    elif isinstance(x, (set, frozenset)):
        elems = []
        for y in x:
            yt: list[bytes] = []
            tokens(y, yt, depth + 1)
            elems.append(yt)
        out.append(b"<")
        for yt in sorted(elems):
            out.extend(yt)
        out.append(b">")
    elif isinstance(x, (type, types.FunctionType, types.BuiltinFunctionType)):
        out.append(b"C" + _name_token(x))
    elif isinstance(getattr(t, "__props__", None), tuple):  # operations and types: their props
        out.append(b"P" + _name_token(t))
        for p in t.__props__:
            out.append(b"=" + p.encode())
            tokens(getattr(x, p), out, depth + 1)
        out.append(b"/P")
    elif t.__module__.split(".")[0] in ("pytensor", "pymc") and hasattr(x, "__dict__"):
        # small helper objects of PyTensor's (an output-type rule, say): class and attributes
        out.append(b"O" + _name_token(t))
        tokens(dict(vars(x)), out, depth + 1)
        out.append(b"/O")
    else:
        raise Unhashable(f"cannot describe {t.__module__}.{t.__qualname__} exactly")


def graph_digest(outputs: Iterable[Any], inputs: Iterable[Any], extra: Any = None) -> str:
    """SHA-256 (hex) of the computation of ``outputs`` from ``inputs``.

    Parameters
    ----------
    outputs : list of pytensor.Variable
        The graph's outputs, in order.
    inputs : list of pytensor.Variable
        Its inputs, in order (value variables, shared variables): described by position and
        type, never by value; every other root of the graph must be a constant.
    extra : object, optional
        Anything else the digest must cover (versions, names, data), described by
        :func:`tokens`.

    Returns
    -------
    str

    Raises
    ------
    Unhashable
        Where the graph holds something that cannot be described exactly.
    """
    from pytensor.graph.basic import Constant

    outputs, inputs = list(outputs), list(inputs)
    ids: dict[int, int] = {}  # id(variable) -> its number in the walk
    keep: list[Any] = []  # keeps the numbered variables alive while ids refers to them
    out: list[bytes] = [b"netbayes-graph-1"]
    tokens(extra, out)

    def number(v: Any) -> int:
        ids[id(v)] = len(ids)
        keep.append(v)
        return ids[id(v)]

    for i, v in enumerate(inputs):
        if id(v) in ids:
            raise Unhashable("an input given twice")
        number(v)
        out.append(f"in{i}".encode())
        tokens(v.type, out)
    # a post-order walk from the outputs, inputs of each node in order (no recursion)
    stack: list[tuple[Any, bool]] = [(v, False) for v in reversed(outputs)]
    while stack:
        v, expanded = stack.pop()
        if id(v) in ids:
            continue
        node = v.owner
        if node is None:
            if not isinstance(v, Constant):
                raise Unhashable(f"the root variable {v} is neither an input nor a constant")
            out.append(b"const")
            tokens(v.type, out)
            tokens(v.data, out)
            number(v)
            continue
        if not expanded:
            stack.append((v, True))
            stack.extend((i, False) for i in reversed(node.inputs) if id(i) not in ids)
            continue
        out.append(b"apply")
        tokens(node.op, out)
        out.append(b"args")
        tokens([ids[id(i)] for i in node.inputs], out)
        for o in node.outputs:
            tokens(o.type, out)
            number(o)
    out.append(b"outputs")
    tokens([ids[id(v)] for v in outputs], out)
    h = hashlib.sha256()
    for tok in out:
        h.update(len(tok).to_bytes(8, "little"))
        h.update(tok)
    return h.hexdigest()
