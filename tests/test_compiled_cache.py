"""Compiled nutpie models are re-used within a process only for the same computation on the
same data (``netbayes.fitting``: graph equality, data by value), and give the same draws; their
C callbacks are cached on disk across processes and give nutpie's own draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from netbayes import fitting
from netbayes.fitting import _compile_key, _same
from netbayes.models.survival import SurvivalModel
from netbayes.models.toxicity import ToxicityModel


def _toy(y, mu_sd: float = 1.0, coords: bool = False, name: str = "mu") -> pm.Model:
    with pm.Model(coords={"obs": range(len(y))} if coords else None) as m:
        data = pm.Data("y", np.asarray(y, float))
        mu = pm.Normal(name, 0.0, mu_sd)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Normal("lik", mu, sigma, observed=data, dims="obs" if coords else None)
    return m


def _same_models(a: pm.Model, b: pm.Model) -> bool:
    return _same(_compile_key(a), _compile_key(b))


Y = [0.3, -1.2, 0.8, 2.0, 0.1]


def test_the_same_model_built_twice_is_the_same_computation():
    assert _same_models(_toy(Y), _toy(Y))


@pytest.mark.parametrize(
    "other",
    [
        pytest.param(lambda: _toy([*Y[:-1], 0.2]), id="data value"),
        pytest.param(lambda: _toy(Y[:-1]), id="data shape"),
        pytest.param(lambda: _toy(Y, mu_sd=2.0), id="prior constant"),
        pytest.param(lambda: _toy(Y, coords=True), id="coordinates"),
        pytest.param(lambda: _toy(Y, name="nu"), id="variable name"),
    ],
)
def test_any_difference_is_another_computation(other):
    assert not _same_models(_toy(Y), other())


def test_a_user_initial_value_is_never_matched():
    m = _toy(Y)
    m.set_initval(m["mu"], 0.5)
    assert _compile_key(m) is None


def test_netbayes_models_match_only_their_own_settings():
    """Two default PFS models match; a prior, a grid, the endpoint or the family does not."""
    base = _compile_key(SurvivalModel("pfs").build())
    assert _same(base, _compile_key(SurvivalModel("pfs").build()))
    for other in (
        SurvivalModel("pfs", priors={"beta_gbq": {"sigma": 0.3}}),
        SurvivalModel("pfs", n_grid=8),
        SurvivalModel("os"),
        SurvivalModel("pfs", family="lognormal"),
    ):
        assert not _same(base, _compile_key(other.build())), other.model_info()["config"]
    tox = _compile_key(ToxicityModel().build())
    assert _same(tox, _compile_key(ToxicityModel().build()))
    assert not _same(tox, _compile_key(ToxicityModel(priors={"theta": {"sigma": 2.0}}).build()))


@pytest.mark.slow
def test_a_reused_compile_gives_the_draws_of_a_fresh_one():
    """Fit, fit the same model again (re-used: no second entry), then fit the same model
    after forgetting every compiled model: the three have the same draws, bit for bit; a
    model with other data is compiled afresh and its draws differ."""
    kw = dict(draws=30, tune=30, chains=2, seed=5, progress=False)
    fitting.clear_compiled()
    try:
        a = fitting.sample(_toy(Y), **kw)
        assert len(fitting._COMPILED) == 1
        first = fitting._COMPILED[0].compiled
        b = fitting.sample(_toy(Y), **kw)
        assert len(fitting._COMPILED) == 1 and fitting._COMPILED[0].compiled is first
        fitting.clear_compiled()
        c = fitting.sample(_toy(Y), **kw, reuse_compiled=False)
        assert fitting._COMPILED == []  # nothing kept without re-use
        d = fitting.sample(_toy([*Y[:-1], 5.0]), **kw)
        assert len(fitting._COMPILED) == 1 and fitting._COMPILED[0].compiled is not first
        for v in ("mu", "sigma"):
            x = a.posterior["posterior"][v].to_numpy()
            np.testing.assert_array_equal(x, b.posterior["posterior"][v].to_numpy())
            np.testing.assert_array_equal(x, c.posterior["posterior"][v].to_numpy())
        assert not np.array_equal(
            a.posterior["posterior"]["mu"].to_numpy(), d.posterior["posterior"]["mu"].to_numpy()
        )
    finally:
        fitting.clear_compiled()


def test_the_cache_keeps_the_most_recently_used(monkeypatch):
    """With the compile replaced by a counter: a repeat is not compiled again, the cache holds
    COMPILED_CACHE_SIZE models, the least recently used goes first."""
    calls = []
    monkeypatch.setattr(fitting, "_fresh_compile", lambda m, g: calls.append(m) or object())
    fitting.clear_compiled()
    try:
        n = fitting.COMPILED_CACHE_SIZE
        first = fitting._nutpie_compiled(_toy([*Y, 0.0]), True)
        assert fitting._nutpie_compiled(_toy([*Y, 0.0]), True) is first and len(calls) == 1
        for i in range(1, n):
            fitting._nutpie_compiled(_toy([*Y, float(i)]), True)
        assert len(calls) == n and len(fitting._COMPILED) == n
        assert fitting._nutpie_compiled(_toy([*Y, 0.0]), True) is first  # used: now the newest
        fitting._nutpie_compiled(_toy([*Y, float(n)]), True)  # pushes out [*Y, 1.0]
        assert len(fitting._COMPILED) == n and len(calls) == n + 1
        assert fitting._nutpie_compiled(_toy([*Y, 0.0]), True) is first
        fitting._nutpie_compiled(_toy([*Y, 1.0]), True)
        assert len(calls) == n + 2  # compiled again
        assert fitting._nutpie_compiled(_toy([*Y, 0.0]), False) is not first
        assert len(calls) == n + 3
    finally:
        fitting.clear_compiled()


def _draws(compiled, seed: int = 5) -> dict[str, np.ndarray]:
    import nutpie

    tr = nutpie.sample(compiled, draws=40, tune=40, chains=2, cores=1, seed=seed,
                       progress_bar=False)  # fmt: skip
    return {v: tr.posterior[v].to_numpy() for v in tr.posterior.data_vars}


@pytest.mark.slow
def test_disk_cached_callbacks_give_nutpies_draws_and_load_in_another_process(tmp_path):
    """The cached C callbacks compute what nutpie's compile does: the same draws, bit for bit
    (a toy model with data, a transform and a deterministic). A second process compiling the
    same model loads both callbacks from the disk cache; a model with other data does not."""
    import secrets
    import subprocess
    import sys
    import textwrap

    import nutpie

    y = [0.3, -1.2, 0.8, 2.0, 0.1, 7.5]
    fresh = [*y[:-1], 1.0 + secrets.randbelow(10**9) / 10**9]  # never compiled before
    ours = fitting._compile_cached(_toy_det(y))
    assert ours is not None
    a, b = _draws(ours), _draws(nutpie.compile_pymc_model(_toy_det(y)))
    assert set(a) == set(b) == {"mu", "sigma", "mu2"}
    for v in a:
        np.testing.assert_array_equal(a[v], b[v], err_msg=v)
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_compiled_cache import _toy_det
        from netbayes import fitting
        for y in ({y!r}, {fresh!r}):
            c = fitting._compile_cached(_toy_det(y))
            print("HITS", c.compiled_logp_func.cache_hits, c.compiled_expand_func.cache_hits)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    hits = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith("HITS")]
    assert hits == [["1", "1"], ["0", "0"]], out.stdout + out.stderr


def _toy_det(y) -> pm.Model:
    with pm.Model() as m:
        data = pm.Data("y", np.asarray(y, float))
        mu = pm.Normal("mu", 0.0, 1.0)
        sigma = pm.HalfNormal("sigma", 1.0)
        pm.Deterministic("mu2", mu**2)
        pm.Normal("lik", mu, sigma, observed=data)
    return m


def test_another_nutpie_or_pytensor_falls_back_to_nutpies_compile(monkeypatch):
    """If the cached path cannot be built (private nutpie API changed), nutpie compiles."""
    import nutpie

    def broken(model, **kw):
        raise ImportError("cannot import name '_make_functions'")

    sentinel = object()
    monkeypatch.setattr(fitting, "_compile_cached", broken)
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda m: sentinel)
    assert fitting._fresh_compile(_toy(Y)) is sentinel
    monkeypatch.setattr(fitting, "_compile_cached", lambda m, **kw: None)  # no cache key
    assert fitting._fresh_compile(_toy(Y)) is sentinel


@pytest.mark.slow
def test_swappable_compile_gives_nutpies_draws_for_swapped_data_and_loads_elsewhere():
    """``compile_swappable`` is ``nutpie.compile_pymc_model(freeze_model=False)`` with its
    callbacks cached: the same draws, bit for bit, for the data it was built with and for data
    swapped in (other values, another length); the swap is used (the posterior moves); and a
    second process loads both callbacks from the disk cache although its data differ, because
    the key holds the data's types, not their values."""
    import secrets
    import subprocess
    import sys
    import textwrap

    import nutpie

    y = [0.3, -1.2, 0.8, 2.0, 0.1, 7.5 + secrets.randbelow(10**9) / 10**9]
    ours = fitting.compile_swappable(_toy_det(y))
    assert ours.compiled_logp_func is not None and ours.shared_data  # the data are swappable
    theirs = nutpie.compile_pymc_model(_toy_det(y), freeze_model=False)
    means = []
    for data in (None, [5.0, 6.0, 7.0], [0.5] * 20):
        a, b = (c if data is None else c.with_data(y=data) for c in (ours, theirs))
        da, db = _draws(a), _draws(b)
        assert set(da) == set(db) == {"mu", "sigma", "mu2"}
        for v in da:
            np.testing.assert_array_equal(da[v], db[v], err_msg=f"{v} with data {data}")
        means.append(float(da["mu"].mean()))
    assert means[1] > means[0] + 1.0 and means[1] > means[2] + 1.0  # the data were swapped
    # the same model with other data values: loaded in another process
    code = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_compiled_cache import _toy_det
        from netbayes import fitting
        c = fitting.compile_swappable(_toy_det({[*y[:-1], 1.0]!r}))
        print("HITS", c.compiled_logp_func.cache_hits, c.compiled_expand_func.cache_hits)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    hits = [line.split()[1:] for line in out.stdout.splitlines() if line.startswith("HITS")]
    assert hits == [["1", "1"]], out.stdout + out.stderr


def test_swappable_compile_falls_back_to_nutpies(monkeypatch):
    """Where the cached path does not apply, nutpie compiles with the data left swappable."""
    import nutpie

    seen = {}
    monkeypatch.setattr(fitting, "_compile_cached", lambda m, swappable: None)
    monkeypatch.setattr(nutpie, "compile_pymc_model", lambda m, **kw: seen.update(kw) or "n")
    assert fitting.compile_swappable(_toy(Y)) == "n" and seen == {"freeze_model": False}


@pytest.mark.slow
def test_swappable_compile_reads_matrices_integers_and_scalars():
    """Data of rank 2 (float), rank 1 (integer index) and rank 0 (a scale) are read through
    nutpie's user data with their own shapes and types: nutpie's draws, bit for bit, before
    and after a swap of all three."""
    import nutpie

    rng = np.random.default_rng(1)

    def model(X, g, s):
        with pm.Model() as m:
            Xd, gd, sd = pm.Data("X", X), pm.Data("g", g), pm.Data("s", s)
            b = pm.Normal("b", 0, 1, shape=3)
            a = pm.Normal("a", 0, 1, shape=4)
            pm.Normal("y", Xd @ b + a[gd], sd, observed=np.zeros(len(X)))
        return m

    X, g = rng.normal(size=(10, 3)), rng.integers(0, 4, 10)
    ours = fitting.compile_swappable(model(X, g, 1.5))
    theirs = nutpie.compile_pymc_model(model(X, g, 1.5), freeze_model=False)
    new = dict(X=rng.normal(size=(10, 3)) + 2.0, g=rng.integers(0, 4, 10), s=0.7)
    for a, b in ((ours, theirs), (ours.with_data(**new), theirs.with_data(**new))):
        da, db = _draws(a), _draws(b)
        for v in ("a", "b"):
            np.testing.assert_array_equal(da[v], db[v], err_msg=v)
    assert not np.array_equal(_draws(ours)["b"], _draws(ours.with_data(**new))["b"])


def _summary(c) -> dict:
    """What a compiled model is, for comparing two: whether the compile ran, the callbacks'
    cache hits, sizes, shapes, dims, coordinates and the draws."""
    return {
        "full": c.logp_func is not None,
        "hits": [c.compiled_logp_func.cache_hits, c.compiled_expand_func.cache_hits],
        "n_dim": c.n_dim, "n_expanded": c.n_expanded,
        "shapes": {k: [int(i) for i in v] for k, v in c.shapes.items()},
        "dims": c.dims, "coords": {k: list(map(str, v)) for k, v in (c.coords or {}).items()},
        "draws": {k: v.tolist() for k, v in _draws(c).items()},
    }  # fmt: skip


_RECORDED = """
import json, sys
sys.path.insert(0, {tests!r})
import numpy as np
import nutpie
import nutpie.compile_pymc
from test_compiled_cache import _draws, _summary, _toy_det
from netbayes import fitting

def no_rewrites(*a, **k):
    raise AssertionError("_make_functions called")

y, swap, mode = {y!r}, {swap!r}, sys.argv[1]
model = _toy_det(y)
make_functions = nutpie.compile_pymc._make_functions
if mode == "hit":  # nothing rewritten or compiled: the record and numba's cache only
    nutpie.compile_pymc._make_functions = no_rewrites
c = fitting._compile_cached(model, swappable=swap)
nutpie.compile_pymc._make_functions = make_functions
out = _summary(c)
if swap and mode == "hit":  # nutpie's own swappable compile: the same draws, swapped too
    theirs = nutpie.compile_pymc_model(_toy_det(y), freeze_model=False)
    for data in (None, [5.0, 6.0, 7.0]):
        a, b = (x if data is None else x.with_data(y=data) for x in (c, theirs))
        da, db = _draws(a), _draws(b)
        out.setdefault("same_as_nutpie", []).append(
            all(np.array_equal(da[v], db[v]) for v in da) and set(da) == set(db))
print("RESULT", json.dumps(out))
"""


def _recorded(y: list[float], mode: str, swap: bool = False) -> dict:
    import json
    import subprocess
    import sys

    code = _RECORDED.format(tests=str(Path(__file__).parent), y=y, swap=swap)
    out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True)
    lines = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    assert out.returncode == 0 and lines, out.stdout + out.stderr
    return json.loads(lines[0][7:])


def _record_file(y: list[float], swap: bool = False) -> Path:
    from pymc.initial_point import make_initial_point_fn

    m = _toy_det(y)
    point_fn = make_initial_point_fn(
        model=m, default_strategy="support_point", jitter_rvs=set(m.free_RVs),
        return_transformed=True,
    )  # fmt: skip
    key = fitting._graph_key(m, fitting._model_graph(m), swap, point_fn)
    assert key is not None
    return fitting._record_path(key)


@pytest.mark.slow
@pytest.mark.parametrize("swap", [False, True], ids=["sample", "swappable"])
def test_a_recorded_compile_loads_without_rewriting_and_gives_the_same_draws(swap):
    """A model never compiled before (swappable: its record removed, since the key holds the
    data's shapes, not values): a first process compiles it and records what it found under
    the graph's digest; a second loads it from the record and numba's cache without calling
    nutpie's ``_make_functions`` (no rewrites, no compile) and, swappable, gives nutpie's own
    draws before and after a swap. Compiled again here with the record removed (the callbacks
    then load from numba's cache after the rewrites), the model has the same sizes, shapes,
    dims and draws, bit for bit, and the same record is written. A record naming callbacks
    numba does not hold, or with another source, is not used: the compile runs and writes the
    good record again."""
    import json
    import secrets

    y = [0.3, -1.2, 0.8, 2.0, 0.1, 9.0 + secrets.randbelow(10**9) / 10**9]  # never compiled
    path = _record_file(y, swap)
    path.unlink(missing_ok=True)
    first = _recorded(y, "first", swap)
    assert first["full"] and path.is_file()
    doc = json.loads(path.read_text())
    hit = _recorded(y, "hit", swap)
    assert not hit["full"] and hit["hits"] == [1, 1]
    if swap:
        assert hit["same_as_nutpie"] == [True, True]
    path.unlink()
    for bad in (
        None,
        {**doc, "key": "0" * 64},
        {**doc, "src": {**doc["src"], "netbayes_logp": "x"}},
    ):
        if bad is not None:
            path.write_text(json.dumps(bad))
        again = _summary(fitting._compile_cached(_toy_det(y), swappable=swap))
        assert again["full"] and again["hits"] == [1, 1]
        assert json.loads(path.read_text()) == doc  # written (again)
        for k in ("n_dim", "n_expanded", "shapes", "dims", "coords", "draws"):
            assert hit[k] == again[k], k


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "[]",
        '{"format": "netbayes-compiled-0"}',
        '{"format": "netbayes-compiled-1"}',
        '{"format": "netbayes-compiled-1", "shared": {"netbayes_logp": [99], '
        '"netbayes_expand": []}, "n_dim": 2, "n_expanded": 3, "names": [], '
        '"slices": [], "shapes": [], "key": "k", "src": {}, "reparameterized": []}',
        '{"format": "netbayes-compiled-1", "shared": {"netbayes_logp": [], '
        '"netbayes_expand": []}, "n_dim": 2, "n_expanded": 3, "names": [], '
        '"slices": [], "shapes": [], "key": "k", "src": "x", "reparameterized": []}',
    ],
    ids=["not JSON", "a list", "another format", "fields missing", "bad index", "bad source"],
)
def test_an_unreadable_record_is_not_used(text):
    """A record that is not what this code writes (damaged, another format, fields missing
    or of another type) is ignored, not an error: the compile runs instead."""
    import secrets

    from pymc.initial_point import make_initial_point_fn

    m = _toy_det([0.3, 1.0 + secrets.randbelow(10**9) / 10**9])  # a key of its own
    point_fn = make_initial_point_fn(model=m, return_transformed=True)
    graph = fitting._model_graph(m)
    key = fitting._graph_key(m, graph, False, point_fn)
    path = fitting._record_path(key)
    path.write_text(text)
    try:
        assert fitting._load_recorded(m, graph, key, False, point_fn) is None
    finally:
        path.unlink()
