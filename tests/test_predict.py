"""Prediction API on injected posteriors (no MCMC): formulas, validation, warnings, cohorts."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from netbayes import vocab
from netbayes.intervals import Interval
from netbayes.predict import (
    ExtrapolationWarning,
    Predictor,
    calibrated_ranges,
    default_activities,
)

S = 400
TYPES = list(vocab.TUMOUR_TYPES)


def fake_survival(seed: int = 0, n: int = S, os: bool = False) -> dict[str, np.ndarray]:
    """Posterior-like draws of the survival model (plausible values, some spread)."""
    r = np.random.default_rng(seed)
    d = {
        "alpha1": r.normal(math.log(40), 0.05, n),
        "alpha2": r.normal(math.log(18), 0.05, n),
        "k1": r.normal(1.8, 0.05, n),
        "k2": r.normal(1.6, 0.08, n),
        "sigma1": np.abs(r.normal(0.3, 0.05, n)),
        "sigma2": np.abs(r.normal(0.3, 0.05, n)),
        "z1": r.normal(size=(n, 6)),
        "z2": r.normal(size=(n, 6)),
        "beta_x": r.normal(0.4, 0.05, n),
        "beta_gbq": r.normal(-0.05, 0.05, n),
        "gamma_rr": r.normal(-0.2, 0.1, n),
        "gamma_re188": r.normal(0.0, 1.0, n),
        "delta_control": r.normal(0.0, 0.1, n),
        "kappa_se": np.abs(r.normal(3.0, 0.2, n)),
    }
    if os:
        d |= {
            "alpha1_os": r.normal(math.log(90), 0.05, n),
            "k1_os": r.normal(1.5, 0.05, n),
            "sigma1_os": np.abs(r.normal(0.3, 0.05, n)),
            "z1_os": r.normal(size=(n, 6)),
        }
    return d


def fake_toxicity(seed: int = 1, n: int = S) -> dict[str, np.ndarray]:
    r = np.random.default_rng(seed)
    return {
        "c3": r.normal(1.9, 0.1, (n, 3)),
        "log_gap": r.normal(-0.5, 0.1, (n, 3, 3)),
        "beta_activity": r.normal(0.2, 0.05, n),
        "beta_prior": r.normal(0.1, 0.05, n),
        "delta_retreated": r.normal(0.0, 0.1, n),
        "delta_re188": r.normal(0.0, 0.1, n),
        "theta": np.exp(r.normal(math.log(8), 0.2, n)),
        "sigma_u": np.abs(r.normal(0.8, 0.1, n)),
    }


STD = dict(tumour_type="midgut", prior_pfs_months=30.0, prior_gbq=29.9, planned_gbq=14.9)
STD_R = dict(STD, line="R-PRRT")


@pytest.fixture(scope="module")
def draws():
    return fake_survival()


@pytest.fixture(scope="module")
def pred(draws):
    return Predictor(draws, fake_toxicity())


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        return fn(*a, **k)


def _lam_salvage(d, j, x, cum, line):
    """The salvage formula written out independently of netbayes.formulas."""
    lp = (
        d["alpha2"]
        + d["sigma2"] * d["z2"][:, j]
        + d["beta_x"] * np.log(x / 36.0)
        + d["beta_gbq"] * (cum - 44.7) / 10.0
    )
    if line == "RR-PRRT":
        lp = lp + d["gamma_rr"]
    if line == "188Re-HEDP":
        lp = lp + d["gamma_re188"]
    return np.exp(lp)


# ---------------------------------------------------------------------------------------------
# formulas against scipy
# ---------------------------------------------------------------------------------------------
def test_survival_curve_matches_scipy_weibull(pred, draws):
    times = [0, 3, 6, 12, 18, 24, 36, 48]
    p = pred.patient(**STD_R, times=times, t_probs=[12, 24])
    lam = _lam_salvage(draws, TYPES.index("midgut"), 30.0, 29.9 + 14.9, "R-PRRT")
    sf = stats.weibull_min.sf(np.array(times)[None, :], draws["k2"][:, None], scale=lam[:, None])
    np.testing.assert_allclose(p.arrays["survival"][0], sf, rtol=1e-10, atol=1e-14)
    lo, hi = Interval().bounds(sf)
    np.testing.assert_allclose(p.curve["eti95_lower"], lo, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(p.curve["eti95_upper"], hi, rtol=1e-10, atol=1e-14)
    med = stats.weibull_min.median(draws["k2"], scale=lam)
    np.testing.assert_allclose(p.arrays["median_pfs_months"][0], med, rtol=1e-10)
    row = p.summary[p.summary["quantity"] == "median_pfs"].iloc[0]
    assert row["median"] == pytest.approx(np.median(med), rel=1e-10)
    gt = p.summary[p.summary["quantity"] == "p_pfs_gt"]
    assert list(gt["t_months"]) == [12.0, 24.0]
    sf12 = stats.weibull_min.sf(12.0, draws["k2"], scale=lam)
    assert gt.iloc[0]["mean"] == pytest.approx(sf12.mean(), rel=1e-10)


@pytest.mark.parametrize("line", ["RR-PRRT", "188Re-HEDP"])
def test_line_effects_and_cumulative_activity(pred, draws, line):
    kw = dict(tumour_type="pancreatic", prior_pfs_months=40.0, prior_gbq=44.7, planned_gbq=15.0)
    p = _quiet(pred.patient, **kw, line=line, times=[10.0])
    # 188Re-HEDP activity is not 177Lu: the cumulative 177Lu stays at the prior activity
    cum = 44.7 + (15.0 if line == "RR-PRRT" else 0.0)
    lam = _lam_salvage(draws, TYPES.index("pancreatic"), 40.0, cum, line)
    sf = stats.weibull_min.sf(10.0, draws["k2"], scale=lam)
    np.testing.assert_allclose(p.arrays["survival"][0, :, 0], sf, rtol=1e-10)
    assert p.patients["cumulative_gbq"].iloc[0] == pytest.approx(cum)


@pytest.mark.parametrize("endpoint", ["pfs", "os"])
def test_first_line_uses_the_first_line_block(endpoint):
    d = fake_survival(3, os=True)
    pr = Predictor(d, endpoint=endpoint)
    p = pr.patient(tumour_type="bronchial", line="I-PRRT", planned_gbq=29.6, times=[20.0])
    sfx = "_os" if endpoint == "os" else ""
    j = TYPES.index("bronchial")
    lam = np.exp(d[f"alpha1{sfx}"] + d[f"sigma1{sfx}"] * d[f"z1{sfx}"][:, j])
    sf = stats.weibull_min.sf(20.0, d[f"k1{sfx}"], scale=lam)
    np.testing.assert_allclose(p.arrays["survival"][0, :, 0], sf, rtol=1e-10)
    assert f"median_{endpoint}" in set(p.summary["quantity"])
    assert np.isnan(p.patients["prior_pfs_months"].iloc[0])  # ignored for the first line


def test_coarse_type_is_the_rotterdam_mixture(pred, draws):
    p = pred.patient(**dict(STD_R, tumour_type="gi_non_pancreatic"), times=[6.0, 15.0, 30.0])
    w = calibrated_ranges()["type_weights"]["gi_non_pancreatic"]
    assert set(w) == {"foregut", "midgut", "hindgut"}
    assert sum(w.values()) == pytest.approx(1.0)
    # Rotterdam Table 5 PFS mix: foregut 5, midgut 54, hindgut 12
    assert w["midgut"] == pytest.approx(54 / 71)
    sf = 0.0
    lams = {}
    for t, wt in w.items():
        lams[t] = _lam_salvage(draws, TYPES.index(t), 30.0, 44.8, "R-PRRT")
        sf = sf + wt * stats.weibull_min.sf(
            np.array([6.0, 15.0, 30.0])[None, :], draws["k2"][:, None], scale=lams[t][:, None]
        )
    np.testing.assert_allclose(p.arrays["survival"][0], sf, rtol=1e-10)
    med = p.arrays["median_pfs_months"][0]
    for i in range(0, S, 97):  # the mixture median solves S(m) = 1/2
        f = lambda m, i=i: (  # noqa: E731
            sum(
                wt * stats.weibull_min.sf(m, draws["k2"][i], scale=lams[t][i])
                for t, wt in w.items()
            )
            - 0.5
        )
        assert med[i] == pytest.approx(optimize.brentq(f, 1e-3, 1e3), rel=1e-8)


# ---------------------------------------------------------------------------------------------
# output properties
# ---------------------------------------------------------------------------------------------
def test_curve_monotone_probabilities_in_unit_interval(pred):
    p = pred.patient(**STD_R)
    s = p.arrays["survival"][0]
    assert np.all(np.diff(s, axis=1) <= 1e-15)
    assert np.all(s[:, 0] == 1.0)
    for c in ("median", "mean", "eti95_lower", "eti95_upper"):
        assert np.all(np.diff(p.curve[c].to_numpy()) <= 1e-15), c
    probs = p.summary[p.summary["unit"] == "probability"]
    assert len(probs) == 2 + 4
    for c in ("median", "mean", "eti95_lower", "eti95_upper"):
        assert probs[c].between(0, 1).all()
    assert (probs["eti95_lower"] <= probs["median"]).all()
    assert (probs["median"] <= probs["eti95_upper"]).all()
    assert np.all((p.arrays["p_grade3plus"] >= 0) & (p.arrays["p_grade3plus"] <= 1))


def test_interval_columns_follow_the_convention(pred):
    p = pred.patient(**STD_R)
    assert list(p.summary.columns[-2:]) == ["eti95_lower", "eti95_upper"]
    assert list(p.curve.columns[-2:]) == ["eti95_lower", "eti95_upper"]
    q = pred.patient(**STD_R, interval=Interval(0.9, "hdi"))
    assert list(q.summary.columns[-2:]) == ["hdi90_lower", "hdi90_upper"]
    r = pred.patient(**STD_R, interval=0.8)
    assert "eti80_lower" in r.curve.columns
    assert p.sentence().startswith("median PFS after R-PRRT ")
    assert "(95% ETI " in p.sentence()


def test_toxicity_rows_match_the_formulas(pred):
    from netbayes.formulas.toxicity import grade3_risk

    p = pred.patient(**STD_R)
    tox = p.summary[p.summary["quantity"] == "p_grade3plus"]
    assert list(tox["cell_line"]) == [*vocab.CELL_LINES, "any"]
    per, anyl = grade3_risk(fake_toxicity(), 14.9, 29.9, "R-PRRT")
    np.testing.assert_allclose(tox["mean"].to_numpy()[:3], per[:, 0, :].mean(0), rtol=1e-12)
    assert tox["mean"].iloc[3] == pytest.approx(anyl[:, 0].mean(), rel=1e-12)
    d = p.arrays["p_grade3plus"][0]
    assert np.all(d[:, 3] >= d[:, :3].max(axis=1) - 1e-12)  # "any" is at least each line


def test_without_toxicity_posterior_no_toxicity_rows(draws):
    p = Predictor(draws).patient(**STD_R)
    assert "p_grade3plus" not in set(p.summary["quantity"])
    assert "p_grade3plus" not in p.draws
    assert p.to_dict()["patients"][0]["p_grade3plus"] is None


def test_draws_and_summary_agree(pred):
    p = pred.patient(**STD_R, t_probs=[6, 12, 18])
    ds = p.draws
    assert ds["survival"].dims == ("patient", "chain", "draw", "t_months")
    assert ds["p_grade3plus"].dims == ("patient", "tox_chain", "tox_draw", "cell_line")
    assert ds["p_pfs_gt"].sizes["t_prob"] == 3
    # plain draws (a mapping) are one chain
    assert ds.sizes["chain"] == 1 and ds.sizes["draw"] == S and ds.sizes["tox_draw"] == S
    gt = p.summary[p.summary["quantity"] == "p_pfs_gt"]
    np.testing.assert_allclose(gt["median"], np.median(ds["p_pfs_gt"].values[0, 0], axis=0))


def test_many_patients_equal_single_predictions(pred):
    df = pd.DataFrame(
        [
            STD_R,
            dict(tumour_type="unknown", line="I-PRRT", planned_gbq=29.6),
            dict(STD_R, tumour_type="gi_non_pancreatic", prior_pfs_months=50.0),
        ],
        index=["a", "b", "c"],
    )
    many = pred.patients(df)
    assert list(many.patients.index) == ["a", "b", "c"]
    for lab, row in df.iterrows():
        rec = {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
        one = pred.patient(**rec)
        a = many.summary[many.summary["patient"] == lab].reset_index(drop=True)
        b = one.summary.drop(columns="patient").reset_index(drop=True)
        pd.testing.assert_frame_equal(a.drop(columns="patient"), b)


def test_nonfinite_outputs_raise(draws):
    bad = dict(draws)
    bad["alpha2"] = np.full(S, 800.0)  # exp overflows: refused before any answer is computed
    with pytest.raises(ValueError, match=r"'alpha2'.*800"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        Predictor(bad).patient(**STD_R)
    nan = dict(draws)
    nan["k2"] = np.full(S, np.nan)
    with pytest.raises(ValueError, match="non-finite"):
        Predictor(nan)


def test_missing_posterior_variable_says_what_to_do(draws):
    d = {k: v for k, v in draws.items() if k != "beta_x"}
    with pytest.raises(ValueError, match=r"beta_x.*netbayes fit"):
        Predictor(d)


# ---------------------------------------------------------------------------------------------
# validation: errors
# ---------------------------------------------------------------------------------------------
BAD = [
    (dict(tumour_type="midgutt"), "tumour_type='midgutt'", "new_type='population'"),
    (dict(tumour_type=3), "tumour_type=3", "string"),
    (dict(tumour_type=""), "tumour_type=''", "string"),
    (dict(line="R-PRT"), "line='R-PRT'", "I-PRRT, R-PRRT, RR-PRRT, 188Re-HEDP"),
    (dict(line=None), "line=None", "one of"),
    (dict(prior_pfs_months=-1.0), "prior_pfs_months=-1.0", ">= 0.0329 (one day)"),
    (dict(prior_pfs_months=0), "prior_pfs_months=0", ">= 0.0329 (one day)"),
    (dict(prior_pfs_months=0.02), "prior_pfs_months=0.02", "(one day)"),
    (dict(prior_pfs_months=10**400), "prior_pfs_months=1000000", "finite"),
    (dict(prior_pfs_months=900.0), "prior_pfs_months=900.0", "months"),
    (dict(prior_pfs_months=float("inf")), "prior_pfs_months=inf", "finite"),
    (dict(prior_pfs_months="30"), "prior_pfs_months='30'", "not str"),
    (dict(prior_pfs_months=True), "prior_pfs_months=True", "not bool"),
    (dict(prior_pfs_months=None), "prior_pfs_months=None", "required for R-PRRT"),
    (dict(prior_gbq=-0.1), "prior_gbq=-0.1", ">= 0"),
    (dict(prior_gbq=29900.0), "prior_gbq=29900.0", "MBq"),
    (dict(prior_gbq=0.0), "prior_gbq=0.0", "retreatment follows PRRT"),
    (dict(prior_gbq=float("nan")), "prior_gbq=nan", "a number"),
    (dict(planned_gbq=0.0), "planned_gbq=0.0", "> 0"),
    (dict(planned_gbq=14800.0), "planned_gbq=14800.0", "GBq"),
    (dict(planned_gbq=[14.9]), r"planned_gbq=\[14.9\]", "not list"),
    (dict(planned_gbq=-(10**400)), "planned_gbq=-1000000", "> 0"),
    (dict(prior_gbq=10**5000), "prior_gbq=<an integer of 16610 bits>", "<= 200"),
    (dict(line="I-PRRT"), "prior_gbq=29.9", "0 for I-PRRT"),
]


@pytest.mark.parametrize(("change", "names", "allowed"), BAD)
def test_bad_inputs_raise_naming_field_value_and_allowed(pred, change, names, allowed):
    with pytest.raises(ValueError, match=names) as e:
        pred.patient(**(STD_R | change))
    assert allowed in str(e.value)
    assert "not allowed" in str(e.value)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        (dict(new_type="maybe"), "new_type='maybe'"),
        (dict(times=[-1, 2]), "times="),
        (dict(times=[]), "times="),
        (dict(t_probs=[float("nan")]), "t_probs="),
        (dict(interval=1.5), "prob=1.5"),
        (dict(interval=10**400), "interval=1000000"),
        (dict(times="5"), "times='5'.*not a string"),
        (dict(t_probs=b"12"), "t_probs=b'12'.*not a string"),
        (dict(seed=-1), "seed=-1 is not allowed; expected an integer >= 0 or None"),
        (dict(seed=2.0), "seed=2.0"),
        (dict(seed=np.int64(-3)), "seed=-3"),
    ],
)
def test_bad_options_raise(pred, kw, match):
    with pytest.raises(ValueError, match=match):
        pred.patient(**STD_R, **kw)


def test_case_insensitive_vocabulary(pred):
    p = pred.patient(**dict(STD_R, tumour_type=" Midgut ", line="r-prrt"))
    assert p.patients["tumour_type"].iloc[0] == "midgut"
    assert p.patients["line"].iloc[0] == "R-PRRT"


def test_patients_table_errors_name_the_patient(pred):
    df = pd.DataFrame([STD_R, dict(STD_R, planned_gbq=-3.0)], index=["ok", "p2"])
    with pytest.raises(ValueError, match=r"patient 'p2': planned_gbq=-3.0"):
        pred.patients(df)
    with pytest.raises(ValueError, match="missing column"):
        pred.patients(df.drop(columns="line"))
    with pytest.raises(ValueError, match=r"unknown column.*\['weight'\]"):
        pred.patients(df.assign(weight=70))
    with pytest.raises(TypeError, match="DataFrame"):
        pred.patients([STD_R])


@pytest.mark.parametrize("missing", [float("nan"), None, pd.NA])
def test_missing_prior_gbq_in_a_table_is_the_single_patient_default(pred, missing):
    """A missing cell is "not given": 0 where 0 is allowed, and on a retreatment refused as
    the single-patient call refuses the same value (not as ``prior_gbq=0.0``)."""
    first = dict(tumour_type="midgut", line="I-PRRT", planned_gbq=29.6)
    df = pd.DataFrame(
        {"a": first | {"prior_gbq": missing}, "b": first | {"prior_gbq": 0.0}}
    ).T.astype({"planned_gbq": float})
    many = pred.patients(df)
    assert list(many.patients["prior_gbq"]) == [0.0, 0.0]
    one = pred.patient(**first)
    pd.testing.assert_frame_equal(
        many.summary[many.summary["patient"] == "a"].drop(columns="patient").reset_index(drop=True),
        one.summary.drop(columns="patient").reset_index(drop=True),
    )
    retre = pd.DataFrame({"ok": STD_R, "q": STD_R | {"prior_gbq": missing}}).T
    with pytest.raises(ValueError, match=r"patient 'q': prior_gbq=nan is not allowed") as e:
        pred.patients(retre)
    with pytest.raises(ValueError, match=r"prior_gbq=nan is not allowed") as one_err:
        pred.patient(**(STD_R | {"prior_gbq": float("nan")}))
    assert str(e.value) == f"patient 'q': {one_err.value}"


# ---------------------------------------------------------------------------------------------
# validation: extrapolation warnings
# ---------------------------------------------------------------------------------------------
WARN = [
    (dict(prior_pfs_months=12.0), "below the 18-month selection threshold"),
    (dict(line="RR-PRRT", prior_gbq=44.7, planned_gbq=15.0, prior_pfs_months=10.0), "14-month"),
    (dict(prior_gbq=55.0, planned_gbq=14.9), "69.9 GBq is outside the calibrated range"),
    (dict(planned_gbq=25.0, prior_gbq=29.9), "outside the calibrated R-PRRT activity range"),
    (dict(line="RR-PRRT", prior_gbq=44.7, planned_gbq=7.4), "RR-PRRT activity range"),
    (dict(line="188Re-HEDP", prior_gbq=40.0, planned_gbq=3.0), "no PFS data inform 188Re"),
    (dict(line="188Re-HEDP", prior_gbq=10.0, planned_gbq=3.0), "pilot's prior 177Lu range"),
    (dict(tumour_type="appendiceal"), "drawn from the population"),
]


@pytest.mark.parametrize(("change", "match"), WARN)
def test_extrapolation_warns(pred, change, match):
    with pytest.warns(ExtrapolationWarning) as rec:
        p = pred.patient(**(STD_R | change), new_type="population")
    assert any(match in str(w.message) for w in rec)
    assert match.split()[0] in p.patients["extrapolation"].iloc[0]
    assert p.patients["extrapolation_notes"].iloc[0]


def test_calibrated_patient_does_not_warn(pred):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = pred.patient(**STD_R)
    assert p.patients["extrapolation"].iloc[0] == ""


def test_calibrated_ranges_come_from_the_data():
    r = calibrated_ranges()
    assert r["prior_pfs_min"] == {"R-PRRT": 18.0, "RR-PRRT": 14.0}
    assert r["cumulative_gbq"] == (26.3, 60.5)
    assert r["planned_gbq"]["R-PRRT"] == (3.7, 16.2)


# ---------------------------------------------------------------------------------------------
# new tumour types
# ---------------------------------------------------------------------------------------------
def test_new_type_population_draws_are_seeded_and_shared(pred, draws):
    kw = dict(STD_R, tumour_type="appendiceal", new_type="population")
    a = _quiet(pred.patient, **kw, seed=5)
    b = _quiet(pred.patient, **kw, seed=5)
    c = _quiet(pred.patient, **kw, seed=6)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    assert not np.allclose(a.draws["median_pfs_months"], c.draws["median_pfs_months"])
    z = np.random.default_rng(5).standard_normal(S)
    lam = np.exp(
        draws["alpha2"]
        + draws["sigma2"] * z
        + draws["beta_x"] * np.log(30 / 36)
        + draws["beta_gbq"] * (44.8 - 44.7) / 10
    )
    np.testing.assert_allclose(
        a.arrays["median_pfs_months"][0], lam * np.log(2) ** (1 / draws["k2"])
    )
    df = pd.DataFrame([kw | {"new_type": None}, kw | {"new_type": None}]).drop(columns="new_type")
    two = _quiet(pred.patients, df, new_type="population", seed=5)
    m = two.arrays["median_pfs_months"]
    np.testing.assert_array_equal(m[0], m[1])  # one new type, one drawn effect


# ---------------------------------------------------------------------------------------------
# cohorts
# ---------------------------------------------------------------------------------------------
def test_cohort_agrees_with_the_posterior_predictive_check(draws):
    from netbayes.ppc import survival_ppc_table

    pr = Predictor(draws)
    ppc = survival_ppc_table(draws, "pfs", n_sims=S, seed=3)
    row = ppc[ppc["row_id"].str.contains("rprrt") & (ppc["tumour_type"] == "all")]
    row = row[row["group"] == "retreatment"].iloc[0]
    c = pr.cohort(int(row["n"]), line="R-PRRT", prior_gbq=29.8, planned_gbq=14.9, seed=4)
    assert c.type_counts == {
        "foregut": 5,
        "midgut": 54,
        "hindgut": 12,
        "pancreatic": 53,
        "bronchial": 13,
        "unknown": 31,
    }
    s = c.summary.iloc[0]
    # two independent Monte Carlo implementations of the same predictive distribution
    assert s["median"] == pytest.approx(row["predicted_median_months"], rel=0.04)
    assert s["eti95_lower"] == pytest.approx(row["pi95_eti_lower_months"], rel=0.08)
    assert s["eti95_upper"] == pytest.approx(row["pi95_eti_upper_months"], rel=0.08)
    assert c.sentence().startswith("predicted KM median PFS of 168 patients after R-PRRT")


def test_large_cohort_median_tends_to_the_patient_median(draws):
    # a degenerate posterior (every draw the same): only the cohort's sampling variation is left
    pr = Predictor({k: np.repeat(v[:1], S, axis=0) for k, v in draws.items()})
    c = pr.cohort(
        4001, tumour_mix={"midgut": 1}, prior_pfs_months=30.0, prior_gbq=29.9, planned_gbq=14.9
    )
    p = pr.patient(**STD_R)
    med = p.summary.iloc[0]
    assert c.summary["median"].iloc[0] == pytest.approx(med["median"], rel=0.02)
    assert med["eti95_upper"] == pytest.approx(med["median"], rel=1e-9)
    assert c.summary["eti95_upper"].iloc[0] == pytest.approx(med["median"], rel=0.06)
    small = pr.cohort(
        10, tumour_mix={"midgut": 1}, prior_pfs_months=30.0, prior_gbq=29.9, planned_gbq=14.9
    )
    width = lambda c: c.summary["eti95_upper"].iloc[0] - c.summary["eti95_lower"].iloc[0]  # noqa: E731
    assert width(small) > 5 * width(c)  # sampling variation of a small cohort


def test_cohort_mix_counts_and_errors(draws):
    pr = Predictor(draws)
    c = pr.cohort(10, tumour_mix={"gi_non_pancreatic": 1.0, "pancreatic": 1.0}, n_sims=50)
    assert sum(c.type_counts.values()) == 10
    assert c.type_counts["pancreatic"] == 5
    assert set(c.type_counts) <= set(TYPES)
    for kw, match in [
        (dict(n=0), "n=0"),
        (dict(n=2.5), "n=2.5"),
        (dict(n=10, tumour_mix={"midgutt": 1}), "tumour_mix key='midgutt'"),
        (dict(n=10, tumour_mix={"midgut": -1}), r"tumour_mix\['midgut'\]=-1"),
        (dict(n=10, tumour_mix={"midgut": 0}), "at least one positive"),
        (dict(n=10, prior_pfs_months="all"), "prior_pfs_months='all'"),
        (dict(n=10, planned_gbq=[14.9, -2.0]), "planned_gbq=-2.0"),
        (dict(n=10, line="X"), "line='X'"),
        (dict(n=10, n_sims=3), "n_sims=3"),
    ]:
        with pytest.raises(ValueError, match=match):
            pr.cohort(**kw)
    with pytest.warns(ExtrapolationWarning, match="new"):
        c = pr.cohort(20, tumour_mix={"appendiceal": 1}, new_type="population", n_sims=50)
    assert c.type_counts == {"appendiceal": 20}
    with pytest.warns(ExtrapolationWarning, match="below the 18-month"):
        pr.cohort(20, prior_pfs_months=[10.0, 30.0], n_sims=50)


def test_cohort_default_activities_follow_the_line(draws):
    assert default_activities("I-PRRT") == (0.0, 29.9)
    assert default_activities("R-PRRT") == (29.9, 14.9)
    assert default_activities("RR-PRRT") == (44.7, 15.0)  # cumulative after R-PRRT; RR phase
    assert default_activities("188Re-HEDP") == (40.8, 5.9)  # the pilot's medians
    with pytest.raises(ValueError, match="line='r-prrt'"):
        default_activities("r-prrt")
    pr = Predictor(draws)
    for line in ("I-PRRT", "RR-PRRT"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            c = pr.cohort(20, line=line, n_sims=50)
        # the defaults are calibrated: no extrapolation but the first line's truncation (its
        # published rows are of patients selected for PFS >= 18 months)
        msgs = [str(w.message) for w in caught]
        assert all("selected for a first-line PFS >= 18 months" in m for m in msgs), msgs
        assert len(msgs) == (line == "I-PRRT")
        assert np.all(np.isfinite(c.km_medians)) and np.all(c.km_medians > 0)


@pytest.mark.parametrize("line", ["I-PRRT", "RR-PRRT", "188Re-HEDP"])
def test_cohort_other_lines_are_finite(draws, line):
    pr = Predictor(draws)
    kw = {"I-PRRT": dict(prior_gbq=0.0, planned_gbq=29.6)}.get(
        line, dict(prior_gbq=44.7, planned_gbq=15.0 if line != "188Re-HEDP" else 3.0)
    )
    c = _quiet(pr.cohort, 30, line=line, n_sims=100, **kw)
    assert np.all(np.isfinite(c.km_medians)) and np.all(c.km_medians > 0)


# ---------------------------------------------------------------------------------------------
# no PyMC on the prediction path
# ---------------------------------------------------------------------------------------------
def test_prediction_path_imports_no_pymc(tmp_path):
    code = f"""
import sys, numpy as np
sys.path.insert(0, {str(__file__.rsplit("/", 1)[0])!r})
import netbayes.predict, netbayes.store, netbayes.formulas.survival, netbayes.formulas.toxicity
import netbayes.cli
from test_predict import fake_survival, fake_toxicity
p = netbayes.predict.Predictor(fake_survival(), fake_toxicity()).patient(
    tumour_type="midgut", prior_pfs_months=30.0, prior_gbq=29.9, planned_gbq=14.9,
    line="R-PRRT")
_ = p.summary, p.draws
heavy = [m for m in ("pymc", "pytensor", "arviz", "nutpie") if m in sys.modules]
assert not heavy, heavy
print("ok")
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "ok"


def test_predictor_uses_the_calibration_recorded_in_the_card(draws):
    """A loaded posterior brings the ranges it was calibrated on; they drive the warnings."""
    from netbayes.store import StoredPosterior

    cal = calibrated_ranges()
    card = {"calibration": dict(cal, prior_pfs_min={"R-PRRT": 40.0, "RR-PRRT": 14.0})}
    arrays = {k: v.reshape((1, *v.shape)) for k, v in draws.items()}
    sp = StoredPosterior("survival-pfs", card, arrays, {})
    pr = Predictor(sp)
    assert pr.ranges["prior_pfs_min"]["R-PRRT"] == 40.0
    assert pr.ranges["cumulative_gbq"] == cal["cumulative_gbq"]  # JSON pairs back to tuples
    with pytest.warns(ExtrapolationWarning, match="below the 40-month"):
        pr.patient(**STD_R)
    assert Predictor(draws).ranges == cal


def test_predictor_accepts_a_fit_result(draws):
    from test_store import fake_fit

    fit = fake_fit(draws)  # draws reshaped to 2 chains
    a = Predictor(fit).patient(**STD_R)
    b = Predictor(draws).patient(**STD_R)
    pd.testing.assert_frame_equal(a.summary, b.summary)


def test_predict_from_the_shipped_posteriors():
    from netbayes.predict import predict

    p = predict(**STD_R)
    s = p.summary.set_index(["quantity", "cell_line"], drop=False)
    med = p.summary[p.summary["quantity"] == "median_pfs"].iloc[0]
    # the R-PRRT midgut patient at the calibration's reference: a plausible salvage median
    assert 5 < med["eti95_lower"] < med["median"] < med["eti95_upper"] < 40
    assert len(s) == 1 + 2 + 4
    # the shipped posteriors keep their 4 chains of 1000 draws: ArviZ diagnostics work
    assert (p.draws.sizes["chain"], p.draws.sizes["draw"]) == (4, 1000)
    import arviz as az

    rhat = float(az.rhat(p.draws["median_pfs_months"].isel(patient=0)))
    ess = float(az.ess(p.draws["median_pfs_months"].isel(patient=0)))
    assert rhat < 1.01 and ess > 400  # a derived answer of a converged fit
    np.testing.assert_array_equal(
        p.draws["median_pfs_months"].values.reshape(1, -1), p.arrays["median_pfs_months"]
    )


# ---------------------------------------------------------------------------------------------
# typed accessors and other families
# ---------------------------------------------------------------------------------------------
def test_typed_accessors_read_the_summary(pred, draws):
    p = pred.patient(**STD_R, t_probs=[12, 24])
    lam = _lam_salvage(draws, TYPES.index("midgut"), 30.0, 29.9 + 14.9, "R-PRRT")
    med = stats.weibull_min.median(draws["k2"], scale=lam)
    m = p.median()
    assert m.quantity == "median_pfs" and m.unit == "months"
    assert m.median == pytest.approx(np.median(med), rel=1e-10)
    assert (m.lower, m.upper) == pytest.approx(tuple(Interval().bounds(med)), rel=1e-10)
    assert p.event_free_times() == (12.0, 24.0)
    sf24 = stats.weibull_min.sf(24.0, draws["k2"], scale=lam)
    assert p.p_event_free(24).mean == pytest.approx(sf24.mean(), rel=1e-10)
    with pytest.raises(KeyError, match=r"t=36 was not predicted; predicted times: 12, 24"):
        p.p_event_free(36)
    assert p.cell_lines() == ("leucocytes", "platelets", "haemoglobin", "any")
    assert 0 < p.p_grade3plus("platelets").median < p.p_grade3plus().median < 1
    with pytest.raises(ValueError, match=r"cell_line='marrow' is not allowed"):
        p.p_grade3plus("marrow")
    assert p.median().to_dict() == {
        "median": m.median,
        "mean": m.mean,
        "eti95_lower": m.lower,
        "eti95_upper": m.upper,
    }


def test_typed_accessors_without_toxicity(draws):
    p = Predictor(draws).patient(**STD_R)
    assert p.cell_lines() == ()
    with pytest.raises(ValueError, match="no toxicity posterior"):
        p.p_grade3plus()
    assert p.to_dict()["patients"][0]["p_grade3plus"] is None


def test_lognormal_family_prediction_matches_scipy(draws):
    """The same draws read as a log-normal posterior: S(t) and the median follow
    scipy's lognorm(s=1/k, scale=lam); the batch path equals the single-patient path."""
    pred = Predictor(draws, family="lognormal")
    assert pred.family.name == "lognormal"
    p = pred.patient(**STD_R, times=[0, 6, 12, 24], t_probs=[12])
    lam = _lam_salvage(draws, TYPES.index("midgut"), 30.0, 29.9 + 14.9, "R-PRRT")
    law = stats.lognorm(s=1.0 / draws["k2"][:, None], scale=lam[:, None])
    np.testing.assert_allclose(
        p.arrays["survival"][0], law.sf(np.array([0, 6, 12, 24.0])), rtol=1e-10
    )
    np.testing.assert_allclose(p.arrays["median_pfs_months"][0], lam, rtol=1e-12)
    # a coarse type (mixture) and the batch kernel
    df = pd.DataFrame([{**STD_R, "tumour_type": "gi_non_pancreatic"}, STD_R])
    batch = _quiet(pred.summaries, df, t_probs=[12])
    for i, rec in enumerate(df.to_dict("records")):
        one = _quiet(pred.patient, **rec, t_probs=[12])
        assert batch.loc[i, "median_pfs_median"] == pytest.approx(one.median().median, rel=1e-9)
        assert batch.loc[i, "p_pfs_gt_12_mean"] == pytest.approx(
            one.p_event_free(12).mean, rel=1e-9
        )
    with pytest.raises(ValueError, match=r"family='gamma' is not allowed"):
        Predictor(draws, family="gamma")
