"""Saving and loading any fit: ``fit.save(folder)``, ``Predictor.load(folder)``, DataTree input,
the model description a fit carries, convergence warnings, never writing into the package."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from test_predict import STD_R, fake_survival, fake_toxicity
from test_store import fake_fit

from netbayes import store
from netbayes.cli import main
from netbayes.fitting import ConvergenceWarning
from netbayes.predict import Predictor
from netbayes.store import StoreError, load_posterior

ROOT = Path(__file__).resolve().parents[1]


def _info(model_type: str, draws: dict, user: str | None = "ab" * 32) -> dict:
    return {
        "model_type": model_type,
        "config": {"endpoint": model_type.split("-")[-1], "n_grid": 8},
        "priors": {"k2": [1.5, 0.5]},
        "variables": list(draws),
        "user_data_sha256": user,
    }


def _user_fit(model_type: str = "survival-pfs", seed: int = 0, converged: bool = True):
    if model_type == "toxicity":
        d = fake_toxicity(seed, 40)
    else:
        d = fake_survival(seed, 40, os=model_type == "survival-os")
    fit = fake_fit(d, model_info=_info(model_type, d))
    if not converged:
        fit.problems = ["R-hat > 1.01 for 2 parameters (worst k2: 1.080): run more tuning"]
    return fit, d


def _patients() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time_months": [12.0, 20.0, 7.5, 30.0, 16.0, 9.0],
            "event": [1, 0, 1, 1, 0, 1],
            "line": ["R-PRRT", "R-PRRT", "I-PRRT", "I-PRRT", "R-PRRT", "R-PRRT"],
            "tumour_type": ["midgut", "pancreatic", "bronchial", "midgut", "midgut", "hindgut"],
            "prior_pfs_months": [30.0, 45.0, np.nan, np.nan, 26.0, 22.0],
            "cumulative_gbq": [44.4, 44.4, 29.6, 29.6, 44.0, 43.0],
        }
    )


# ----------------------------------------------------------------------------------------------
# fit.save / Predictor.load(folder)
# ----------------------------------------------------------------------------------------------
def test_user_fit_round_trip(tmp_path):
    fit, d = _user_fit()
    path = fit.save(tmp_path)
    assert path.parent == tmp_path and path.name.startswith("survival-pfs.")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converged: no warning
        pred = Predictor.load(tmp_path)  # the folder holds a survival fit only
    assert pred.toxicity is None and pred.endpoint == "pfs"
    card = pred.cards["survival"]
    assert card["user_data_sha256"] == "ab" * 32  # never mistaken for the shipped default
    assert card["model_config"] == {"endpoint": "pfs", "n_grid": 8}
    assert card["priors"] == {"k2": [1.5, 0.5]}
    assert card["data_sha256"] == store.data_hash()
    assert card["diagnostics"]["converged"] is True
    assert card["sampler"]["sampler"] == "nutpie" and card["sampler"]["draws"] == 100
    for k in pred.survival:
        np.testing.assert_array_equal(pred.survival[k], d[k])
    p = pred.patient(**STD_R)
    direct = Predictor(fit).patient(**STD_R)
    pd.testing.assert_frame_equal(p.summary, direct.summary)


def test_user_folder_with_survival_and_toxicity(tmp_path):
    s_fit, _ = _user_fit("survival-os")
    t_fit, t = _user_fit("toxicity", seed=3)
    s_fit.save(tmp_path)
    t_fit.save(tmp_path)
    pred = Predictor.load(tmp_path)
    assert pred.endpoint == "os" and pred.toxicity is not None
    np.testing.assert_array_equal(pred.toxicity["theta"], t["theta"])
    assert pred.cards["toxicity"]["user_data_sha256"] == "ab" * 32
    assert "p_grade3plus" in pred.patient(**STD_R).summary["quantity"].str.cat()
    assert Predictor.load("os", tmp_path).endpoint == "os"  # the explicit form still works
    with pytest.raises(StoreError, match=r"survival-pfs\.json does not exist"):
        Predictor.load("pfs", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no survival posterior in"):
        Predictor.load(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"endpoint=3 is not allowed; expected 'pfs' or 'os'"):
        Predictor.load(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"endpoint='PFS ' is not allowed; expected 'pfs' or"):
        Predictor.load("PFS ")  # neither an endpoint nor a folder
    with pytest.raises(ValueError, match=r"endpoint='' is not allowed"):
        Predictor.load("")  # not the current folder
    with pytest.raises(ValueError, match=r"endpoint=.*nowhere'\) is not allowed.*existing models"):
        Predictor.load(tmp_path / "nowhere")


def test_save_does_not_overwrite_silently(tmp_path):
    fit, _ = _user_fit()
    fit.save(tmp_path)
    card = (tmp_path / "survival-pfs.json").read_text()
    other, _ = _user_fit(seed=9)
    with pytest.raises(FileExistsError, match=r"survival-pfs.json exists.*overwrite=True"):
        other.save(tmp_path)
    assert (tmp_path / "survival-pfs.json").read_text() == card
    other.save(tmp_path, overwrite=True)
    assert (tmp_path / "survival-pfs.json").read_text() != card
    assert len(list(tmp_path.iterdir())) == 3  # the replaced data files are removed


def test_save_refuses_a_file_and_a_fit_without_its_model(tmp_path):
    fit, d = _user_fit()
    f = tmp_path / "fit.nc"
    f.write_text("")
    with pytest.raises(ValueError, match=r"folder=.*fit.nc' is not allowed: it is a file"):
        fit.save(f)
    bare = fake_fit(d)  # e.g. netbayes.fitting.sample of any PyMC model
    with pytest.raises(ValueError, match=r"fit.model_info=None is not allowed.*save_posterior"):
        bare.save(tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_not_converged_fit_is_saved_and_warns(tmp_path):
    fit, _ = _user_fit(converged=False)
    fit.save(tmp_path)
    card = json.loads((tmp_path / "survival-pfs.json").read_text())
    assert card["diagnostics"]["converged"] is False
    assert "R-hat" in card["diagnostics"]["problems"][0]
    with pytest.warns(ConvergenceWarning, match=r"did not converge.*worst k2"):
        pred = Predictor.load(tmp_path)
    with pytest.warns(ConvergenceWarning, match="survival-pfs posterior"):
        Predictor(fit)
    assert np.isfinite(pred.patient(**STD_R).summary["median"]).all()


# ----------------------------------------------------------------------------------------------
# DataTree input
# ----------------------------------------------------------------------------------------------
def test_predictor_accepts_a_datatree(tmp_path):
    fit, d = _user_fit()
    tox, t = _user_fit("toxicity", seed=4)
    ref = Predictor(d, t).patient(**STD_R).summary
    pd.testing.assert_frame_equal(
        Predictor(fit.posterior, tox.posterior).patient(**STD_R).summary, ref
    )
    path = fit.save(tmp_path)
    import arviz as az

    tree = az.from_netcdf(path)
    try:
        pd.testing.assert_frame_equal(Predictor(tree, t).patient(**STD_R).summary, ref)
    finally:
        tree.close()
    # the posterior group alone, as a Dataset with chain and draw dimensions
    ds = fit.posterior["posterior"].to_dataset()
    pd.testing.assert_frame_equal(Predictor(ds, t).patient(**STD_R).summary, ref)


def test_datatree_without_posterior_is_refused_saying_why():
    tree = xr.DataTree.from_dict(
        {"prior": xr.Dataset({"k2": (["chain", "draw"], np.ones((1, 3)))})}
    )
    with pytest.raises(ValueError, match=r"DataTree has no 'posterior' group \(groups: prior\)"):
        Predictor(tree)
    with pytest.raises(TypeError, match="expected a StoredPosterior"):
        Predictor(42)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------
# the shipped defaults; never writing into the installed package
# ----------------------------------------------------------------------------------------------
def test_default_load_is_unchanged():
    pred = Predictor.load()
    assert pred.n_draws == 4000 and pred.toxicity is not None
    assert pred.cards["survival"]["user_data_sha256"] is None
    assert pred.cards["toxicity"]["user_data_sha256"] is None
    assert pred.cards["survival"]["model_config"]["include_published"] is True


@pytest.fixture
def installed(tmp_path, monkeypatch):
    """Pretend netbayes is installed from a wheel: its models folder is netbayes/_models."""
    pkg = tmp_path / "site-packages" / "netbayes" / "_models"
    pkg.mkdir(parents=True)
    monkeypatch.setattr(store, "_package_models_dir", lambda: pkg)
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    assert store.models_dir() == pkg
    return pkg


def test_fit_refuses_the_installed_package_folder(installed, monkeypatch, capsys, tmp_path):
    def no_fit(*a, **k):  # pragma: no cover - must not be reached
        raise AssertionError("sampled before refusing")

    monkeypatch.setattr(store, "fit_default", no_fit)
    assert main(["fit", "--model", "toxicity", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netbayes: error: ") and "--out" in err and "_models" in err
    assert list(installed.iterdir()) == []
    # $NETBAYES_MODELS_DIR (and --out) stay allowed
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "mine"))
    calls = []
    monkeypatch.setattr(store, "fit_default", lambda mt, **kw: calls.append(kw) or no_fit())
    with pytest.raises(AssertionError):
        main(["fit", "--model", "toxicity", "--no-progress"])
    assert Path(calls[0]["folder"]) == tmp_path / "mine"


def test_store_never_writes_into_the_installed_package(installed):
    fit, d = _user_fit()
    with pytest.raises(ValueError, match=r"installed package's models folder.*netbayes/_models"):
        fit.save(installed, overwrite=True)
    with pytest.raises(ValueError, match="installed package's models folder"):
        store.save_posterior(
            fit, "survival-pfs", variables=list(d), priors={}, overwrite=True,
            sampler_settings=dict(fit.settings, sampler="nutpie"),
        )  # fmt: skip
    with pytest.raises(ValueError, match="installed package's models folder"):
        store.fit_default("toxicity")  # refused before sampling
    assert list(installed.iterdir()) == []


# ----------------------------------------------------------------------------------------------
# what a model tells the store (no sampling)
# ----------------------------------------------------------------------------------------------
def test_model_info_of_the_models():
    from netbayes.models.survival import SurvivalModel
    from netbayes.models.toxicity import ToxicityModel

    default = SurvivalModel("os").model_info()
    assert default["model_type"] == "survival-os" and default["user_data_sha256"] is None
    assert default["config"]["summaries"] == {"pfs": "packaged", "os": "packaged"}
    assert {"z1_os", "k2", "kappa_se"} <= set(default["variables"])
    json.dumps(default, allow_nan=False)
    mine = SurvivalModel("pfs", patients=_patients(), include_published=False, n_grid=8)
    info = mine.model_info()
    assert info["model_type"] == "survival-pfs" and len(info["user_data_sha256"]) == 64
    assert info["config"]["include_published"] is False and info["config"]["n_grid"] == 8
    assert info["config"]["user_data_sha256"] == info["user_data_sha256"]
    assert SurvivalModel("pfs", patients=_patients()).user_data_hash() == info["user_data_sha256"]
    other = _patients()
    other.loc[0, "time_months"] = 12.5
    assert SurvivalModel("pfs", patients=other).user_data_hash() != info["user_data_sha256"]
    tox = ToxicityModel().model_info()
    assert tox["model_type"] == "toxicity" and tox["user_data_sha256"] is None
    assert tox["config"]["data"] == "packaged" and tox["config"]["n_nodes"] == 64
    assert tox["config"]["priors"] == tox["priors"]
    json.dumps(tox, allow_nan=False)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::netbayes.fitting.ConvergenceWarning")
def test_real_user_fit_saves_and_predicts(tmp_path):
    """A tiny real fit of the user's own patients: saved, opened by ArviZ, predicted from."""
    import arviz as az

    from netbayes.models.survival import SurvivalModel

    model = SurvivalModel("pfs", patients=_patients(), include_published=False, n_grid=8)
    fit = model.fit(draws=100, tune=100, chains=2, seed=11, progress=False)
    assert fit.model_info == model.model_info()
    path = fit.save(tmp_path)
    tree = az.from_netcdf(path)
    try:
        assert {"posterior", "sample_stats"} <= set(tree.children)
        assert int(tree["sample_stats"]["diverging"].sum()) == fit.n_divergences
        np.testing.assert_array_equal(
            tree["posterior"]["k2"].to_numpy(), fit.posterior["posterior"]["k2"].to_numpy()
        )
    finally:
        tree.close()
    sp = load_posterior("survival-pfs", tmp_path)
    assert sp.card["user_data_sha256"] == model.user_data_hash()
    assert sp.card["diagnostics"]["converged"] == fit.converged
    assert sp.card["model_config"]["include_published"] is False
    assert sp.card["draws_sha256"] == store._draws_hash(
        {v: fit.posterior["posterior"][v].to_numpy() for v in sp.arrays}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        p = Predictor.load(tmp_path).patient(**STD_R)
        q = Predictor(fit).patient(**STD_R)
    pd.testing.assert_frame_equal(p.summary, q.summary)


def test_prediction_reads_only_the_checked_draws_file(tmp_path):
    """Predictor.load checks the draws file's checksum and the DataTree file's presence; the
    DataTree's checksum is checked where it is read (load_posterior, open_datatree)."""
    fit, _ = _user_fit()
    fit.save(tmp_path)
    sp = load_posterior("survival-pfs", tmp_path)
    raw = bytearray(sp.datatree_path.read_bytes())
    raw[-5] ^= 0xFF
    sp.datatree_path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="datatree_sha256"):
        sp.open_datatree()
    with pytest.raises(StoreError, match="corrupt or was modified"):
        load_posterior("survival-pfs", tmp_path)
    assert Predictor.load(tmp_path).n_draws == 40
    good = sp.path.read_bytes()
    raw = bytearray(good)
    raw[-5] ^= 0xFF
    sp.path.write_bytes(bytes(raw))
    with pytest.raises(StoreError, match="draws_file_sha256"):
        Predictor.load(tmp_path)
    sp.path.write_bytes(good)
    sp.datatree_path.unlink()
    with pytest.raises(StoreError, match=r"\.nc does not exist"):
        Predictor.load(tmp_path)
