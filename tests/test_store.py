"""Posterior store: round trip, checksums, refusals with a fix, shipped posteriors, no pickle.

The IO of users' fits (``fit.save``, ``Predictor.load(path)``, DataTree input, the install-dir
refusal) is in ``test_store_io.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from netbayes import store, vocab
from netbayes.calibration import calibrated_ranges
from netbayes.fitting import FitResult
from netbayes.store import StoreError, load_posterior, save_posterior

ROOT = Path(__file__).resolve().parents[1]
DIMS = {"z1": "tumour_type", "z2": "tumour_type", "z1_os": "tumour_type", "c3": "line"}
COORDS = {"tumour_type": list(vocab.TUMOUR_TYPES), "line": list(vocab.CELL_LINES)}
SETTINGS = dict(sampler="nutpie", draws=100, tune=100, chains=2, seed=7, target_accept=0.95)


def fake_fit(
    draws: dict[str, np.ndarray], chains: int = 2, model_info: dict | None = None
) -> FitResult:
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
    return FitResult(
        tree,
        diag,
        0,
        "nutpie",
        {"compile": 1.0, "sample": 2.0, "total": 3.0},
        settings={k: v for k, v in SETTINGS.items() if k != "sampler"},
        model_info=model_info,
    )


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
    assert re.fullmatch(r"survival-pfs\.[0-9a-f]{12}\.nc", path.name) and path.parent == folder
    assert path.read_bytes()[:8] == b"\x89HDF\r\n\x1a\n"  # NetCDF-4 (HDF5): the DataTree
    sp = load_posterior("survival-pfs", folder)
    assert sp.datatree_path == path
    assert sp.path.read_bytes()[:4] == b"CDF\x02"  # the companion: NetCDF-3, plain data
    assert re.fullmatch(r"survival-pfs\.[0-9a-f]{12}\.draws\.nc", sp.path.name)
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
        "model_config",
        "user_data_sha256",
        "groups",
        "datatree_file",
        "datatree_sha256",
        "draws_file",
        "draws_file_sha256",
        "draws_sha256",
        "card_sha256",
    ):
        assert key in card, key
    assert card["schema_version"] == 2 == store.SCHEMA_VERSION
    assert card["card_sha256"] == store.card_hash(card)
    assert card["groups"] == ["posterior", "sample_stats"]
    assert card["user_data_sha256"] is None and card["model_config"] is None
    assert card["draws_sha256"] == store._draws_hash(sp.arrays)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [path.name, sp.path.name, "survival-pfs.json"]
    )  # no temporary file left
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
    assert p2.name == path.name and p2.read_bytes() == path.read_bytes()  # DataTree
    c1 = json.loads((folder / "survival-pfs.json").read_text())
    c2 = json.loads((other / "survival-pfs.json").read_text())
    assert c1["draws_file"] == c2["draws_file"]
    assert (folder / c1["draws_file"]).read_bytes() == (other / c2["draws_file"]).read_bytes()
    assert c1["draws_sha256"] == c2["draws_sha256"]
    d3 = dict(d, beta_x=d["beta_x"] + 1e-12)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        save_posterior(
            fake_fit(d3), "survival-pfs", variables=list(d), priors={},
            sampler_settings=SETTINGS, folder=other,
        )  # fmt: skip
    p3 = save_posterior(
        fake_fit(d3), "survival-pfs", variables=list(d), priors={}, sampler_settings=SETTINGS,
        folder=other, overwrite=True,
    )  # fmt: skip
    c3 = json.loads((other / "survival-pfs.json").read_text())
    assert c3["draws_sha256"] != c1["draws_sha256"]
    # the replaced entry's data files are gone; only the new ones remain
    assert sorted(f.name for f in other.iterdir()) == sorted(
        [p3.name, c3["draws_file"], "survival-pfs.json"]
    )
    np.testing.assert_array_equal(
        load_posterior("survival-pfs", other).draws("beta_x"), d3["beta_x"]
    )


@pytest.mark.parametrize("offset", [100, -8, 2000])
@pytest.mark.parametrize("which", ["draws_file", "datatree_file"])
def test_corrupted_file_is_refused(saved, offset, which):
    folder, _, _ = saved
    path = folder / json.loads((folder / "survival-pfs.json").read_text())[which]
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match=r"corrupt.*netbayes fit --model survival-pfs"):
        load_posterior("survival-pfs", folder)


def _edit_card(folder: Path, resign: bool = True, **changes) -> None:
    """Edit the card; re-sign it (``card_sha256``) unless ``resign`` is False, so that the
    checks after the card checksum are exercised too."""
    p = folder / "survival-pfs.json"
    card = json.loads(p.read_text())
    card.update(changes)
    if resign:
        card["card_sha256"] = store.card_hash(card)
    p.write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(model_type="survival-os"), "for model type 'survival-os', not 'survival-pfs'"),
        (dict(schema_version=0), "schema version 0.*reads version 2"),
        (dict(schema_version="2"), "schema version '2'"),
        (dict(schema_version=True), "schema version True"),  # True == 1, but not a version
        (dict(schema_version=2.0), "schema version 2.0"),
        (dict(schema_version=3), "schema version 3.*reads version 2"),
        (dict(variables=["alpha1"]), r"variables=\['alpha1'\] is not allowed"),
        (dict(draws_file="../survival-pfs.nc"), "draws_file='../survival-pfs.nc' is not allowed"),
        (dict(datatree_file="/etc/passwd"), "datatree_file='/etc/passwd' is not allowed"),
        (dict(draws_file_sha256="0" * 64), "corrupt or was modified.*draws_file_sha256"),
        (dict(datatree_sha256="0" * 64), "corrupt or was modified.*datatree_sha256"),
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
    shutil.copy(folder / "survival-pfs.json", folder / "survival-os.json")  # names its files
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
    """No module imports pickle or a relative of it, nothing loads with ``allow_pickle=True``,
    and the word appears only where Dask sends simulation tasks (not models) to its workers."""
    import ast

    files = sorted((ROOT / "src" / "netbayes").rglob("*.py"))
    assert len(files) > 20
    banned = {"pickle", "cPickle", "cloudpickle", "dill", "joblib", "shelve", "marshal"}
    for f in files:
        src = f.read_text()
        for node in ast.walk(ast.parse(src)):
            if isinstance(node, ast.Import):
                roots = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not roots & banned, (f, roots & banned)
        assert "allow_pickle=True" not in src, f
        if f.name not in ("runner.py", "loso.py"):  # Dask's task transport, documented there
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
        hashes.append(json.loads((p.parent / "toxicity.json").read_text())["draws_sha256"])
    assert hashes[0] == hashes[1]
    assert hashes[0] != hashes[2]


def test_reader_agrees_with_scipy(saved):
    """The store's own NetCDF-3 reader returns what SciPy's reader returns."""
    import io

    from scipy.io import netcdf_file

    folder, _, _ = saved
    sp = load_posterior("survival-pfs", folder)
    with netcdf_file(io.BytesIO(sp.path.read_bytes()), "r", mmap=False) as f:
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

    folder, _, _ = saved
    path = load_posterior("survival-pfs", folder).path
    raw = bytearray(path.read_bytes())
    if what == "dimensions":  # magic, numrecs, NC_DIMENSION tag, count
        i = 12
    elif what == "variables":
        i = raw.index((0x0B).to_bytes(4, "big")) + 4
    else:  # the first dimension name's length
        i = 16
    raw[i : i + 4] = count.to_bytes(4, "big")
    path.write_bytes(bytes(raw))
    _edit_card(folder, draws_file_sha256=hashlib.sha256(raw).hexdigest())
    with pytest.raises(StoreError, match="could not be read as NetCDF"):
        load_posterior("survival-pfs", folder)


def test_unreadable_file_with_matching_checksum_is_refused(saved):
    import hashlib

    folder, _, _ = saved
    path = load_posterior("survival-pfs", folder).path
    junk = b"CDF\x02" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x0a\x00\x00\x00\x05garbage"
    path.write_bytes(junk)
    _edit_card(folder, draws_file_sha256=hashlib.sha256(junk).hexdigest())
    with pytest.raises(StoreError, match="could not be read as NetCDF"):
        load_posterior("survival-pfs", folder)


# ----------------------------------------------------------------------------------------------
# schema 2: the DataTree file, the card checksum, schema 1 refused and converted, atomic writes
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes",
    [
        dict(
            calibration={**json.loads(json.dumps(calibrated_ranges())), "cumulative_gbq": [0, 99]}
        ),
        dict(diagnostics={"max_r_hat": 1.0, "converged": True}),
        dict(priors={"alpha2": [3.0, 1.0]}),
        dict(created="2020-01-01T00:00:00+00:00"),
        dict(user_data_sha256="0" * 64),
        dict(card_sha256=None),
        dict(extra="a field a hand added"),
    ],
)
def test_card_edited_by_hand_is_refused(saved, changes):
    """Any edit of the card's content (not re-signed) is refused before it is used."""
    folder, _, _ = saved
    _edit_card(folder, resign=False, **changes)
    with pytest.raises(StoreError, match=r"was modified or is corrupt: card_sha256=") as e:
        load_posterior("survival-pfs", folder)
    assert "run `netbayes fit --model survival-pfs" in str(e.value)


def test_card_hash_is_over_the_canonical_json(saved):
    folder, _, _ = saved
    p = folder / "survival-pfs.json"
    card = json.loads(p.read_text())
    p.write_text(json.dumps(card, indent=7, sort_keys=True))  # layout does not count
    assert load_posterior("survival-pfs", folder).card == card
    p.write_text(json.dumps(card).replace('"converged": true', '"converged": NaN'))
    with pytest.raises(StoreError, match="not canonical JSON"):
        load_posterior("survival-pfs", folder)


def test_schema_1_is_refused_saying_convert_or_refit(saved):
    folder, _, _ = saved
    _edit_card(folder, schema_version=1)
    with pytest.raises(StoreError) as e:
        load_posterior("survival-pfs", folder)
    msg = str(e.value)
    assert "schema version 1" in msg and "reads version 2" in msg
    assert f"python -m netbayes.store convert {folder}" in msg
    assert "or refit" in msg and "netbayes fit --model survival-pfs" in msg


def _write_schema_1(folder: Path, d: dict[str, np.ndarray], model_type: str) -> dict:
    """A schema-1 entry as netbayes 0.1 (05c8412) wrote it: ``<type>.nc`` (NetCDF-3) + card."""
    fit = fake_fit(d)
    ds = fit.posterior["posterior"].dataset.astype("float64")
    ds = ds.drop_vars([c for c in ds.coords if c not in ds.dims])
    ds = ds.assign_coords(
        chain=np.arange(ds.sizes["chain"], dtype="int32"),
        draw=np.arange(ds.sizes["draw"], dtype="int32"),
    )
    ds.attrs = {"model_type": model_type, "schema_version": 1}
    raw = bytes(ds.to_netcdf(engine="scipy"))
    arrays = {v: ds[v].to_numpy() for v in ds.data_vars}
    card = {
        "schema_version": 1,
        "model_type": model_type,
        "package_version": "0.1.0",
        "created": "2026-11-21T23:04:22+00:00",
        "priors": {"sigma2": 0.5},
        "data_sha256": store.data_hash(),
        "sampler": SETTINGS,
        "diagnostics": {"max_r_hat": float("nan"), "min_ess_bulk": 900.0, "converged": True},
        "variables": {v: list(ds[v].dims) for v in ds.data_vars},
        "calibration": json.loads(json.dumps(calibrated_ranges())),
        "netcdf_file": f"{model_type}.nc",
        "netcdf_sha256": hashlib.sha256(raw).hexdigest(),
        "draws_sha256": store._draws_hash(arrays),
    }
    (folder / f"{model_type}.nc").write_bytes(raw)
    # schema 1 wrote NaN into its JSON: the conversion must not carry it over
    (folder / f"{model_type}.json").write_text(json.dumps(card, indent=2))
    return card


def test_convert_v1_keeps_the_draws(tmp_path):
    from netbayes.fitting import ConvergenceWarning
    from netbayes.predict import Predictor

    d = _draws(3, 40)
    old = _write_schema_1(tmp_path, d, "survival-pfs")
    with pytest.raises(StoreError, match="schema version 1"):
        load_posterior("survival-pfs", tmp_path)
    (path,) = store.convert_v1(tmp_path)
    assert not (tmp_path / "survival-pfs.nc").exists()  # the schema-1 file is replaced
    sp = load_posterior("survival-pfs", tmp_path)
    assert sp.datatree_path == path
    for k, v in d.items():
        assert sp.draws(k).tobytes() == np.asarray(v, "<f8").tobytes(), k
    card = sp.card
    assert card["draws_sha256"] == old["draws_sha256"] == store._draws_hash(sp.arrays)
    assert card["created"] == old["created"] and card["sampler"] == old["sampler"]
    assert card["calibration"] == old["calibration"] and card["priors"] == old["priors"]
    assert card["converted"]["from_schema_version"] == 1
    assert card["converted"]["netcdf_sha256"] == old["netcdf_sha256"]
    assert card["diagnostics"]["max_r_hat"] is None
    assert card["diagnostics"]["not_finite"] == ["max_r_hat"]
    assert "NaN" not in (tmp_path / "survival-pfs.json").read_text()
    assert card["user_data_sha256"] is None and card["model_config"]["endpoint"] == "pfs"
    assert card["groups"] == ["posterior"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        Predictor.load("pfs", tmp_path, toxicity=False)
    with pytest.raises(StoreError, match="convert_v1 expects a schema-1"):
        store.convert_v1(tmp_path)  # already converted


def test_convert_v1_refuses_a_modified_file(tmp_path):
    _write_schema_1(tmp_path, _draws(3, 20), "survival-pfs")
    raw = bytearray((tmp_path / "survival-pfs.nc").read_bytes())
    raw[-3] ^= 1
    (tmp_path / "survival-pfs.nc").write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="corrupt or was modified"):
        store.convert_v1(tmp_path)
    with pytest.raises(StoreError, match="no model card"):
        store.convert_v1(tmp_path / "nothing")


@pytest.mark.parametrize("model_type", store.MODEL_TYPES)
def test_shipped_posteriors_carry_the_study_level(model_type):
    """The shipped posteriors are fits of the default models (study level included): their
    draws hash, recomputed from both files, is the card's; the study effects are labelled by
    study; the fit met the convergence targets; the card's configuration is the default
    model's, with no user data."""
    from netbayes.models.registry import default_model

    sp = load_posterior(model_type, ROOT / "models")
    assert store._draws_hash(sp.arrays) == sp.card["draws_sha256"]
    tree = sp.open_datatree()
    post = tree["posterior"].to_dataset()
    assert (
        store._draws_hash({v: post[v].to_numpy() for v in post.data_vars})
        == (sp.card["draws_sha256"])
    )
    assert sp.card["user_data_sha256"] is None
    var = "v_study" if model_type == "toxicity" else "u_study"
    studies = ["rotterdam2019"] + (["re188pilot"] if model_type != "survival-pfs" else [])
    assert [str(x) for x in post[var]["study"].to_numpy()] == studies
    assert sp.coords["study"] == studies
    diag = sp.card["diagnostics"]
    assert diag["divergences"] == 0 and diag["converged"] is True
    assert diag["max_r_hat"] <= 1.01 and min(diag["min_ess_bulk"], diag["min_ess_tail"]) >= 400
    assert "sample_stats" in tree.children
    assert sp.card["model_config"] == default_model(model_type).config()
    assert sp.card["model_config"]["priors"] == sp.card["priors"]


def test_datatree_opens_with_xarray_and_arviz(saved):
    import arviz as az

    folder, path, d = saved
    sp = load_posterior("survival-pfs", folder)
    with xr.open_datatree(path) as tree:
        assert set(tree.children) == {"posterior", "sample_stats"}
        assert tree.attrs["model_type"] == "survival-pfs"
        assert tree.attrs["schema_version"] == 2
        assert list(tree["posterior"]["z1"].dims) == ["chain", "draw", "tumour_type"]
        assert list(tree["posterior"]["tumour_type"].values) == list(vocab.TUMOUR_TYPES)
        assert tree["sample_stats"]["diverging"].dtype == bool
        for k in d:
            np.testing.assert_array_equal(tree["posterior"][k].to_numpy(), sp.arrays[k])
    idata = az.from_netcdf(path)
    try:
        assert isinstance(idata, xr.DataTree)
        assert "posterior" in idata.children and "sample_stats" in idata.children
        np.testing.assert_array_equal(idata["posterior"]["k2"].to_numpy(), sp.arrays["k2"])
        summary = az.summary(idata, var_names=["k2"])
        assert "k2" in summary.index
    finally:
        idata.close()


def test_optional_groups_are_stored(tmp_path):
    """log_likelihood, observed_data and constant_data of a fit are kept; a group of
    unwritable (object) values is dropped rather than failing the save."""
    d = _draws(0, 40)
    fit = fake_fit(d)
    tree = fit.posterior.copy()
    ll = xr.Dataset(
        {"y": (["chain", "draw", "row"], np.random.default_rng(0).normal(size=(2, 20, 3)))}
    )
    tree["log_likelihood"] = xr.DataTree(ll)
    tree["observed_data"] = xr.DataTree(xr.Dataset({"y": (["row"], [1.0, 2.0, 3.0])}))
    tree["constant_data"] = xr.DataTree(xr.Dataset({"odd": (["row"], np.array([{}, {}, {}]))}))
    fit.posterior = tree
    save_posterior(
        fit, "survival-pfs", variables=list(d), priors={}, sampler_settings=SETTINGS,
        folder=tmp_path,
    )  # fmt: skip
    sp = load_posterior("survival-pfs", tmp_path)
    assert sp.card["groups"] == ["posterior", "sample_stats", "log_likelihood", "observed_data"]
    back = sp.open_datatree()
    np.testing.assert_array_equal(back["log_likelihood"]["y"].to_numpy(), ll["y"].to_numpy())


def test_non_finite_diagnostics_are_null_and_said(tmp_path):
    d = _draws(0, 40)
    fit = fake_fit(d)
    fit.diagnostics.loc[:, "r_hat"] = np.nan
    fit.diagnostics.loc["a", "ess_tail"] = np.inf
    save_posterior(
        fit, "survival-pfs", variables=list(d), priors={"x": float("inf")},
        sampler_settings=SETTINGS, folder=tmp_path,
    )  # fmt: skip
    text = (tmp_path / "survival-pfs.json").read_text()
    assert "NaN" not in text and "Infinity" not in text
    diag = load_posterior("survival-pfs", tmp_path).card["diagnostics"]
    assert diag["max_r_hat"] is None and diag["min_ess_tail"] == 1200.0
    assert diag["not_finite"] == ["max_r_hat"]


def test_interrupted_save_leaves_the_previous_posterior_loadable(saved, monkeypatch):
    folder, _, d = saved
    before = load_posterior("survival-pfs", folder)
    real = store._write_atomic

    def crash_on_card(path, data):
        if path.suffix == ".json":
            raise KeyboardInterrupt("power cut")
        real(path, data)

    monkeypatch.setattr(store, "_write_atomic", crash_on_card)
    with pytest.raises(KeyboardInterrupt):
        save_posterior(
            fake_fit(dict(d, k2=d["k2"] + 1)), "survival-pfs", variables=list(d), priors={},
            sampler_settings=SETTINGS, folder=folder, overwrite=True,
        )  # fmt: skip
    after = load_posterior("survival-pfs", folder)  # the old card and its files
    assert after.card == before.card
    np.testing.assert_array_equal(after.arrays["k2"], before.arrays["k2"])
    assert not [f for f in folder.iterdir() if f.name.endswith(".tmp")]
