"""Test helper: a model's graphs evaluated at points of its value variables, compiled once per
model and outputs (tests evaluate one model at several points; each PyTensor compile of a
netbayes model costs seconds)."""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def values_at(model: Any, outs: Sequence[Any], point: Mapping[str, Any]) -> list[Any]:
    """The graphs ``outs`` (variables of ``model``) at ``point`` (values of its value variables)."""
    import pytensor

    fns = _COMPILED.setdefault(model, {})
    key = tuple(o.name for o in outs)
    if key not in fns:
        graphs = model.replace_rvs_by_values(list(outs))
        fns[key] = pytensor.function(model.value_vars, graphs, on_unused_input="ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fns[key](**{v.name: point[v.name] for v in model.value_vars})


def potentials_at(model: Any, point: Mapping[str, Any]) -> dict[str, float]:
    """Every potential of ``model`` at ``point``, by name."""
    names = [p.name for p in model.potentials]
    vals = values_at(model, [model[n] for n in names], point)
    return dict(zip(names, (float(v) for v in vals), strict=True))
