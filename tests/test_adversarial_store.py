"""Adversarial stores (issue 17): cards and draws written by hand with consistent checksums.

A checksum proves only that nothing changed after signing; anyone can recompute it. Each case
here re-signs what it edits (the data file's SHA-256, ``draws_sha256``, ``card_sha256``), so the
content checks of :mod:`netbayes.store` are what refuses it, with a message naming the field or
variable, the offending value and what is allowed.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_predict import fake_survival, fake_toxicity
from test_store import SETTINGS, fake_fit

from netbayes import spec, store
from netbayes.calibration import calibrated_ranges
from netbayes.cli import main
from netbayes.store import StoreError, load_posterior, save_posterior

ARGS = [
    "predict", "--tumour-type", "midgut", "--line", "R-PRRT", "--prior-pfs", "30",
    "--prior-gbq", "29.9", "--planned-gbq", "14.9",
]  # fmt: skip


def _save(folder: Path, model_type: str = "survival-pfs", d: dict | None = None) -> dict:
    d = d if d is not None else (fake_toxicity(2, 40) if model_type == "toxicity" else
                                 fake_survival(0, 40, os=model_type == "survival-os"))  # fmt: skip
    save_posterior(
        fake_fit(d), model_type, variables=list(d), priors={}, sampler_settings=SETTINGS,
        folder=folder, calibration=calibrated_ranges(),
    )  # fmt: skip
    return d


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("good")
    for mt in store.MODEL_TYPES:
        _save(folder, mt)
    return folder


@pytest.fixture
def folder(good, tmp_path) -> Path:
    out = tmp_path / "models"
    shutil.copytree(good, out)
    return out


def _card(folder: Path, mt: str = "survival-pfs") -> dict:
    return json.loads((folder / f"{mt}.json").read_text())


def _resign(folder: Path, card: dict, mt: str = "survival-pfs") -> None:
    card = dict(card)
    card["card_sha256"] = store.card_hash(card)
    (folder / f"{mt}.json").write_text(json.dumps(card, indent=2))


def _edit_card(folder: Path, mt: str = "survival-pfs", **changes) -> None:
    _resign(folder, _card(folder, mt) | changes, mt)


def _forge_draws(folder: Path, var: str, value: float, index: int = 3,
                 mt: str = "survival-pfs") -> None:  # fmt: skip
    """Write one draw of ``var`` by hand into the fast-read file and re-sign every checksum."""
    card = _card(folder, mt)
    path = folder / card["draws_file"]
    with xr.open_dataset(path, engine="scipy") as ds:
        ds = ds.load()
    a = ds[var].to_numpy().copy()
    a.reshape(-1)[index] = value
    ds[var] = (ds[var].dims, a)
    raw = bytes(ds.to_netcdf(engine="scipy"))
    path.write_bytes(raw)
    arrays = {v: ds[v].to_numpy() for v in ds.data_vars}
    card |= {
        "draws_file_sha256": hashlib.sha256(raw).hexdigest(),
        "draws_sha256": store._draws_hash(arrays),
    }
    _resign(folder, card, mt)


# ----------------------------------------------------------------------------------------------
# draws: support and plausible range, at load (forged files) and at save
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("k2", -0.5, r"variable 'k2' \(a survival shape.*outside its support, -0\.5 .*0 < k2"),
        ("k2", 0.0, r"variable 'k2' .*outside its support, 0\.0 at chain 0, draw 3"),
        ("k1", 1e-300, r"variable 'k1' .*implausible draw, 1e-300 .*plausibly 0\.01 to 100"),
        ("alpha2", 699.0, r"variable 'alpha2' \(a survival log scale.*implausible draw, 699\.0"),
        ("sigma2", -0.1, r"variable 'sigma2' \(a standard deviation\).*0 < sigma2"),
        ("kappa_se", 0.0, r"variable 'kappa_se' .*outside its support"),
        ("z1", 40.0, r"variable 'z1' \(a standard-normal offset\).*implausible draw, 40\.0"),
        ("beta_x", float("inf"), r"variable 'beta_x' has non-finite draws: inf"),
        ("gamma_rr", float("nan"), r"variable 'gamma_rr' has non-finite draws: nan"),
    ],
)
def test_forged_survival_draw_is_refused_naming_it(folder, var, value, words):
    _forge_draws(folder, var, value)
    with pytest.raises(StoreError, match=words) as e:
        load_posterior("survival-pfs", folder)
    assert "allowed:" in str(e.value) and "netbayes fit --model survival-pfs" in str(e.value)


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("theta", -8.0, r"variable 'theta' .*outside its support, -8\.0.*0 < theta"),
        ("sigma_u", 0.0, r"variable 'sigma_u' .*outside its support"),
        ("c3", 1e6, r"variable 'c3' \(a probit cutpoint\).*implausible draw, 1000000\.0"),
    ],
)
def test_forged_toxicity_draw_is_refused_naming_it(folder, var, value, words):
    _forge_draws(folder, var, value, mt="toxicity")
    with pytest.raises(StoreError, match=words):
        load_posterior("toxicity", folder)


def test_forged_draw_is_a_clean_cli_error(folder, capsys):
    _forge_draws(folder, "k2", -1.0)
    assert main([*ARGS, "--models-dir", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("netbayes: error: ") and "variable 'k2'" in err
    assert "-1.0" in err and "0 < k2" in err and "Traceback" not in err


def test_forged_but_plausible_draw_loads(folder):
    """A hand-written draw inside support and plausible range is a posterior like any other."""
    _forge_draws(folder, "k2", 2.5)
    assert load_posterior("survival-pfs", folder).draws("k2")[3] == 2.5


_BOUNDED = sorted(spec.PARAMETER_RANGES)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    var=st.sampled_from(_BOUNDED),
    value=st.floats(allow_nan=True, allow_infinity=True),
)
def test_draws_problem_agrees_with_the_ranges(var, value):
    """Any value: refused exactly when outside the variable's support or plausible range."""
    r = spec.parameter_range(var)
    a = np.full((1, 3), 0.5 if r.plausible[0] < 0.5 < r.plausible[1] else r.plausible[1])
    assert store.draws_problem(var, a) is None
    a[0, 1] = value
    ok = (
        math.isfinite(value)
        and (value > r.lower if r.open_lower else value >= r.lower)
        and (value < r.upper if r.open_upper else value <= r.upper)
        and r.plausible[0] <= value <= r.plausible[1]
    )
    why = store.draws_problem(var, a)
    assert (why is None) == ok
    if why is not None:
        assert f"variable {var!r}" in why and "draw 1" in why and "allowed:" in why


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(var=st.sampled_from(["k1", "k2", "sigma1", "kappa_se"]), value=st.floats(-1e3, 0.0))
def test_save_refuses_non_positive_draws_and_writes_nothing(tmp_path, var, value):
    d = fake_survival(0, 40)
    d[var] = d[var].copy()
    d[var][7] = value
    out = tmp_path / f"x{abs(hash((var, value)))}"
    with pytest.raises(
        ValueError, match=rf"variable {var!r} .*outside its support.*cannot be stored"
    ):
        _save(out, d=d)
    assert not out.exists()


def test_save_refuses_an_implausible_scale(tmp_path):
    d = fake_survival(0, 40)
    d["alpha2"] = d["alpha2"] + 700.0  # median PFS ~1e303 months
    with pytest.raises(ValueError, match=r"variable 'alpha2' .*implausible draw.*-7 to 12"):
        _save(tmp_path / "m", d=d)


def test_shipped_draws_are_inside_their_ranges():
    for mt in store.MODEL_TYPES:
        post = load_posterior(mt)
        for name, a in post.arrays.items():
            assert store.draws_problem(name, a) is None, (mt, name)


# ----------------------------------------------------------------------------------------------
# cards: every number finite and consistent, calibration ranges never widened
# ----------------------------------------------------------------------------------------------
def _widened() -> dict:
    cal = json.loads(json.dumps(calibrated_ranges()))
    cal["planned_gbq"]["R-PRRT"] = [3.7, 60.0]
    return cal


def test_widened_ranges_not_re_signed_are_refused_by_the_checksum(folder):
    card = _card(folder) | {"calibration": _widened()}
    (folder / "survival-pfs.json").write_text(json.dumps(card))
    with pytest.raises(StoreError, match=r"was modified or is corrupt: card_sha256="):
        load_posterior("survival-pfs", folder)


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda c: c["planned_gbq"].update({"R-PRRT": [3.7, 60.0]}),
         r"calibration\['planned_gbq'\]\['R-PRRT'\]=\[3\.7, 60\.0\] is not allowed: wider"),
        (lambda c: c.update(cumulative_gbq=[0.0, 999.0]),
         r"calibration\['cumulative_gbq'\]=\[0\.0, 999\.0\] is not allowed: wider"),
        (lambda c: c["prior_pfs_min"].update({"R-PRRT": 6.0}),
         r"calibration\['prior_pfs_min'\]\['R-PRRT'\]=6\.0 is not allowed: below .* 18 months"),
        (lambda c: c["type_weights"]["gi_non_pancreatic"].update(midgut=0.1),
         r"calibration\['type_weights'\]\['gi_non_pancreatic'\]=.* is not allowed: the "
         r"calibration data give"),
    ],
)  # fmt: skip
def test_re_signed_widened_calibration_is_refused(folder, edit, words, capsys):
    cal = json.loads(json.dumps(calibrated_ranges()))
    edit(cal)
    _edit_card(folder, calibration=cal)
    with pytest.raises(StoreError, match=words):
        load_posterior("survival-pfs", folder)
    # the 50 GBq patient the widening would have silenced: a clean error, no prediction
    assert main([*ARGS[:-1], "50", "--models-dir", str(folder)]) == 2
    assert "is not allowed" in capsys.readouterr().err


def test_narrower_calibration_is_accepted(folder):
    cal = json.loads(json.dumps(calibrated_ranges()))
    cal["planned_gbq"]["R-PRRT"] = [5.0, 15.0]
    _edit_card(folder, calibration=cal)
    assert load_posterior("survival-pfs", folder).card["calibration"] == cal


def _diag(folder: Path, **changes) -> dict:
    return _card(folder)["diagnostics"] | changes


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (dict(max_r_hat="NaN"), r"diagnostics\.max_r_hat='NaN' is not allowed; expected a finite"),
        (dict(max_r_hat=None), r"diagnostics\.max_r_hat=None is not allowed.*not_finite"),
        (dict(min_ess_bulk=-5.0), r"diagnostics\.min_ess_bulk=-5\.0 is not allowed"),
        (dict(min_ess_tail=True), r"diagnostics\.min_ess_tail=True is not allowed"),
        (dict(divergences=1.5), r"diagnostics\.divergences=1\.5 is not allowed; expected an int"),
        (dict(converged="yes"), r"diagnostics\.converged='yes' is not allowed; expected true"),
        (dict(max_r_hat=1.5), r"converged=true is not allowed with max_r_hat=1\.5 > 1\.01"),
        (dict(divergences=12), r"converged=true is not allowed with divergences=12 > 0"),
        (dict(min_ess_bulk=35.0), r"converged=true is not allowed with min_ess_bulk=35\.0 < 400"),
        (dict(seconds={"total": "inf"}), r"diagnostics\.seconds=.* is not allowed"),
    ],
)
def test_re_signed_impossible_diagnostics_are_refused(folder, changes, words):
    _edit_card(folder, diagnostics=_diag(folder, **changes))
    with pytest.raises(StoreError, match=words):
        load_posterior("survival-pfs", folder)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        (dict(seed=-1), r"sampler\.seed=-1 is not allowed; expected an integer >= 0"),
        (dict(draws=0), r"sampler\.draws=0 is not allowed"),
        (dict(target_accept=1.5), r"sampler\.target_accept=1\.5 is not allowed"),
    ],
)
def test_re_signed_impossible_sampler_settings_are_refused(folder, changes, words):
    _edit_card(folder, sampler=_card(folder)["sampler"] | changes)
    with pytest.raises(StoreError, match=words):
        load_posterior("survival-pfs", folder)


def test_a_nan_written_into_the_card_is_refused(folder):
    p = folder / "survival-pfs.json"
    p.write_text(p.read_text().replace('"max_r_hat": 1.004', '"max_r_hat": NaN'))
    assert "NaN" in p.read_text()
    with pytest.raises(StoreError, match="not canonical JSON"):
        load_posterior("survival-pfs", folder)


def test_a_null_diagnostic_listed_as_not_finite_loads(folder):
    _edit_card(folder, diagnostics=_diag(folder, max_r_hat=None, not_finite=["max_r_hat"],
                                         converged=False, problems=["R-hat is NaN"]))  # fmt: skip
    assert load_posterior("survival-pfs", folder).card["diagnostics"]["max_r_hat"] is None


# ----------------------------------------------------------------------------------------------
# a posterior whose card says it did not converge: warned in every output format
# ----------------------------------------------------------------------------------------------
@pytest.fixture
def unconverged(folder) -> Path:
    _edit_card(folder, diagnostics=_diag(folder, converged=False, max_r_hat=1.2,
               problems=["R-hat > 1.01 for 3 parameters (worst k2: 1.200)"]))  # fmt: skip
    return folder


def test_unconverged_warns_in_the_api(unconverged):
    from netbayes.fitting import ConvergenceWarning
    from netbayes.predict import Predictor

    with pytest.warns(ConvergenceWarning, match=r"survival-pfs posterior .*did not converge"):
        Predictor.load("pfs", unconverged)


def test_unconverged_warns_in_the_text_output(unconverged, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said by the command itself, not a Python warning
        assert main([*ARGS, "--models-dir", str(unconverged)]) == 0
    out, err = capsys.readouterr()
    first, second = out.splitlines()[:2]
    assert first.startswith("netbayes ") and second.startswith("WARNING: NOT CONVERGED: the ")
    assert "survival-pfs posterior" in second and "worst k2: 1.200" in second
    assert "do not report these numbers" in second
    assert err.startswith("netbayes: warning: the survival-pfs posterior")


def test_unconverged_warns_in_the_json_output(unconverged, capsys):
    assert main([*ARGS, "--models-dir", str(unconverged), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)
    (w,) = doc["warnings"]
    assert w.startswith("not converged: the survival-pfs posterior") and "worst k2" in w
    assert doc["posteriors"]["survival"]["diagnostics"]["converged"] is False
    assert "netbayes: warning:" in err


def test_converged_json_has_no_warnings_field(good, capsys):
    assert main([*ARGS, "--models-dir", str(good), "--json"]) == 0
    assert "warnings" not in json.loads(capsys.readouterr().out)


def test_predict_json_never_prints_nan(good, capsys, monkeypatch):
    """A non-finite number reaching the JSON document is an error naming it, never ``NaN``."""
    from netbayes.predict import results

    real = results.Estimate.to_dict

    def with_nan(self):
        return real(self) | {"mean": float("nan")}

    monkeypatch.setattr(results.Estimate, "to_dict", with_nan)
    assert main([*ARGS, "--models-dir", str(good), "--json"]) == 2
    out, err = capsys.readouterr()
    assert "NaN" not in out and out == ""
    assert "patients[0].median_months.mean=nan is not a finite number" in err


def test_draws_given_directly_to_the_predictor_are_checked_like_a_store():
    """Draws that never went through a store (a mapping, a fit's draws) get the same support
    and range checks: a negative Weibull shape or a log scale of 700 is refused, naming the
    variable and the value; the shipped draws pass."""
    from netbayes.predict import Predictor

    pred = Predictor.load("pfs", toxicity=False)
    good = {k: np.array(v) for k, v in pred.survival.items()}
    if pred._study_s is not None:
        u, tau, _labels = pred._study_s
        good["u_study"], good["tau"] = u, tau
    Predictor(good)  # accepted
    bad = dict(good, k2=-good["k2"])
    with pytest.raises(ValueError, match=r"'k2'.*-"):
        Predictor(bad)
    bad = dict(good, alpha2=good["alpha2"] + 700.0)
    with pytest.raises(ValueError, match=r"'alpha2'"):
        Predictor(bad)
