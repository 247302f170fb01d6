"""Posterior store: round trip, checksums, refusals with a fix, shipped posteriors, no pickle."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from netbayes import store, vocab
from netbayes.fitting import FitResult
from netbayes.store import StoreError, load_posterior, save_posterior

ROOT = Path(__file__).resolve().parents[1]
DIMS = {"z1": "tumour_type", "z2": "tumour_type", "z1_os": "tumour_type", "c3": "line"}
COORDS = {"tumour_type": list(vocab.TUMOUR_TYPES), "line": list(vocab.CELL_LINES)}
SETTINGS = dict(sampler="nutpie", draws=100, tune=100, chains=2, seed=7, target_accept=0.95)


def fake_fit(draws: dict[str, np.ndarray], chains: int = 2) -> FitResult:
    """A FitResult shaped like a sampler's output, from draws with the draw axis first."""
    data = {}
    for k, v in draws.items():
        a = np.asarray(v).reshape((chains, -1, *np.shape(v)[1:]))
        extra = (
            [DIMS[k]]
            if k in DIMS
            else (
                ["line", "gap"] if k == "log_gap" else [f"{k}_dim_{i}" for i in range(a.ndim - 2)]
            )
        )
        data[k] = (["chain", "draw", *extra], a)
    post = xr.Dataset(data, coords={k: v for k, v in COORDS.items()})
    n = next(iter(data.values()))[1].shape[1]
    post = post.assign_coords(chain=np.arange(chains), draw=np.arange(n))
    tree = xr.DataTree.from_dict(
        {
            "posterior": post,
            "sample_stats": xr.Dataset(
                {"diverging": (["chain", "draw"], np.zeros((chains, n), bool))}
            ),
        }
    )
    diag = pd.DataFrame(
        {"r_hat": [1.001, 1.004], "ess_bulk": [900.0, 1500.0], "ess_tail": [800.0, 1200.0]},
        index=pd.Index(["a", "b"], name="parameter"),
    )
    return FitResult(tree, diag, 0, "nutpie", {"compile": 1.0, "sample": 2.0, "total": 3.0})


def _draws(seed: int = 0, n: int = 200) -> dict[str, np.ndarray]:
    from test_predict import fake_survival

    return fake_survival(seed, n)


@pytest.fixture
def saved(tmp_path):
    d = _draws()
    fit = fake_fit(d)
    path = save_posterior(
        fit,
        "survival-pfs",
        variables=list(d),
        priors={"alpha2": (2.9, 1.0), "sigma2": 0.5},
        sampler_settings=SETTINGS,
        folder=tmp_path,
    )
    return tmp_path, path, d


def test_round_trip(saved):
    folder, path, d = saved
    assert path == folder / "survival-pfs.nc"
    assert path.read_bytes()[:4] == b"CDF\x02"  # NetCDF-3, 64-bit offset: plain data
    sp = load_posterior("survival-pfs", folder)
    assert set(sp.arrays) == set(d)
    for k, v in d.items():
        np.testing.assert_array_equal(sp.draws(k), v)
    assert sp.dims["z2"] == ("chain", "draw", "tumour_type")
    assert sp.coords["tumour_type"] == list(vocab.TUMOUR_TYPES)
    assert sp.n_draws == 200
    ds = sp.posterior
    assert list(ds["z1"].tumour_type.values) == list(vocab.TUMOUR_TYPES)
    card = sp.card
    for key in (
        "schema_version",
        "model_type",
        "package_version",
        "created",
        "priors",
        "data_sha256",
        "sampler",
        "diagnostics",
        "netcdf_sha256",
        "draws_sha256",
    ):
        assert key in card, key
    assert card["priors"] == {"alpha2": [2.9, 1.0], "sigma2": 0.5}
    assert card["sampler"] == SETTINGS
    assert card["diagnostics"]["max_r_hat"] == 1.004
    assert card["diagnostics"]["min_ess_bulk"] == 900.0
    assert card["diagnostics"]["divergences"] == 0
    assert card["data_sha256"] == store.data_hash()
    with pytest.raises(KeyError, match="not stored"):
        sp.draws("nope")


def test_same_draws_same_files(saved, tmp_path_factory):
    folder, path, d = saved
    other = tmp_path_factory.mktemp("again")
    p2 = save_posterior(
        fake_fit(d), "survival-pfs", variables=list(d), priors={}, sampler_settings=SETTINGS,
        folder=other,
    )  # fmt: skip
    assert p2.read_bytes() == path.read_bytes()
    c1 = json.loads((folder / "survival-pfs.json").read_text())
    c2 = json.loads((other / "survival-pfs.json").read_text())
    assert c1["draws_sha256"] == c2["draws_sha256"]
    d3 = dict(d, beta_x=d["beta_x"] + 1e-12)
    p3 = save_posterior(
        fake_fit(d3), "survival-pfs", variables=list(d), priors={}, sampler_settings=SETTINGS,
        folder=other,
    )  # fmt: skip
    c3 = json.loads(p3.with_suffix(".json").read_text())
    assert c3["draws_sha256"] != c1["draws_sha256"]


@pytest.mark.parametrize("offset", [100, -8, 2000])
def test_corrupted_file_is_refused(saved, offset):
    folder, path, _ = saved
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=r"corrupt.*netbayes fit --model survival-pfs"):
        load_posterior("survival-pfs", folder)


def _edit_card(folder: Path, **changes) -> None:
    p = folder / "survival-pfs.json"
    card = json.loads(p.read_text())
    card.update(changes)
    p.write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(model_type="survival-os"), "for model type 'survival-os', not 'survival-pfs'"),
        (dict(schema_version=0), "schema version 0.*reads version 1"),
        (dict(schema_version="1"), "schema version '1'"),
        (dict(schema_version=True), "schema version True"),  # True == 1, but not a version
        (dict(schema_version=1.0), "schema version 1.0"),
        (dict(variables=["alpha1"]), r"variables=\['alpha1'\] is not allowed"),
        (dict(netcdf_file="../survival-pfs.nc"), "netcdf_file='../survival-pfs.nc' is not allowed"),
        (dict(calibration={"cohort_mix": {}}), r"calibration=.* is not allowed.*missing"),
        (dict(data_sha256="0" * 64), "fitted on different calibration data"),
        (dict(variables={"alpha1": ["chain", "draw"]}), "its card lists"),
    ],
)
def test_mismatched_card_is_refused(saved, changes, match):
    folder, _, _ = saved
    _edit_card(folder, **changes)
    with pytest.raises(StoreError, match=match) as e:
        load_posterior("survival-pfs", folder)
    assert "run `netbayes fit --model survival-pfs" in str(e.value)


def test_data_check_can_be_skipped(saved):
    folder, _, _ = saved
    _edit_card(folder, data_sha256="0" * 64)
    assert load_posterior("survival-pfs", folder, check_data=False).n_draws == 200


def test_missing_and_unreadable_files(saved, tmp_path_factory):
    folder, _, _ = saved
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(StoreError, match=r"does not exist; run `netbayes fit --model toxicity"):
        load_posterior("toxicity", empty)
    (folder / "survival-pfs.json").write_text("{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        load_posterior("survival-pfs", folder)
    with pytest.raises(ValueError, match="model_type='pfs'"):
        load_posterior("pfs", folder)


def test_copied_model_type_is_refused(saved):
    folder, _, _ = saved
    for ext in ("nc", "json"):
        shutil.copy(folder / f"survival-pfs.{ext}", folder / f"survival-os.{ext}")
    with pytest.raises(StoreError, match="not 'survival-os'"):
        load_posterior("survival-os", folder)


def test_data_hash_follows_the_data(tmp_path, monkeypatch):
    import netbayes.data

    h = store.data_hash()
    assert len(h) == 64 and store.data_hash() == h
    copy = tmp_path / "data"
    shutil.copytree(netbayes.data.data_dir(), copy)
    monkeypatch.setattr(netbayes.data, "data_dir", lambda: copy)
    assert store.data_hash() == h
    f = copy / "rotterdam_selection.csv"
    f.write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))  # line endings do not count
    assert store.data_hash() == h
    f.write_text(f.read_text().replace("18.0", "17.0"))
    assert store.data_hash() != h


def test_save_checks_its_inputs(saved, tmp_path):
    _, _, d = saved
    fit = fake_fit(d)
    with pytest.raises(ValueError, match=r"\['nope'\] are not in the posterior"):
        save_posterior(fit, "toxicity", variables=["nope"], priors={}, sampler_settings=SETTINGS)
    with pytest.raises(ValueError, match="sampler_settings is missing"):
        save_posterior(fit, "toxicity", variables=["k2"], priors={}, sampler_settings={})
    k2 = d["k2"].copy()
    k2[3] = np.inf
    with pytest.raises(ValueError, match="variable 'k2' has non-finite draws"):
        save_posterior(
            fake_fit(d | {"k2": k2}), "toxicity", variables=["k2"], priors={},
            sampler_settings=SETTINGS, folder=tmp_path / "nan",
        )  # fmt: skip
    assert not (tmp_path / "nan").exists()  # nothing written


def test_shipped_calibration_entries_are_well_formed():
    from netbayes.predict import calibrated_ranges

    store._check_calibration(json.loads(json.dumps(calibrated_ranges())))
    for mt in store.MODEL_TYPES:
        store._check_calibration(
            json.loads((ROOT / "models" / f"{mt}.json").read_text())["calibration"]
        )


def test_models_dir_env(monkeypatch, tmp_path):
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path))
    assert store.models_dir() == tmp_path
    monkeypatch.delenv(store.ENV_VAR)
    assert store.models_dir().name in ("models", "_models")


def test_no_pickle_anywhere():
    for f in ("store.py", "predict.py", "cli.py", "formulas/survival.py"):
        src = (ROOT / "src" / "netbayes" / f).read_text()
        assert "pickle" not in src.replace("No pickle", "").replace("never pickle", ""), f


def test_models_ship_in_the_wheel():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    inc = cfg["tool"]["hatch"]["build"]["targets"]["wheel"]["force-include"]
    assert inc["models"] == "netbayes/_models"
    assert "models" in cfg["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]


@pytest.mark.parametrize("model_type", store.MODEL_TYPES)
def test_shipped_posteriors_load_and_match_the_data(model_type):
    """The default posteriors in models/ verify against this checkout's data and formulas."""
    from netbayes.formulas import survival as fs
    from netbayes.formulas import toxicity as ft

    sp = load_posterior(model_type, ROOT / "models")
    card = sp.card
    assert card["sampler"]["chains"] == 4 and card["sampler"]["draws"] == 1000
    assert card["sampler"]["sampler"] == "nutpie"
    needed = ft.PARAMS if model_type == "toxicity" else fs.params_for(model_type.split("-")[1])
    assert set(needed) <= set(sp.arrays)
    assert sp.n_draws == 4000
    # a handful of divergent transitions in 4000 draws is tolerated (the card records them)
    assert card["diagnostics"]["divergences"] <= 10
    assert card["diagnostics"]["max_r_hat"] <= 1.01
    assert card["diagnostics"]["min_ess_bulk"] >= 400
    if model_type.startswith("survival"):
        from netbayes.predict import Predictor, calibrated_ranges

        assert Predictor(sp, endpoint=model_type.split("-")[1]).ranges == calibrated_ranges()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::netbayes.fitting.ConvergenceWarning")
def test_same_seed_same_draws(tmp_path):
    """Two fits with the same seed store identical draws (nutpie, a tiny model)."""
    import pymc as pm

    from netbayes.fitting import sample

    with pm.Model() as m:
        mu = pm.Normal("mu", 0, 1)
        pm.Normal("y", mu, 1, observed=np.array([0.3, -0.1, 0.8]))
    hashes = []
    for i, seed in enumerate((3, 3, 4)):
        fit = sample(m, draws=50, tune=50, chains=2, seed=seed, progress=False)
        p = save_posterior(
            fit, "toxicity", variables=["mu"], priors={}, folder=tmp_path / str(i),
            sampler_settings=dict(SETTINGS, seed=seed),
        )  # fmt: skip
        hashes.append(json.loads(p.with_suffix(".json").read_text())["draws_sha256"])
    assert hashes[0] == hashes[1]
    assert hashes[0] != hashes[2]


def test_reader_agrees_with_scipy(saved):
    """The store's own NetCDF-3 reader returns what SciPy's reader returns."""
    import io

    from scipy.io import netcdf_file

    folder, path, _ = saved
    sp = load_posterior("survival-pfs", folder)
    with netcdf_file(io.BytesIO(path.read_bytes()), "r", mmap=False) as f:
        names = [
            v for v in f.variables if v not in f.dimensions and f.variables[v].typecode() != "c"
        ]
        assert sorted(names) == sorted(sp.arrays)
        for v in names:
            np.testing.assert_array_equal(sp.arrays[v], f.variables[v].data)
            assert sp.dims[v] == f.variables[v].dimensions


@pytest.mark.parametrize(
    ("what", "count"),
    [("dimensions", 5), ("dimensions", 2**32 - 1), ("variables", 2**31), ("name", 2**32 - 1)],
)
def test_header_counts_beyond_the_file_are_refused(saved, what, count):
    """Every header count is bounded by the bytes left: a corrupt one fails at once."""
    import hashlib

    folder, path, _ = saved
    raw = bytearray(path.read_bytes())
    if what == "dimensions":  # magic, numrecs, NC_DIMENSION tag, count
        i = 12
    elif what == "variables":
        i = raw.index((0x0B).to_bytes(4, "big")) + 4
    else:  # the first dimension name's length
        i = 16
    raw[i : i + 4] = count.to_bytes(4, "big")
    path.write_bytes(bytes(raw))
    _edit_card(folder, netcdf_sha256=hashlib.sha256(raw).hexdigest())
    with pytest.raises(StoreError, match="could not be read as NetCDF"):
        load_posterior("survival-pfs", folder)


def test_unreadable_file_with_matching_checksum_is_refused(saved):
    import hashlib

    folder, path, _ = saved
    junk = b"CDF\x02" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x0a\x00\x00\x00\x05garbage"
    path.write_bytes(junk)
    _edit_card(folder, netcdf_sha256=hashlib.sha256(junk).hexdigest())
    with pytest.raises(StoreError, match="could not be read as NetCDF"):
        load_posterior("survival-pfs", folder)
