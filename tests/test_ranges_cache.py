"""The disk cache of the calibrated ranges, and the prediction path it keeps free of pandas."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from netbayes.calibration import _calibrated_ranges, calibrated_ranges
from netbayes.calibration import ranges_cache as rc


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv(rc.ENV_VAR, str(tmp_path / "cache"))
    return tmp_path / "cache"


def counted():
    calls = []

    def compute():
        calls.append(1)
        return _calibrated_ranges()

    return compute, calls


def test_read_back_equals_the_computed_ranges_exactly(cache):
    compute, calls = counted()
    first = rc.cached_ranges(compute)
    second = rc.cached_ranges(compute)
    assert len(calls) == 1  # the second came from the file
    assert second == first == _calibrated_ranges() == calibrated_ranges()
    # tuples come back as tuples, floats as the same floats
    assert isinstance(second["cumulative_gbq"], tuple)
    assert isinstance(second["planned_gbq"]["R-PRRT"], tuple)
    assert repr(second) == repr(first)
    files = list(cache.glob("calibrated-ranges-*.json"))
    assert len(files) == 1
    assert json.loads(files[0].read_text())["key"] == rc._key()
    assert not list(cache.glob(".*.tmp"))  # no temporary file left


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        json.dumps({"key": "0" * 64, "value": {}}),  # another key
        None,  # the right key, ranges that fail check_calibration
    ],
)
def test_a_bad_file_is_ignored_and_rewritten(cache, content):
    compute, calls = counted()
    rc.cached_ranges(compute)
    (path,) = cache.glob("calibrated-ranges-*.json")
    if content is None:
        doc = json.loads(path.read_text())
        doc["value"]["cumulative_gbq"] = [60.5, 26.3]  # lower > upper
        content = json.dumps(doc)
    path.write_text(content)
    assert rc.cached_ranges(compute) == _calibrated_ranges()
    assert len(calls) == 2
    assert rc.cached_ranges(compute) == _calibrated_ranges()
    assert len(calls) == 2  # rewritten: read back the third time


def test_the_os_link_share_is_cached_exactly(cache):
    from netbayes.calibration import pfs_share_of_os, survival_calibration
    from netbayes.models.survival import BETA_X_PFS_POSTERIOR, _os_beta_x_prior, os_beta_x_prior

    want = pfs_share_of_os(survival_calibration("os"))
    assert want == pytest.approx(14.6 / 26.2, abs=1e-12)  # Table 5, all tumours, R-PRRT
    calls = []
    for _ in range(2):
        got = rc.cached_share(lambda: calls.append(1) or want)
        assert got == want and isinstance(got, float)
    assert len(calls) == 1
    (path,) = cache.glob("rprrt-pfs-share-of-os-*.json")
    path.write_text(json.dumps({"key": rc._key(), "value": 1.5}))  # not a share: recomputed
    assert rc.cached_share(lambda: calls.append(1) or want) == want and len(calls) == 2
    # the default link prior (through the cache) is the one computed from the tables
    link = os_beta_x_prior()
    assert link == _os_beta_x_prior(BETA_X_PFS_POSTERIOR, survival_calibration("os"))
    assert (link.mu, link.sigma) == (0.452, 0.153)


def test_an_unwritable_folder_means_no_cache(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(rc.ENV_VAR, str(blocker / "cache"))  # a folder under a file
    compute, calls = counted()
    assert rc.cached_ranges(compute) == _calibrated_ranges()
    assert rc.cached_ranges(compute) == _calibrated_ranges()
    assert len(calls) == 2


def test_the_key_follows_the_data(tmp_path, monkeypatch):
    from netbayes import data

    copy = tmp_path / "data"
    shutil.copytree(data.data_dir(), copy)
    monkeypatch.setattr(data, "data_dir", lambda: copy)
    rc._key.cache_clear()  # the key is computed once per process
    before = rc._key()
    f = copy / "rotterdam_doses.csv"
    f.write_bytes(f.read_bytes() + b"\n")
    rc._key.cache_clear()
    assert rc._key() != before
    monkeypatch.undo()
    rc._key.cache_clear()


def test_cache_folder_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv(rc.ENV_VAR, str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "b"))
    assert rc.cache_dir() == tmp_path / "a"
    monkeypatch.delenv(rc.ENV_VAR)
    assert rc.cache_dir() == tmp_path / "b" / "netbayes"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert rc.cache_dir() == Path(str(tmp_path / "home")) / ".cache" / "netbayes"


MAIN = [
    "predict", "--tumour-type", "midgut", "--line", "R-PRRT", "--prior-pfs", "30",
    "--prior-gbq", "29.9", "--planned-gbq", "14.9",
]  # fmt: skip
PROBE = """
import contextlib, io, sys
from netbayes.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    main(sys.argv[1:])
loaded = sorted(m for m in ("pandas", "scipy", "xarray", "pymc", "pytensor") if m in sys.modules)
print(repr(loaded))
print(out.getvalue(), end="")
"""


@pytest.mark.parametrize("extra", [[], ["--endpoint", "os"]], ids=["pfs", "os"])
def test_netbayes_predict_loads_neither_pandas_nor_scipy(tmp_path, extra):
    """The README's command (and its OS twin): the first run on a machine computes the cached
    values (pandas), every later one reads them, and prints the same."""
    env = {**os.environ, rc.ENV_VAR: str(tmp_path / "cache")}
    cmd = [sys.executable, "-c", PROBE, *MAIN, *extra]
    runs = [
        subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=True)
        for _ in range(2)
    ]
    first, second = (r.stdout.split("\n", 1) for r in runs)
    assert first[0] == "['pandas']"  # the tables read once, for the cache
    assert second[0] == "[]"
    assert second[1] == first[1]
    assert ("Median OS, months" if extra else "Median PFS, months") in second[1]


def test_lazy_module_imports_on_first_use(monkeypatch):
    from netbayes._lazy import LazyModule, loaded

    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    lazy = LazyModule("colorsys")
    assert "not imported yet" in repr(lazy)
    assert loaded("colorsys") is None
    assert lazy.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert loaded("colorsys") is sys.modules["colorsys"]
    assert "(imported)" in repr(lazy)
    with pytest.raises(AttributeError):
        lazy.no_such_function  # noqa: B018


def test_prediction_records_and_frames_agree():
    """A Prediction keeps records and makes its data frames on first access: the accessors
    (records) and the frames say the same, and to_dict gives plain Python values."""
    import warnings

    from netbayes.predict import Predictor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = Predictor.load("pfs").patient(
            tumour_type="pancreatic", line="I-PRRT", planned_gbq=29.6, times=[6.0, 12.0]
        )
    s = pred.summary
    med = s[s["quantity"] == "median_pfs"].iloc[0]
    assert pred.median().median == med["median"] and pred.median().upper == med["eti95_upper"]
    for t in pred.event_free_times():
        row = s[(s["quantity"] == "p_pfs_gt") & (s["t_months"] == t)].iloc[0]
        assert pred.p_event_free(t).lower == row["eti95_lower"]
    assert list(pred.cell_lines()) == list(s[s["quantity"] == "p_grade3plus"]["cell_line"])
    assert s["cell_line"].dtype == "string"
    row, rec = pred.patients.iloc[0], pred._input()
    assert set(rec) == set(row.index)
    assert all(rec[k] == row[k] for k in rec if k != "prior_pfs_months")
    assert math.isnan(rec["prior_pfs_months"]) and math.isnan(row["prior_pfs_months"])
    inp = pred.to_dict()["patients"][0]["input"]
    assert inp["prior_pfs_months"] is None  # I-PRRT: no prior PFS
    assert {type(v) for k, v in inp.items() if k != "prior_pfs_months"} <= {str, float}
    share = pred.prior_share
    assert len(share) == len(pred._share_records())
    for r in pred._share_records():
        q, t, c = r["quantity"], r["t_months"], r["cell_line"]
        where = {"t_months": t} if q.endswith("_gt") else {"cell_line": c} if c else {}
        assert pred.prior_share_of(q, **where) == r["share"]
    assert pred.prior_parameters.attrs["prior_source"]["survival"] == "the posterior's model card"


# ----------------------------------------------------------------------------------------------
# the prior share's regressions
# ----------------------------------------------------------------------------------------------
def _flat(seed=0, n=400):
    """A toxicity-like Flat: five columns, two of them prior-dominated."""
    import numpy as np

    from netbayes.predict import share as sh

    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5)) @ rng.normal(size=(5, 5))
    sds = [0.1, 1.0, 0.1, 1.0, 0.1]  # posterior SDs: p1 and p3 are prior-dominated
    elements = [sh.ParameterElement("toxicity", f"p{j}", "Normal(0, 1)", "default", 1.0, sd)
                for j, sd in enumerate(sds)]  # fmt: skip
    draws = {"p": X.copy()}
    return sh.Flat("toxicity", draws, elements, X, [("p", (j,), "identity") for j in range(5)])


def test_share_regressions_are_cached_exactly(cache, monkeypatch):
    """The share's conditional draws read through the cache are the ones computed without it,
    bit for bit; a second call solves nothing; other draws get their own file; a damaged
    file is ignored and rewritten."""
    import numpy as np

    from netbayes.predict import share as sh

    flat = _flat()
    assert flat.prior_dominated() == [1, 3]
    direct = {"*": flat.conditional([1, 3]), "p1": flat.conditional([1]),
              "p3": flat.conditional([3])}  # fmt: skip
    solves = []
    real = sh.Flat.regression
    monkeypatch.setattr(sh.Flat, "regression", lambda self, p: solves.append(p) or real(self, p))
    first = sh.conditionals(flat)
    assert solves == [[1, 3], [1], [3]]
    second = sh.conditionals(flat)
    assert len(solves) == 3  # from the file
    for got in (first, second):
        assert got.keys() == direct.keys()
        for k in direct:
            np.testing.assert_array_equal(got[k]["p"], direct[k]["p"])
    [path] = cache.glob("share-regressions-*.json")
    sh.conditionals(_flat(seed=1))  # other draws: another file
    assert len(list(cache.glob("share-regressions-*.json"))) == 2
    doc = json.loads(path.read_text())
    doc["value"][0] = [[1.0, 2.0]]  # the wrong shape for the "*" regression
    path.write_text(json.dumps(doc))
    again = sh.conditionals(flat)
    assert len(solves) == 9  # the other flat's three, then the first flat's again
    np.testing.assert_array_equal(again["*"]["p"], direct["*"]["p"])
    assert json.loads(path.read_text())["value"][0] != [[1.0, 2.0]]  # rewritten
