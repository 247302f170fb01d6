"""The digest of a model's graph before rewriting (``netbayes.graph_hash``, the key of
``netbayes.fitting``'s compile records): the same in every process for the same model, another
for any difference a compile depends on, and none where the graph holds something it cannot
describe exactly."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor.tensor as pt
import pytest
from pytensor import config
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op

from netbayes import fitting, graph_hash
from netbayes.graph_hash import Unhashable, graph_digest, tokens
from netbayes.models.toxicity import ToxicityModel

Y = [0.3, -1.2, 0.8, 2.0, 0.1]


def _toy(y=Y, mu_sd: float = 1.0, coords: bool = False, name: str = "mu", lik=pm.Normal):
    with pm.Model(coords={"obs": range(len(y))} if coords else None) as m:
        data = pm.Data("y", np.asarray(y, float))
        mu = pm.Normal(name, 0.0, mu_sd)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Deterministic("mu2", mu**2)
        lik("lik", mu, sigma, observed=data, dims="obs" if coords else None)
    return m


def _key(model: pm.Model, swappable: bool = False) -> str | None:
    from pymc.initial_point import make_initial_point_fn

    point_fn = make_initial_point_fn(model=model, return_transformed=True)
    return fitting._graph_key(model, fitting._model_graph(model), swappable, point_fn)


def test_the_same_model_has_the_same_key_in_another_process():
    """Built twice here and once in a process with a fixed string-hash seed (this one's is
    random): one key (nothing depends on Python's ``hash`` or on object identity)."""
    here = _key(_toy())
    assert here is not None and len(here) == 64 and here == _key(_toy())
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_graph_hash import _key, _toy
        print("KEY", _key(_toy()))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "1"},
    )  # fmt: skip
    assert f"KEY {here}" in out.stdout, out.stdout + out.stderr


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda: _toy([*Y[:-1], 0.2]), id="data value"),
        pytest.param(lambda: _toy(Y[:-1]), id="data shape"),
        pytest.param(lambda: _toy(mu_sd=2.0), id="prior constant"),
        pytest.param(lambda: _toy(mu_sd=1.0 + 2**-52), id="prior constant, last bit"),
        pytest.param(lambda: _toy(coords=True), id="coordinates"),
        pytest.param(lambda: _toy(name="nu"), id="variable name"),
        pytest.param(lambda: _toy(lik=pm.Cauchy), id="likelihood"),
    ],
)
def test_any_difference_is_another_key(other):
    assert _key(other()) not in (None, _key(_toy()))


def test_swappable_keys_hold_the_data_shapes_not_values():
    base = _key(_toy(), swappable=True)
    assert base not in (None, _key(_toy()))  # not the key of the frozen-data compile
    assert _key(_toy([*Y[:-1], 0.2]), swappable=True) == base
    assert _key(_toy(Y[:-1]), swappable=True) != base


def test_a_pytensor_setting_changes_the_key():
    base = _key(_toy())
    with config.change_flags(numba__fastmath=not config.numba__fastmath):
        assert _key(_toy()) not in (None, base)


def test_an_edited_netbayes_operation_changes_the_key(monkeypatch):
    """The lattice operation (defined in netbayes, not a versioned package) is described with
    its module's source digest: another source, another key."""
    model = ToxicityModel().build()
    base = _key(model)
    assert base is not None
    graph_hash._module_digest("netbayes.likelihoods.lattice")  # fill the memo, then edit it
    monkeypatch.setitem(graph_hash._SOURCE_DIGESTS, "netbayes.likelihoods.lattice", b"edited")
    assert _key(model) not in (None, base)


def test_a_user_initial_value_has_no_key():
    m = _toy()
    m.set_initval(m["mu"], 0.5)
    assert _key(m) is None


class _NoProps(Op):
    """An operation PyTensor compares by identity (no ``__props__``)."""

    def make_node(self, x):
        return Apply(self, [x], [x.type()])

    def perform(self, node, inputs, outputs):  # pragma: no cover - never run
        outputs[0][0] = inputs[0]


def test_what_cannot_be_described_exactly_has_no_key():
    x = pt.dvector("x")
    with pytest.raises(Unhashable, match="cannot describe"):
        graph_digest([_NoProps()(x)], [x])
    with pytest.raises(Unhashable, match="neither an input nor a constant"):
        graph_digest([x + 1.0], [])
    with pytest.raises(Unhashable, match="no stable name"):
        tokens(lambda v: v, [])
    with pytest.raises(Unhashable, match="objects"):
        tokens(np.array([object()]), [])
    with pytest.raises(Unhashable, match="too deeply"):
        deep: list = []
        for _ in range(40):
            deep = [deep]
        tokens(deep, [])


def test_descriptions_do_not_run_together():
    """Each token is hashed with its length, and containers are delimited: descriptions that
    would read alike concatenated give other digests."""
    x = pt.dvector("x")
    out = x + 1.0
    assert graph_digest([out], [x], extra=("ab", "c")) != graph_digest([out], [x], ("a", "bc"))
    assert graph_digest([out], [x], extra=[[1], 2]) != graph_digest([out], [x], [[1, 2]])
    assert graph_digest([out], [x], extra=1) != graph_digest([out], [x], extra=1.0)
    assert graph_digest([out], [x], extra=True) != graph_digest([out], [x], extra=1)
    a = np.zeros(2)
    assert graph_digest([out], [x], extra=a) != graph_digest([out], [x], extra=a.reshape(1, 2))
    assert graph_digest([out], [x], extra=a) != graph_digest([out], [x], extra=a.astype("f4"))
    y = pt.dvector("y")
    assert graph_digest([x - y], [x, y]) != graph_digest([x - y], [y, x])  # inputs by position


@pytest.mark.parametrize("module", ["netbayes.fitting", "netbayes.graph_hash"])
def test_an_edited_compile_or_digest_module_changes_the_key(monkeypatch, module):
    """The callbacks' source and assembly (``fitting``) and the digest itself (``graph_hash``)
    are part of the key: a record written by other code is never read."""
    base = _key(_toy())
    graph_hash._module_digest(module)
    monkeypatch.setitem(graph_hash._SOURCE_DIGESTS, module, b"edited")
    assert _key(_toy()) not in (None, base)
