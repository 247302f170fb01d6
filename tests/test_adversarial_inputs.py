"""Adversarial inputs (issue 17, deliverables 2 and 6): fitting data and the weak spots.

Fitting data are held to the standard of prediction input through one set of validators
(:mod:`netbayes.fields`): each refused case asserts the error type and the key words of its
message (the column, the row, the value, what is allowed and, where it applies, the likely
unit mistake); valid data, the tests' simulated user data included, are accepted unchanged.
The weak spots of prediction each give a clear error or an extrapolation warning. No MCMC.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_predict import fake_survival, fake_toxicity
from test_store import SETTINGS, fake_fit

import netbayes
from netbayes import fields
from netbayes.cli import main
from netbayes.intervals import Interval
from netbayes.models import toxicity as tox
from netbayes.models.survival import PATIENT_COLUMNS, SurvivalModel, validate_patients
from netbayes.models.toxicity import ToxicityModel, validate_user_data
from netbayes.predict import ExtrapolationWarning, Predictor
from netbayes.predict import predictor as predictor_mod
from netbayes.predict.inputs import PRIOR_PFS_DATA_MAX
from netbayes.store import save_posterior

ROOT = Path(__file__).resolve().parents[1]
STD_R = dict(tumour_type="midgut", line="R-PRRT", prior_pfs_months=30.0, prior_gbq=29.9,
             planned_gbq=14.9)  # fmt: skip


def _settings(n: int) -> settings:
    return settings(max_examples=n, deadline=None, derandomize=True, database=None)


def _patients(**over) -> pd.DataFrame:
    base = {
        "time_months": [12.0, 20.0, 7.5],
        "event": [1, 0, 1],
        "line": ["R-PRRT", "R-PRRT", "I-PRRT"],
        "tumour_type": ["midgut", "pancreatic", "bronchial"],
        "prior_pfs_months": [30.0, 45.0, np.nan],
        "cumulative_gbq": [44.4, 44.4, 29.6],
    }
    base.update(over)
    return pd.DataFrame(base)


def _records(n_pat: int = 2) -> pd.DataFrame:
    rows = [
        (f"p{p}", c, line, g, 7.4, 7.4 * (c - 1))
        for p in range(n_pat)
        for c in (1, 2)
        for line, g in zip(tox.CELL_LINES, (0, 1, 3), strict=True)
    ]
    return pd.DataFrame(rows, columns=list(tox.USER_COLUMNS))


def _set(df: pd.DataFrame, col: str, value, row: int = 0) -> pd.DataFrame:
    df = df.copy()
    df[col] = df[col].astype(object)
    df.loc[row, col] = value
    return df


def _refused(fn, df, *words: str, exc: type[Exception] = ValueError) -> str:
    with pytest.raises(exc) as err:
        fn(df)
    msg = str(err.value)
    for w in words:
        assert w in msg, f"{w!r} not in {msg!r}"
    return msg


# ----------------------------------------------------------------------------------------------
# fitting data: survival patients
# ----------------------------------------------------------------------------------------------
def test_survival_time_of_a_million_months_is_refused():
    df = _patients(time_months=[1e6, 20.0, 7.5])
    _refused(validate_patients, df, "time_months=1000000.0 (row 0) is not allowed",
             "> 0 months and <= 600 months")  # fmt: skip
    with pytest.raises(ValueError, match=r"time_months=1000000\.0 \(row 0\)"):
        SurvivalModel("pfs", patients=df)  # the model refuses it before building


def test_survival_times_in_days_are_named_as_days():
    msg = _refused(validate_patients, _patients(time_months=[12.0, 900.0, 7.5]),
                   "time_months=900.0 (row 1)", "<= 600 months")  # fmt: skip
    assert "900 looks like days (900 days = 29.57 months)" in msg


def test_mbq_given_as_gbq_is_refused_naming_the_unit_mistake():
    df = _patients(cumulative_gbq=[44.4, 44700.0, 29.6])
    msg = _refused(validate_patients, df, "cumulative_gbq=44700.0 (row 1) is not allowed",
                   ">= 0 GBq and <= 200 GBq")  # fmt: skip
    assert "44700 looks like MBq (44700 MBq = 44.7 GBq)" in msg


@pytest.mark.parametrize("col", ["time_months", "prior_pfs_months", "cumulative_gbq"])
@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_covariates_are_refused(col, value):
    _refused(validate_patients, _set(_patients(), col, value), f"{col}={value!r} (row 0)",
             "is not allowed")  # fmt: skip


def test_missing_required_covariates_are_refused_and_optional_ones_kept_missing():
    _refused(validate_patients, _patients(cumulative_gbq=[np.nan, 44.4, 29.6]),
             "cumulative_gbq=nan (row 0)", "required for R-PRRT/RR-PRRT")  # fmt: skip
    _refused(validate_patients, _patients(prior_pfs_months=[30.0, None, np.nan]),
             "prior_pfs_months=nan (row 1)", "required for R-PRRT and RR-PRRT")  # fmt: skip
    out = validate_patients(_patients())
    assert math.isnan(out.loc[2, "prior_pfs_months"])  # I-PRRT: not needed, kept missing


@pytest.mark.parametrize(
    "value",
    [pd.Timedelta(days=300), pd.Timestamp("2020-01-01"), np.timedelta64(30, "D")],
    ids=["Timedelta", "Timestamp", "timedelta64"],
)
def test_dates_and_durations_are_not_numbers_of_months(value):
    msg = _refused(validate_patients, _set(_patients(), "time_months", value),
                   "time_months=", "(row 0) is not allowed", "a plain number, not a")  # fmt: skip
    assert "dates and durations are not converted" in msg


def test_a_timedelta_column_is_refused_not_read_as_nanoseconds():
    df = _patients().assign(time_months=pd.to_timedelta([30, 60, 90], unit="D"))
    assert df["time_months"].dtype.kind == "m"
    _refused(validate_patients, df, "time_months=Timedelta('30 days 00:00:00') (row 0)",
             "not a Timedelta")  # fmt: skip


@pytest.mark.parametrize(
    ("value", "words"),
    [(True, "not a boolean"), ("12", "a number, not str"), (1 + 2j, "a number, not complex")],
)
def test_booleans_strings_and_complex_times_are_refused(value, words):
    _refused(validate_patients, _set(_patients(), "time_months", value), "time_months=", words)


def test_a_misspelled_optional_column_is_refused_with_a_suggestion():
    df = _patients().rename(columns={"prior_pfs_months": "prior_pfs"})
    _refused(validate_patients, df, "unknown column(s) ['prior_pfs']",
             "did you mean 'prior_pfs_months'?", "Nothing is dropped silently")  # fmt: skip
    df = _patients().rename(columns={"cumulative_gbq": "cumulative_GBq"})
    _refused(validate_patients, df, "did you mean 'cumulative_gbq'?")


def test_an_unknown_column_is_refused_listing_the_allowed_ones():
    msg = _refused(validate_patients, _patients().assign(weight_kg=70.0),
                   "unknown column(s) ['weight_kg']", "df.drop(columns=['weight_kg'])")  # fmt: skip
    assert all(c in msg for c in PATIENT_COLUMNS)


def test_a_vocabulary_typo_gets_a_suggestion():
    _refused(validate_patients, _patients(line=["R-PRRT", "r-prrt", "I-PRRT"]),
             "line='r-prrt' (row 1)", "did you mean 'R-PRRT'?")  # fmt: skip
    _refused(validate_patients, _patients(tumour_type=["midgut", "pancreas", "bronchial"]),
             "tumour_type='pancreas' (row 1)", "did you mean 'pancreatic'?")  # fmt: skip


def test_event_must_be_zero_or_one():
    _refused(validate_patients, _patients(event=[1, 0.5, 1]), "event=0.5 (row 1)",
             "0 (censored) or 1 (event)")  # fmt: skip
    _refused(validate_patients, _patients(event=[1, "1", 0]), "event='1' (row 1)")
    assert validate_patients(_patients(event=[True, False, True]))["event"].tolist() == [1, 0, 1]


def test_empty_and_duplicated_columns_are_refused():
    _refused(validate_patients, _patients().iloc[:0], "patients has no rows")
    dup = pd.concat([_patients(), _patients()[["event"]]], axis=1)
    _refused(validate_patients, dup, "duplicated column(s) ['event']")


def test_valid_patients_are_accepted_unchanged():
    df = _patients()
    out = validate_patients(df)
    np.testing.assert_array_equal(out["time_months"], df["time_months"])
    np.testing.assert_array_equal(out["cumulative_gbq"], df["cumulative_gbq"])
    np.testing.assert_array_equal(out["prior_pfs_months"], df["prior_pfs_months"])
    # integers and nullable dtypes are numbers too
    ints = df.assign(time_months=[12, 20, 7], cumulative_gbq=pd.array([44, 44, 30], "Int64"))
    assert validate_patients(ints)["time_months"].tolist() == [12.0, 20.0, 7.0]


def test_simulated_user_patients_are_accepted():
    """The tests' simulated cohorts (test_simulation's truth, test_family_end_to_end's) pass
    unchanged. A truth drawn from the wide prior can put patients past 600 months (50 years):
    those are refused, as the published-study rows already were."""
    from test_family_end_to_end import TRUTH

    from netbayes.models.survival import SurvivalPriors
    from netbayes.simulation import draw_survival_truth, simulate_survival_patients

    truths = [draw_survival_truth(SurvivalPriors(), np.random.default_rng(5)), TRUTH]
    for truth, family in zip(truths, ["weibull", "lognormal"], strict=True):
        pts = simulate_survival_patients(truth, 400, np.random.default_rng(3), family=family)
        out = validate_patients(pts)
        np.testing.assert_array_equal(out["time_months"], pts["time_months"])
        np.testing.assert_array_equal(out["prior_pfs_months"], pts["prior_pfs_months"])
    rng = np.random.default_rng(2)  # a prior draw whose patients reach 651 months
    wild = simulate_survival_patients(draw_survival_truth(SurvivalPriors(), rng), 300, rng)
    _refused(validate_patients, wild, "prior_pfs_months=650.88", "(row 76)", "<= 600 months")


NUMBER_COLS = ["time_months", "prior_pfs_months", "cumulative_gbq"]
ANY_FLOAT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-1e4, 1e4),
    st.sampled_from([0.0, 1e-9, 600.0, 600.0001, 200.0, 200.5, 1 / 30.4, 44700.0]),
)


@_settings(120)
@given(col=st.sampled_from(NUMBER_COLS), value=ANY_FLOAT)
@example(col="cumulative_gbq", value=44700.0)
@example(col="prior_pfs_months", value=1 / 30.4)
def test_any_float_is_accepted_iff_inside_its_limits(col, value):
    """Accepted exactly when finite and inside fields.LIMITS (a missing value only where the
    column may be missing); refused naming the column, the row and the value otherwise."""
    df = _set(_patients(), col, value, row=1).astype({col: float})
    lim = fields.LIMITS[col]
    inside = math.isfinite(value) and (value > lim.lo if lim.strict_lo else value >= lim.lo)
    inside = inside and value <= lim.hi
    if inside:
        assert validate_patients(df).loc[1, col] == value
        return
    with pytest.raises(ValueError) as err:
        validate_patients(df)
    assert f"{col}={value!r} (row 1) is not allowed" in str(err.value)


# ----------------------------------------------------------------------------------------------
# fitting data: toxicity records
# ----------------------------------------------------------------------------------------------
def test_toxicity_activity_in_mbq_is_refused():
    msg = _refused(validate_user_data, _set(_records(), "activity_gbq", 7400.0, row=2),
                   "activity_gbq=7400.0 (row 2) is not allowed",
                   ">= 0 GBq and <= 60 GBq")  # fmt: skip
    assert "7400 looks like MBq (7400 MBq = 7.4 GBq)" in msg
    with pytest.raises(ValueError, match=r"activity_gbq=7400\.0 \(row 2\)"):
        ToxicityModel(_set(_records(), "activity_gbq", 7400.0, row=2))


@pytest.mark.parametrize("col", ["activity_gbq", "prior_gbq"])
def test_toxicity_infinite_activity_is_refused(col):
    _refused(validate_user_data, _set(_records(), col, math.inf), f"{col}=inf (row 0)")


def test_toxicity_cycle_1e20_is_refused_not_wrapped():
    _refused(validate_user_data, _set(_records(), "cycle", 1e20),
             "cycle=1e+20 (row 0) is not allowed", "an integer 1-100")  # fmt: skip
    _refused(validate_user_data, _set(_records(), "cycle", 10**30), "an integer 1-100")
    _refused(validate_user_data, _set(_records(), "cycle", 0), "cycle=0 (row 0)")


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, "grade=True (row 0) is not allowed; expected an integer 0-4"),
        (np.True_, "not a boolean"),
        (2.5, "grade=2.5 (row 0)"),
        ("3", "grade='3' (row 0)"),
        ("III", "a number, not str"),
        (5, "grade=5 (row 0)"),
    ],
)
def test_toxicity_grade_must_be_an_integer_0_to_4(value, words):
    _refused(validate_user_data, _set(_records(), "grade", value), words)


def test_toxicity_whole_float_grades_and_cycles_are_integers():
    df = _records().astype({"grade": float, "cycle": float})
    out = validate_user_data(df)
    assert out["grade"].dtype.kind == "i" and out["grade"].tolist() == _records()["grade"].tolist()


def test_toxicity_patient_ids_1_and_text_1_are_refused_not_merged():
    df = _records(2)
    df["patient"] = [1] * 6 + ["1"] * 6
    msg = _refused(validate_user_data, df, "patient='1' (row 6) is not allowed",
                   "would become the same patient")  # fmt: skip
    assert "1 (another row)" in msg
    # one type per table is fine, integers included
    df["patient"] = [1] * 6 + [2] * 6
    assert validate_user_data(df)["patient"].tolist() == ["1"] * 6 + ["2"] * 6


@pytest.mark.parametrize(("value", "words"), [(True, "not a boolean"), (1.0, "or a float")])
def test_toxicity_boolean_and_float_patient_ids_are_refused(value, words):
    _refused(validate_user_data, _set(_records(), "patient", value), "patient=", words)


def test_toxicity_misspelled_and_unknown_columns_are_refused():
    df = _records().assign(tumor_type="midgut")
    _refused(validate_user_data, df, "unknown column(s) ['tumor_type']",
             "did you mean 'tumour_type'?")  # fmt: skip
    _refused(validate_user_data, _records().assign(site="lyon"), "unknown column(s) ['site']",
             "'study'")  # fmt: skip


def test_toxicity_cell_line_typo_gets_a_suggestion():
    _refused(validate_user_data, _set(_records(), "cell_line", "platelet"),
             "cell_line='platelet' (row 0)", "did you mean 'platelets'?")  # fmt: skip


def test_toxicity_optional_prior_pfs_is_checked():
    df = _records().assign(prior_pfs_months=np.nan)
    assert len(validate_user_data(df)) == len(df)  # may be missing: not used
    _refused(validate_user_data, _set(df, "prior_pfs_months", math.inf),
             "prior_pfs_months=inf (row 0)")  # fmt: skip


def test_toxicity_simulated_user_data_are_accepted():
    params = tox.draw_prior_params(np.random.default_rng(4))
    _, user = tox.simulate_data(params, np.random.default_rng(5), n_user_patients=30)
    out = validate_user_data(user)
    np.testing.assert_array_equal(out["activity_gbq"], user["activity_gbq"])
    assert out["patient"].tolist() == user["patient"].tolist()


@_settings(80)
@given(col=st.sampled_from(["activity_gbq", "prior_gbq"]), value=ANY_FLOAT)
@example(col="activity_gbq", value=7400.0)
def test_toxicity_any_activity_is_accepted_iff_inside_its_limits(col, value):
    df = _set(_records(), col, value, row=1).astype({col: float})
    lim = fields.LIMITS[col]
    if math.isfinite(value) and lim.lo <= value <= lim.hi:
        assert validate_user_data(df).loc[1, col] == value
        return
    with pytest.raises(ValueError) as err:
        validate_user_data(df)
    shown = "nan" if math.isnan(value) else repr(value)
    assert f"{col}={shown} (row 1) is not allowed" in str(err.value)


@_settings(60)
@given(value=st.one_of(st.integers(-(10**30), 10**30), st.floats(allow_nan=False)))
def test_toxicity_any_cycle_is_an_integer_1_to_100_or_refused(value):
    df = _set(_records(), "cycle", value, row=0)
    df.loc[0, "patient"] = "solo"  # no duplicate with p0's other rows
    ok = math.isfinite(float(value)) and float(value) == round(float(value))
    ok = ok and 1 <= value <= 100
    if ok:
        assert validate_user_data(df).loc[0, "cycle"] == int(value)
    else:
        with pytest.raises(ValueError, match=r"cycle=.* \(row 0\) is not allowed"):
            validate_user_data(df)


# ----------------------------------------------------------------------------------------------
# prediction weak spots
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pred() -> Predictor:
    return Predictor.load()


@pytest.fixture(scope="module")
def pred_os() -> Predictor:
    return Predictor.load("os")


def _warnings(fn, **kw) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn(**kw)
    return [str(w.message) for w in caught if issubclass(w.category, ExtrapolationWarning)]


def test_a_very_long_prior_pfs_warns_beyond_the_data(pred_os):
    got = _warnings(pred_os.patient, **(STD_R | {"prior_pfs_months": 600.0}))
    assert any(
        "prior_pfs_months=600 is beyond the 120 months the calibration data can cover" in w
        for w in got
    )
    near = _warnings(pred_os.patient, **(STD_R | {"prior_pfs_months": PRIOR_PFS_DATA_MAX}))
    assert not any("beyond the" in w for w in near)
    # summaries() warns the same way (one validation path)
    df = pd.DataFrame([STD_R | {"prior_pfs_months": 300.0}])
    assert any("beyond the 120 months" in w for w in _warnings(pred_os.summaries, df=df))


def test_a_188re_hedp_prior_pfs_outside_the_pilots_interval_range_warns(pred_os):
    rec = dict(tumour_type="pancreatic", line="188Re-HEDP", prior_gbq=50.0, planned_gbq=3.0)
    outside = _warnings(pred_os.patient, **rec, prior_pfs_months=60.0)
    assert any(
        "prior_pfs_months=60 is outside the 13-47 months from the previous treatment to "
        "188Re-HEDP" in w
        for w in outside
    ), outside
    for x in (13.0, 20.0, 47.0, None):  # inside the pilot's range, or its law: no such warning
        got = _warnings(pred_os.patient, **rec, prior_pfs_months=x)
        assert not any("previous treatment to 188Re-HEDP" in w for w in got), (x, got)


@pytest.mark.parametrize(
    ("prob", "text"),
    [(0.9999999, "99.99999% ETI"), (0.95, "95% ETI"), (0.975, "97.5% ETI"), (1e-9, "1e-07% ETI")],
)
def test_interval_labels_never_round_a_level(prob, text):
    iv = Interval(prob)
    assert iv.text == text and iv.columns[0] == f"eti{text.split('%')[0]}_lower"


@_settings(200)
@given(prob=st.floats(0, 1, exclude_min=True, exclude_max=True))
@example(prob=0.9999999)
@example(prob=float(np.nextafter(1.0, 0.0)))
@example(prob=5e-324)
@example(prob=0.9999999999993633)  # float arithmetic cannot check this one's tails
def test_every_interval_label_gives_its_level_back(prob):
    from decimal import Decimal

    p = Interval(prob).percent
    assert p not in ("0", "100")
    q, exact = Decimal(p) / 100, Decimal(prob)  # exact arithmetic: a level within 1e-13 of 1
    assert abs(q - exact) <= Decimal("1e-9") * exact  # the level, to a relative 1e-9
    assert abs(q - exact) <= Decimal("1e-6") * (1 - exact)  # its tails, to a relative 1e-6


def _cli(*extra: str) -> tuple[int, str, str]:
    argv = ["predict", "--tumour-type", "midgut", "--line", "R-PRRT", "--prior-pfs", "30",
            "--prior-gbq", "29.9", "--planned-gbq", "14.9", *extra]  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(argv)
    return rc, out.getvalue(), err.getvalue()


def test_cli_interval_0_9999999_is_not_labelled_100_percent():
    rc, out, _ = _cli("--interval", "0.9999999", "--no-toxicity")
    assert rc == 0 and "99.99999% ETI" in out and "100% ETI" not in out


def test_cli_repeated_times_are_all_kept():
    rc, out, _ = _cli("--times", "12", "--times", "24", "--no-toxicity")
    assert rc == 0 and "P(PFS > 12 months)" in out and "P(PFS > 24 months)" in out
    rc, out, _ = _cli("--times", "6", "--times", "12", "36", "--no-toxicity")
    assert all(f"P(PFS > {t} months)" in out for t in (6, 12, 36))
    assert "P(PFS > 24 months)" not in out  # the default is replaced, not extended
    rc, out, _ = _cli("--no-toxicity")
    assert "P(PFS > 12 months)" in out and "P(PFS > 24 months)" in out  # the default
    rc, _, err = _cli("--times", "12", "--times", "-1")
    assert rc == 2 and "--times=" in err and "is not allowed" in err


def test_patients_memory_estimate_matches_the_measurement(pred):
    df = pd.DataFrame([STD_R] * 20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tracemalloc.start()
        p = pred.patients(df)
        held, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    est = predictor_mod._patients_bytes(20, pred.n_draws, 61, 2, True)
    assert est == 20 * 4000 * 68 * 8  # 2.18 MB a patient
    assert 0.9 * est < held < 1.3 * est
    assert p.arrays["survival"].nbytes == 20 * 4000 * 61 * 8


def test_patients_above_the_memory_bound_are_refused_pointing_to_summaries(pred):
    df = pd.DataFrame([STD_R] * 5000)
    with pytest.raises(ValueError) as err:
        pred.patients(df)
    msg = str(err.value)
    for w in ("5000 patients x 4000 draws x 61 times", "10.9 GB", "2.18 MB a patient",
              "above max_gb=1", "Predictor.summaries(df)"):  # fmt: skip
        assert w in msg, msg
    with pytest.raises(ValueError, match=r"above max_gb=0\.01"):
        pred.patients(pd.DataFrame([STD_R] * 5), max_gb=0.01)
    with pytest.raises(ValueError, match=r"max_gb=-1 is not allowed"):
        pred.patients(pd.DataFrame([STD_R]), max_gb=-1)
    with pytest.raises(ValueError, match="1 patient x 4000 draws x 100000 times"):
        pred.patient(**STD_R, times=np.arange(100_000.0))


def test_cohort_of_10_to_the_8_is_refused_with_the_estimate(pred):
    with pytest.raises(ValueError) as err:
        pred.cohort(10**8)
    msg = str(err.value)
    assert "cohort(n=100000000, n_sims=2000) would need about 17.6 TB" in msg
    assert "above max_gb=4" in msg and "reduce n_sims" in msg
    with pytest.raises(ValueError, match=r"above max_gb=0\.001"):
        pred.cohort(1000, n_sims=100, max_gb=0.001)


def _save(folder: Path, seed: int, overwrite: bool = False) -> None:
    for mt, d in (
        ("survival-pfs", fake_survival(seed, 200)),
        ("toxicity", fake_toxicity(seed, 200)),
    ):
        save_posterior(fake_fit(d), mt, variables=list(d), priors={}, sampler_settings=SETTINGS,
                       folder=folder, overwrite=overwrite)  # fmt: skip


def test_predict_patient_reloads_when_the_models_folder_changes(tmp_path):
    folder = tmp_path / "models"
    _save(folder, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = netbayes.predict_patient(**STD_R, folder=folder).median().median
        assert netbayes.predict_patient(**STD_R, folder=folder).median().median == a  # cached
        _save(folder, 7, overwrite=True)  # a refit into the same folder
        b = netbayes.predict_patient(**STD_R, folder=folder).median().median
        fresh = Predictor.load(folder).patient(**STD_R).median().median
    assert b == fresh and b != a


def test_predict_patient_cache_is_kept_while_nothing_changes(tmp_path):
    folder = tmp_path / "models"
    shutil.copytree(ROOT / "models", folder)
    first = predictor_mod._default_predictor("pfs", str(folder))
    assert predictor_mod._default_predictor("pfs", str(folder)) is first
    card = folder / "survival-pfs.json"
    card.write_bytes(card.read_bytes())  # rewritten: a new modification time
    assert predictor_mod._default_predictor("pfs", str(folder)) is not first


def test_prediction_tables_suggest_a_misspelled_column(pred):
    df = pd.DataFrame([STD_R]).rename(columns={"prior_pfs_months": "prior_pfs"})
    with pytest.raises(ValueError) as err:
        pred.summaries(df)
    assert "unknown column(s) ['prior_pfs']; 'prior_pfs': did you mean 'prior_pfs_months'?" in str(
        err.value
    )
