"""Law summaries of predictions (survival, hazard, cumhaz, rmst, quantile) and standardised
(population-averaged) predictions, on injected posteriors (no MCMC).

The references are independent: the curve and the P(T > t) the prediction already reports,
the SciPy Weibull law per draw, numerical integration and differentiation of the survival
draws, and the patients' own predictions averaged by hand. Tolerances are floating-point or
quadrature ones (every quantity is a deterministic function of the draws).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from test_predict import STD_R, fake_survival, fake_toxicity

from netbayes import vocab
from netbayes.intervals import Interval
from netbayes.predict import ExtrapolationWarning, Predictor, PriorDominatedWarning


def _d(da):
    """Draws with the chains stacked: (patient, chain, draw, ...) -> (patient, S, ...)."""
    a = da.values
    return (
        a.reshape(a.shape[0], -1, *a.shape[3:])
        if "patient" in da.dims or "population" in da.dims
        else a.reshape(-1, *a.shape[2:])
    )


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        warnings.simplefilter("ignore", PriorDominatedWarning)
        return fn(*a, **k)


@pytest.fixture(scope="module")
def pred():
    return Predictor(fake_survival(), fake_toxicity())


@pytest.fixture(scope="module")
def two(pred):
    """A known type (one component) and a coarse type (a mixture over the fine types)."""
    df = pd.DataFrame(
        [dict(STD_R), dict(STD_R, tumour_type="gi_non_pancreatic")], index=["fine", "coarse"]
    )
    return _quiet(pred.patients, df, times=np.linspace(0, 60, 601))


def test_survival_and_quantile_repeat_the_reported_answers(two):
    """S(t) at the P(T > t) times and on the curve grid, and the 0.5 quantile, are the draws
    the prediction already reports (same draws, same reducer)."""
    s = two.survival([12.0, 24.0], draws=True)
    np.testing.assert_allclose(_d(s), _d(two.draws["p_pfs_gt"]), rtol=1e-12)
    grid = two.draws["survival"]
    got = two.survival(grid["t_months"].values, draws=True)
    assert got.dims == ("patient", "chain", "draw", "t_months")
    np.testing.assert_allclose(got.values, grid.values, rtol=1e-12, atol=1e-15)
    q = _d(two.quantile(0.5, draws=True))[..., 0]
    np.testing.assert_allclose(q, _d(two.draws["median_pfs_months"]), rtol=1e-10)
    tab = two.survival(12.0)
    rep = two.summary[(two.summary["quantity"] == "p_pfs_gt") & (two.summary["t_months"] == 12)]
    np.testing.assert_allclose(tab["median"], rep["median"], rtol=1e-12)
    np.testing.assert_allclose(tab["eti95_upper"], rep["eti95_upper"], rtol=1e-12)


def test_fine_type_law_is_the_scipy_weibull_per_draw(two):
    k, lam, w = two.laws["fine"]
    assert lam.shape[1] == 1 and w.tolist() == [1.0]
    ref = stats.weibull_min(c=k, scale=lam[:, 0])
    t = np.array([3.0, 12.0, 30.0])
    h = _d(two.hazard(t, "fine", draws=True))[0]
    np.testing.assert_allclose(h, np.exp(ref.logpdf(t[:, None]) - ref.logsf(t[:, None])).T,
                               rtol=1e-10)  # fmt: skip
    H = _d(two.cumhaz(t, "fine", draws=True))[0]
    np.testing.assert_allclose(H, -ref.logsf(t[:, None]).T, rtol=1e-10)
    q = _d(two.quantile([0.1, 0.9], "fine", draws=True))[0]
    np.testing.assert_allclose(q, ref.ppf(np.array([[0.1], [0.9]])).T, rtol=1e-10)
    r = _d(two.rmst(24.0, "fine", draws=True))[0, :, 0]
    for j in (0, 17, 399):
        want = integrate.quad(lambda x, j=j: ref.sf(x)[j], 0, 24.0, epsabs=1e-12)[0]
        assert r[j] == pytest.approx(want, rel=1e-9)


def test_mixture_law_by_numerical_calculus(two):
    """The coarse type's mixture: RMST against the trapezoid integral of its survival draws on
    a 0.1-month grid (error <= tau h^2 max|S''| / 12 < 1e-4 months), the hazard against the
    numerical derivative of -log S, H = -log S."""
    assert two.laws["coarse"][1].shape[1] > 1
    grid = _d(two.draws["survival"].sel(patient="coarse"))  # (draws, 601) on 0..60
    t = two.draws["survival"]["t_months"].values
    r = _d(two.rmst([24.0, 60.0], "coarse", draws=True))[0]
    np.testing.assert_allclose(r[:, 0], integrate.trapezoid(grid[:, :241], t[:241]), atol=1e-4)
    np.testing.assert_allclose(r[:, 1], integrate.trapezoid(grid, t), atol=2e-4)
    H = _d(two.cumhaz(t[1:], "coarse", draws=True))[0]
    np.testing.assert_allclose(H, -np.log(grid[:, 1:]), rtol=1e-10, atol=1e-14)
    h = _d(two.hazard(12.0, "coarse", draws=True))[0, :, 0]
    eps = 1e-5
    Hm, Hp = _d(two.cumhaz([12.0 - eps, 12.0 + eps], "coarse", draws=True))[0].T
    np.testing.assert_allclose(h, (Hp - Hm) / (2 * eps), rtol=1e-6)
    q = _d(two.quantile([0.25, 0.75], "coarse", draws=True))[0]
    s = _d(two.survival(q[:, 0], "coarse", draws=True))[0]  # (draws, draws)
    np.testing.assert_allclose(np.diagonal(s), 0.75, atol=1e-10)


def test_tables_are_the_interval_of_the_draws(two):
    d = two.rmst([24.0, 60.0], draws=True)
    assert d.dims == ("patient", "chain", "draw", "tau_months") and d.attrs["unit"] == "months"
    tab = two.rmst([24.0, 60.0])
    assert list(tab.columns) == ["patient", "quantity", "tau_months", "unit", "median", "mean",
                                 "eti95_lower", "eti95_upper"]  # fmt: skip
    assert tab["quantity"].unique().tolist() == ["rmst_pfs"] and len(tab) == 4
    x = d.sel(patient="coarse", tau_months=60.0).values
    row = tab[(tab["patient"] == "coarse") & (tab["tau_months"] == 60.0)].iloc[0]
    assert row["median"] == pytest.approx(np.median(x), rel=1e-12)
    assert row["eti95_lower"] == pytest.approx(np.quantile(x, 0.025), rel=1e-12)
    t80 = two.rmst(60.0, "fine", interval=Interval(0.8, "hdi"))
    assert {"hdi80_lower", "hdi80_upper"} <= set(t80.columns)
    # one patient by label, several by list, all by default; RMST can never exceed tau
    assert two.survival(6.0, "fine")["patient"].tolist() == ["fine"]
    assert len(two.survival(6.0, ["coarse", "fine"])) == 2
    assert np.all(d.values <= np.array([24.0, 60.0]) + 1e-12) and np.all(d.values > 0)


@pytest.mark.parametrize(
    ("method", "value", "match"),
    [
        ("survival", -1.0, r"t=-1.0 must be times >= 0"),
        ("hazard", 0.0, r"t=0.0 must be times after 0"),
        ("rmst", [24.0, 0.0], r"tau=\[24.0, 0.0\] must be horizons after 0"),
        ("quantile", 1.0, r"p=1.0 must lie strictly between 0 and 1"),
        ("quantile", [0.5, np.nan], r"must be finite"),
        ("survival", "12", r"'12' is not a number"),
        ("cumhaz", True, r"True is not a number"),
        ("survival", [], r"non-empty"),
    ],
)
def test_bad_arguments_name_the_argument(two, method, value, match):
    with pytest.raises(ValueError, match=match):
        getattr(two, method)(value)


def test_unknown_patient(two):
    with pytest.raises(
        KeyError, match=r"patient 'nobody' not found; patients: \['fine', 'coarse'\]"
    ):
        two.rmst(24.0, "nobody")


# -- standardised predictions -------------------------------------------------------------------
MIX = pd.DataFrame(
    [
        dict(STD_R),
        dict(STD_R, tumour_type="pancreatic", prior_pfs_months=20.0),
        dict(STD_R, tumour_type="gi_non_pancreatic"),
        dict(tumour_type="bronchial", line="I-PRRT", planned_gbq=29.6),
        dict(STD_R, line="RR-PRRT", prior_pfs_months=16.0, prior_gbq=44.8, planned_gbq=14.8),
    ],
    index=list("abcde"),
)


@pytest.fixture(scope="module")
def mix_pred(pred):
    return _quiet(pred.patients, MIX, times=np.linspace(0, 60, 121))


@pytest.fixture(scope="module")
def std(pred):
    return _quiet(pred.standardise, MIX, times=np.linspace(0, 60, 121), rmst_tau=[24.0])


def test_standardised_curve_is_the_average_of_the_patients_curves(std, mix_pred):
    """Per draw, S-bar(t) is the mean of the patients' S(t); the standardised median solves
    S-bar = 1/2 (and is not the mean of the patients' medians); RMST-bar is the mean RMST."""
    s_bar = _d(mix_pred.draws["survival"]).mean(axis=0)
    got = _d(std.survival(np.linspace(0, 60, 121), draws=True))[0]
    np.testing.assert_allclose(got, s_bar, rtol=1e-12, atol=1e-15)
    desc = std.interval.describe(s_bar, axis=0)
    np.testing.assert_allclose(std.curve["median"], desc["median"], rtol=1e-12)
    med = _d(std.quantile(0.5, draws=True))[0, :, 0]
    s_at = _d(std.survival(med, draws=True))[0]
    np.testing.assert_allclose(np.diagonal(s_at), 0.5, atol=1e-10)
    mean_of_medians = _d(mix_pred.draws["median_pfs_months"]).mean(axis=0)
    assert np.max(np.abs(med - mean_of_medians)) > 0.1  # a different quantity
    r = _d(mix_pred.rmst(24.0, draws=True))[:, :, 0].mean(axis=0)
    np.testing.assert_allclose(_d(std.rmst(24.0, draws=True))[0, :, 0], r, rtol=1e-12)
    row = std.summary[std.summary["quantity"] == "rmst_pfs"].iloc[0]
    assert row["t_months"] == 24.0 and row["median"] == pytest.approx(np.median(r), rel=1e-12)
    assert std.median().median == pytest.approx(np.median(med), rel=1e-12)
    p12 = std.summary[(std.summary["quantity"] == "p_pfs_gt") & (std.summary["t_months"] == 12)]
    s12 = _d(mix_pred.draws["p_pfs_gt"].sel(t_prob=12.0)).mean(axis=0)
    assert p12["median"].iloc[0] == pytest.approx(np.median(s12), rel=1e-12)


def test_standardised_risk_is_the_average_risk(std, mix_pred):
    risk = _d(mix_pred.draws["p_grade3plus"]).mean(axis=0)  # (tox draws, 4)
    np.testing.assert_allclose(std.risk_draws, risk, rtol=1e-12)
    rows = std.summary[std.summary["quantity"] == "p_grade3plus"]
    assert rows["cell_line"].tolist() == [*vocab.CELL_LINES, "any"]
    assert rows["median"].iloc[-1] == pytest.approx(np.median(risk[:, -1]), rel=1e-12)


def test_standardise_weights_and_duplicates(pred):
    one = _quiet(pred.patient, **STD_R)
    df = pd.DataFrame([dict(STD_R), dict(STD_R, tumour_type="pancreatic")], index=["x", "y"])
    only_x = _quiet(pred.standardise, df, weights=[1.0, 0.0])
    assert only_x.median().median == pytest.approx(one.median().median, rel=1e-9)
    assert only_x.median().upper == pytest.approx(one.median().upper, rel=1e-9)
    dup = _quiet(pred.standardise, pd.DataFrame([dict(STD_R)] * 3))
    assert len(dup.law[2]) == 1  # identical patients are one component
    t = [6.0, 18.0]
    got, want = _d(dup.survival(t, draws=True))[0], _d(one.survival(t, draws=True))[0]
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # a weight column, normalised
    w = df.assign(n=[3, 1])
    a = _quiet(pred.standardise, w, weights="n")
    b = _quiet(
        pred.standardise, pd.DataFrame([dict(STD_R)] * 3 + [dict(STD_R, tumour_type="pancreatic")])
    )
    got, want = _d(a.survival(12.0, draws=True)), _d(b.survival(12.0, draws=True))
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert a.patients["weight"].tolist() == [0.75, 0.25] and a.n == 2


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([1.0], r"weights=.*one per row of df \(2\)"),
        ([1.0, -1.0], r"weights=.*finite non-negative numbers, not all zero"),
        ([0, 0], r"not all zero"),
        (["a", 1], r"weights='a'.*non-negative numbers"),
        ("size", r"weights='size'.*a column of df"),
    ],
)
def test_standardise_bad_weights(pred, weights, match):
    df = pd.DataFrame([dict(STD_R), dict(STD_R, tumour_type="pancreatic")])
    with pytest.raises(ValueError, match=match):
        pred.standardise(df, weights=weights)


def test_standardise_records_the_mix_and_warns_per_kind(pred):
    df = pd.DataFrame([dict(tumour_type="midgut", line="I-PRRT", planned_gbq=29.6)] * 3)
    with pytest.warns(ExtrapolationWarning, match=r"3 of 3 patients extrapolate") as rec:
        warnings.simplefilter("ignore", PriorDominatedWarning)
        s = pred.standardise(df)
    assert sum(issubclass(r.category, ExtrapolationWarning) for r in rec) == 1
    assert s.patients["extrapolation"].str.len().gt(0).all()
    assert "prior_share" in s.summary and s.summary["prior_share"].between(0, 1).all()
    assert s.sentence().startswith("standardised median PFS after I-PRRT over 3 patients")
    with pytest.raises(ValueError, match=r"rmst_tau"):
        pred.standardise(df, rmst_tau=[0.0])


def test_batch_summaries_rmst_equal_the_one_patient_path(pred, mix_pred):
    """``summaries(rmst_tau=...)`` gives the RMST of :meth:`Prediction.rmst` per patient (same
    closed form; the summaries reduce the same draws), with its prior share on the log scale,
    and leaves the other columns as they were."""
    with_r = _quiet(pred.summaries, MIX, rmst_tau=[24.0, 6.5])
    without = _quiet(pred.summaries, MIX)
    tab = mix_pred.rmst([6.5, 24.0])
    for lab in MIX.index:
        for tau, name in ((24.0, "rmst_pfs_24"), (6.5, "rmst_pfs_6.5")):
            row = tab[(tab["patient"] == lab) & (tab["tau_months"] == tau)].iloc[0]
            for st in ("median", "mean", "eti95_lower", "eti95_upper"):
                assert with_r.loc[lab, f"{name}_{st}"] == pytest.approx(row[st], rel=1e-12)
    assert (
        with_r[["rmst_pfs_24_prior_share", "rmst_pfs_6.5_prior_share"]].stack().between(0, 1).all()
    )
    pd.testing.assert_frame_equal(with_r[without.columns], without)
    with pytest.raises(ValueError, match=r"rmst_tau=\[0.0\] is not allowed"):
        pred.summaries(MIX, rmst_tau=[0.0])


def test_standardised_sentence_says_what_was_averaged(pred):
    df = pd.DataFrame([dict(STD_R), dict(STD_R, tumour_type="pancreatic", line="RR-PRRT",
                                         prior_gbq=44.8, planned_gbq=14.8)])  # fmt: skip
    s = _quiet(pred.standardise, df, weights=[3, 1])
    m = s.median()
    assert s.sentence() == (
        f"standardised median PFS over a weighted mix of 2 profiles {m.median:.1f} months "
        f"(95% ETI {m.lower:.1f}-{m.upper:.1f})"
    )


def test_batch_summaries_quantiles_equal_the_one_patient_path(pred, mix_pred):
    """``summaries(quantiles=...)`` gives :meth:`Prediction.quantile` per patient (closed form
    for one component; the same bisection for a coarse type's mixture), with prior shares;
    the 0.5 quantile is the median column."""
    got = _quiet(pred.summaries, MIX, quantiles=[0.25, 0.5])
    tab = mix_pred.quantile([0.25, 0.5])
    for lab in MIX.index:
        for p in (0.25, 0.5):
            row = tab[(tab["patient"] == lab) & (tab["p"] == p)].iloc[0]
            for st in ("median", "eti95_lower", "eti95_upper"):
                assert got.loc[lab, f"quantile_pfs_{p:g}_{st}"] == pytest.approx(row[st], rel=1e-9)
        assert got.loc[lab, "quantile_pfs_0.5_median"] == pytest.approx(
            got.loc[lab, "median_pfs_median"], rel=1e-9
        )
    assert got["quantile_pfs_0.25_prior_share"].between(0, 1).all()
    with pytest.raises(ValueError, match=r"quantiles=\[1.0\] is not allowed"):
        pred.summaries(MIX, quantiles=[1.0])


def test_standardise_without_prior_share_gives_the_same_answers(pred, std):
    quick = _quiet(pred.standardise, MIX, times=np.linspace(0, 60, 121), rmst_tau=[24.0],
                   prior_share=False)  # fmt: skip
    assert quick.summary["prior_share"].isna().all()
    pd.testing.assert_frame_equal(quick.summary.drop(columns="prior_share"),
                                  std.summary.drop(columns="prior_share"))  # fmt: skip
