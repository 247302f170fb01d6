"""Prior-vs-posterior table and plot on injected draws (no MCMC)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import pytest

from netbayes.models.survival import SurvivalPriors
from netbayes.plots import (
    plot_prior_posterior,
    prior_posterior_data,
    prior_posterior_table,
)


def _draws():
    rng = np.random.default_rng(5)
    # beta_x learned (sd 0.14 vs prior 0.5); beta_gbq = its prior N(0, 0.15)
    return {"beta_x": rng.normal(0.5, 0.14, 8000), "beta_gbq": rng.normal(0.0, 0.15, 8000)}


def test_table_sd_ratio_tells_learned_from_prior_only():
    t = prior_posterior_table(_draws(), SurvivalPriors()).set_index("parameter")
    # sd of 8000 normal draws has relative MC error ~ 1/sqrt(2*8000) ~ 0.8%
    assert abs(t.loc["beta_x", "sd_ratio"] - 0.28) < 0.02
    assert abs(t.loc["beta_gbq", "sd_ratio"] - 1.0) < 0.03
    assert np.isclose(t.loc["beta_gbq", "prior_eti95_upper"], 1.959964 * 0.15)
    assert t.loc["beta_x", "posterior_eti95_lower"] > 0.2


def test_plot_data_densities_integrate_to_one_and_figure_has_panels():
    d = prior_posterior_data(_draws(), SurvivalPriors())
    for _, g in d.groupby("parameter"):
        x = g["x"].to_numpy()
        for col in ("prior_density", "posterior_density"):
            assert abs(np.trapezoid(g[col].to_numpy(), x) - 1) < 0.02
    fig = plot_prior_posterior(_draws(), SurvivalPriors())
    assert len(fig.axes) == 2
    assert [len(ax.lines) for ax in fig.axes] == [3, 3]  # prior, posterior, zero line
    from matplotlib.figure import Figure

    mine = Figure()
    axes = mine.subplots(1, 2)
    assert plot_prior_posterior(_draws(), SurvivalPriors(), ax=axes) is mine
    with pytest.raises(ValueError, match=r"ax has 1 axes; expected 2"):
        plot_prior_posterior(_draws(), SurvivalPriors(), ax=[axes[0]])


# ----------------------------------------------------------------------------------------------
# prediction and validation plots (shipped posteriors; no MCMC)
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def predictor():
    from netbayes.predict import Predictor

    return Predictor.load("pfs", toxicity=False)


def test_survival_curve_data_and_plot(predictor, tmp_path):
    from netbayes.plots import plot_survival_curve, survival_curve_data

    p = predictor.patient(
        tumour_type="midgut", line="R-PRRT", prior_pfs_months=30, prior_gbq=29.9, planned_gbq=14.9
    )
    d = survival_curve_data(p)
    assert list(d.columns) == ["curve", "t_months", "median", "mean", "eti95_lower", "eti95_upper"]
    assert (np.diff(d["median"]) <= 1e-12).all()  # S(t) non-increasing
    assert ((d["eti95_lower"] <= d["median"]) & (d["median"] <= d["eti95_upper"])).all()
    fig = plot_survival_curve(p, p, path=str(tmp_path / "c.png"))
    assert (tmp_path / "c.png").stat().st_size > 10_000
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert labels[0].startswith("patient 0") and "95% ETI band" in labels[0]
    assert labels[1].startswith("population: patient 0")


def test_type_forest_orders_types_and_labels_interval(predictor, tmp_path):
    from netbayes.plots import plot_type_forest, type_forest_data
    from netbayes.vocab import TUMOUR_TYPES

    d = type_forest_data(predictor)
    assert list(d["tumour_type"]) == list(TUMOUR_TYPES)
    assert (d["eti95_lower"] < d["median"]).all() and (d["median"] < d["eti95_upper"]).all()
    fig = plot_type_forest(predictor, path=str(tmp_path / "f.png"))
    assert "95% ETI" in fig.axes[0].get_xlabel()


def test_validation_plot_marks_outside_figures_red():
    from netbayes.plots import plot_validation, validation_plot_data
    from netbayes.store import load_posterior
    from netbayes.validation import validation_table

    bad = load_posterior("survival-pfs").all_draws()
    bad["alpha2"] = bad["alpha2"] + np.log(3.0)
    t = validation_table(bad)
    d = validation_plot_data(t)
    assert not d["label"].str.contains("months").any()
    fig = plot_validation(t)
    ax = fig.axes[0]
    red = [ln for ln in ax.get_lines() if ln.get_color() == "C3"]
    assert len(red) == 1 and len(red[0].get_xdata()) == int((~t["inside"]).sum())
    assert f"{int(t['inside'].sum())}/{len(t)} inside" in ax.get_title()


# -- a user's cohort: Kaplan-Meier over the posterior band (issue 18) ----------------------------
def test_kaplan_meier_matches_lifelines():
    """Ties between events, between censorings and across both, and a censoring at 0."""
    from lifelines import KaplanMeierFitter

    from netbayes.plots import kaplan_meier

    rng = np.random.default_rng(5)
    t = np.round(rng.exponential(12.0, 80))  # many ties
    t[:3] = 0.0
    e = rng.integers(0, 2, 80)
    km = kaplan_meier(t, e)
    ref = KaplanMeierFitter().fit(t, e)
    np.testing.assert_allclose(km["survival"], ref.survival_function_at_times(km["t_months"]),
                               rtol=1e-12)  # fmt: skip
    et = ref.event_table
    got = km.set_index("t_months").loc[et.index[et.index > 0]]
    np.testing.assert_array_equal(got["events"], et.loc[et.index > 0, "observed"])
    np.testing.assert_array_equal(got["at_risk"], et.loc[et.index > 0, "at_risk"])
    assert km["events"].sum() == e.sum() and km["censored"].sum() == (1 - e).sum()


@pytest.mark.parametrize(
    ("time", "event", "match"),
    [
        ([1.0, -2.0], [1, 0], r"time=-2.0 is not allowed; expected finite months >= 0"),
        ([1.0, np.nan], [1, 0], r"time=nan is not allowed"),
        ([1.0, 2.0], [1, 2], r"event=2 is not allowed; expected 1 \(event\) or 0 \(censored\)"),
        ([1.0, 2.0], [1], r"equal length, got 2 and 1"),
    ],
)
def test_kaplan_meier_bad_input(time, event, match):
    from netbayes.plots import kaplan_meier

    with pytest.raises(ValueError, match=match):
        kaplan_meier(time, event)


def test_km_overlay_band_is_the_standardised_curve_and_draws_into_given_axes(tmp_path):
    import warnings

    from matplotlib.figure import Figure
    from test_predict import STD_R, fake_survival

    from netbayes.plots import km_overlay_data, plot_km_overlay
    from netbayes.predict import Predictor

    pred = Predictor(fake_survival())
    df = pd.DataFrame([dict(STD_R), dict(STD_R, tumour_type="pancreatic")])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        std = pred.standardise(df)
        two = pred.patients(df)
    time, event = np.array([3.0, 8.0, 8.0, 20.0, 31.0]), np.array([1, 1, 0, 1, 0])
    band, km = km_overlay_data(std, time, event)
    assert band["t_months"].iloc[-1] == 31.0
    want = std.survival(band["t_months"].to_numpy())
    np.testing.assert_allclose(band["eti95_upper"], want["eti95_upper"], rtol=1e-12)
    assert km["survival"].tolist() == pytest.approx([1.0, 0.8, 0.6, 0.6 * 0.5, 0.3])
    with pytest.raises(ValueError, match=r"holds 2 patients; pass patient=<label>"):
        km_overlay_data(two, time, event)
    fig = Figure()
    ax = fig.add_subplot()
    out = plot_km_overlay(two, time, event, patient=1, ax=ax, path=str(tmp_path / "km.png"))
    assert out is fig and (tmp_path / "km.png").stat().st_size > 5000
    steps = [ln for ln in ax.get_lines() if ln.get_label().startswith("observed")]
    assert len(steps) == 1 and steps[0].get_label().endswith("n = 5")
    ticks = [ln for ln in ax.get_lines() if ln.get_label() == "censored"]
    np.testing.assert_allclose(ticks[0].get_xdata(), [8.0, 31.0])


def test_survival_curve_and_forest_draw_into_given_axes():
    """``ax=``: the caller's axes are drawn into and their figure returned; without it a bare
    Figure (no pyplot figure is opened)."""
    import warnings

    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure
    from test_predict import STD_R, fake_survival

    from netbayes.plots import plot_survival_curve, plot_type_forest
    from netbayes.predict import Predictor

    pred = Predictor(fake_survival())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = pred.patient(**STD_R)
        fig = Figure()
        a, b = fig.subplots(1, 2)
        assert plot_survival_curve(p, ax=a) is fig and plot_type_forest(pred, ax=b) is fig
        n_open = len(plt.get_fignums())
        own = plot_survival_curve(p)
    assert a.get_lines() and b.get_lines() and own is not fig
    assert len(plt.get_fignums()) == n_open


def test_validation_check_figure_has_units_and_its_rows():
    from matplotlib.figure import Figure

    from netbayes.plots import plot_validation, plot_validation_check

    table = pd.DataFrame(
        {
            "check": ["Table 5 PFS median"] * 2 + ["Table 6 grade III/IV counts"],
            "figure": ["PFS R-PRRT all (n=168) median, months", "PFS RR-PRRT all (n=13) median, "
                       "months", "R-PRRT leucocytes grade III, count"],
            "source": ["s"] * 3,
            "published": [14.6, 14.2, 3.0],
            "predicted_median": [14.3, 14.9, 2.0],
            "pi95_lower": [11.4, 7.3, 0.0],
            "pi95_upper": [17.6, 29.4, 6.0],
            "inside": [True, True, True],
            "in_likelihood": [False, True, True],
        }
    )  # fmt: skip
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_validation_check(table, "Table 5 PFS median", ax=ax) is fig
    assert ax.get_xlabel() == "months" and len(ax.get_yticks()) == 2
    assert ax.get_title().startswith("Table 5 PFS median: 2/2 inside")
    f2 = plot_validation_check(table, "Table 6 grade III/IV counts")
    assert f2.axes[0].get_xlabel() == "count (patients)"
    with pytest.raises(ValueError, match=r"check='Table 7' is not allowed; expected one of"):
        plot_validation_check(table, "Table 7")
    whole = plot_validation(table)
    assert [a.get_xlabel() for a in whole.axes] == ["months", "count (patients)"]


def test_plot_law_draws_the_summary_and_its_band():
    import warnings

    from matplotlib.figure import Figure
    from test_predict import STD_R, fake_survival

    from netbayes.plots import plot_law
    from netbayes.predict import Predictor

    pred = Predictor(fake_survival())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = pred.patient(**STD_R)
        std = pred.standardise(pd.DataFrame([dict(STD_R)] * 2))
    fig = Figure()
    ax = fig.add_subplot()
    grid = np.array([6.0, 12.0, 24.0])
    assert plot_law(p, "rmst", grid, ax=ax) is fig
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_ydata(), p.rmst(grid)["median"])
    assert ax.get_xlabel() == "horizon tau, months" and "restricted mean PFS" in ax.get_ylabel()
    f2 = plot_law(std, "hazard")
    assert f2.axes[0].get_lines()[0].get_label().startswith("standardised population")
    with pytest.raises(ValueError, match=r"kind='density' is not allowed"):
        plot_law(p, "density")
