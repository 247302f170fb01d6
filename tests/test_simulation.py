"""Simulated Rotterdam-style studies and their paper-style summaries (issue 3, item 5).

Fast tests check the summariser against hand computations and asymptotic theory and the
simulated design against the published one; one slow test runs the coverage benchmark's
own loop for 3 replicates (the smoke version of ``benchmarks/survival_coverage.py``).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from lifelines import KaplanMeierFitter

from netbayes.cohorts import survival_summaries
from netbayes.models.survival import SurvivalModel, SurvivalPriors
from netbayes.simulation import (
    draw_survival_truth,
    km_summary,
    simulate_survival_patients,
    simulate_survival_study,
    survival_targets,
)

ROOT = Path(__file__).resolve().parents[1]


def test_km_summary_matches_hand_computation():
    t = np.array([2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0])
    e = np.array([1, 1, 0, 1, 1, 1, 1, 1, 1, 1])
    med, se = km_summary(t, e)
    # KM: S = 0.9, 0.8 at 2, 3; censored at 4; then steps of 8 at risk 7, 6, 5, ...
    s = np.cumprod([0.9, 8 / 9, 6 / 7, 5 / 6, 4 / 5, 3 / 4, 2 / 3, 1 / 2, 0.0])
    times = np.array([2, 3, 5, 6, 7, 8, 9, 10, 11.0])
    assert med == times[np.argmax(s <= 0.5)] == 7.0
    at_risk = np.array([10, 9, 7, 6, 5, 4, 3, 2, 1.0])
    green = np.cumsum(1 / (at_risk * (at_risk - 1))[:5])[-1]  # events up to t = 7
    var = s[4] ** 2 * green
    u, s_u = 5.0, s[2]  # last S >= 0.55: S(5) = 0.6857
    low, s_l = 7.0, s[4]  # first S <= 0.45: S(7) = 0.4571
    assert se == pytest.approx(math.sqrt(var) / ((s_u - s_l) / (low - u)), rel=1e-12)
    assert med == KaplanMeierFitter().fit(t, e).median_survival_time_


def test_km_summary_undefined_cases_are_nan_not_errors():
    assert np.isnan(km_summary(np.array([5.0, 6.0]), np.array([1, 1]))[1])
    m, s = km_summary(np.array([5.0, 6.0, 7.0]), np.array([0, 0, 0]))
    assert np.isnan(m) and np.isnan(s)


def test_km_summary_se_agrees_with_asymptotic_theory():
    """Over 200 uncensored Weibull samples (n = 300): the mean summarised SE and the spread
    of the medians both match SE = m / (k ln2 sqrt(n)). MC error: the SD of 200 medians is
    within ~5% of its expectation (1 SE of an SD estimate is 1/sqrt(2*199) = 5%), so 15%
    tolerances are ~3 SE; the mean SE ratio has a far smaller MC error."""
    rng = np.random.default_rng(0)
    k, lam, n = 1.5, 20.0, 300
    m_true = lam * math.log(2) ** (1 / k)
    se_true = m_true / (k * math.log(2) * math.sqrt(n))
    res = np.array([km_summary(lam * rng.weibull(k, n), np.ones(n)) for _ in range(200)])
    assert np.mean(res[:, 1]) / se_true == pytest.approx(1.0, abs=0.15)
    assert np.std(res[:, 0], ddof=1) / se_true == pytest.approx(1.0, abs=0.15)
    assert np.mean(res[:, 0]) == pytest.approx(m_true, abs=3 * se_true / math.sqrt(200) + 0.05)


def _truth(**over):
    tr = draw_survival_truth(SurvivalPriors(), np.random.default_rng(5))
    tr.update({k: np.asarray(v, float) for k, v in over.items()})
    return tr


def test_simulated_study_has_the_published_design_and_selection():
    design = survival_summaries("pfs")
    st = simulate_survival_study(_truth(), np.random.default_rng(1))
    s = st.summaries
    assert list(s["row_id"]) == list(design["row_id"]) and list(s["n"]) == list(design["n"])
    # SEs appear only where the paper printed a CI
    assert not (s["se_months"].notna() & design["se_months"].isna()).any()
    p = st.patients
    assert (p.loc[p["line"] == "I-PRRT", "time_months"] >= 18.0).all()  # selection rule
    assert (p.loc[p["line"] == "RR-PRRT", "prior_pfs_months"] >= 14.0).all()
    counts = p.groupby(["group", "line"]).size()
    assert counts[("retreatment", "R-PRRT")] == 168 and counts[("control", "I-PRRT")] == 83
    # the "all" rows summarise exactly the type rows' patients
    r = p[(p["group"] == "retreatment") & (p["line"] == "R-PRRT")]
    km = KaplanMeierFitter().fit(r["time_months"], r["event"])
    assert s.loc[s["row_id"] == "t5_pfs_retre_rprrt_all", "median_months"].item() == (
        km.median_survival_time_
    )
    # Wald CI built from the SE and clipped at 0
    ok = s["se_months"].notna()
    assert np.allclose(
        s.loc[ok, "ci95_upper_months"] - s.loc[ok, "median_months"], 1.96 * s.loc[ok, "se_months"],
        rtol=1e-3,
    )  # fmt: skip
    assert (s["ci95_lower_months"].dropna() >= 0).all()


def test_spearman_responds_to_beta_x():
    """beta_x = 0: no link (|r_s| < 3/sqrt(167), a 3-SE bound); beta_x = 1.5, k2 = 3: strong."""
    rng = np.random.default_rng(2)
    r0 = simulate_survival_study(_truth(beta_x=0.0), rng).spearman
    r1 = simulate_survival_study(_truth(beta_x=1.5, k2=3.0, k1=1.0), rng).spearman
    assert abs(r0) < 3 / math.sqrt(167)
    assert r1 > 0.3


def test_spearman_uncensored_is_the_same_coefficient_before_censoring():
    """Without censoring the published-style and the uncensored coefficients coincide; with
    the design's censoring, a strong correlation is attenuated (censored times tie the ranks
    of the longest R-PRRT times to their follow-up)."""
    tr = _truth(beta_x=1.5, k2=3.0, k1=1.0)
    st = simulate_survival_study(tr, np.random.default_rng(4), follow_up=(1000.0, 1001.0))
    assert st.spearman == st.spearman_uncensored
    st = simulate_survival_study(tr, np.random.default_rng(4))
    assert 0.3 < st.spearman < st.spearman_uncensored


def test_simulated_patients_validate_and_follow_the_truth():
    tr = _truth(beta_gbq=0.0)
    d = simulate_survival_patients(tr, 400, np.random.default_rng(3))
    from netbayes.models.survival import validate_patients

    v = validate_patients(d)
    assert len(v) == 400 and v["cumulative_gbq"].between(40, 60).all()
    assert 0.5 < v["event"].mean() < 1.0  # censoring present but light


def test_targets_from_truth_and_draws_agree():
    tr = _truth()
    one = survival_targets(tr)
    stacked = {k: np.repeat(np.asarray(v)[None], 3, axis=0) for k, v in tr.items()}
    many = survival_targets(stacked)
    for k in one:
        np.testing.assert_allclose(many[k], np.full(3, one[k]))
    k1 = float(tr["k1"])
    lam = math.exp(float(tr["alpha1"] + tr["sigma1"] * tr["z1"][1]))
    assert one["median1[midgut]"] == pytest.approx(lam * math.log(2) ** (1 / k1))


# ----------------------------------------------------------------------------------------------
# the model's data containers
# ----------------------------------------------------------------------------------------------
def test_data_values_round_trip_and_design_check():
    sm = SurvivalModel("pfs")
    model = sm.build()
    vals = sm.data_values(sm.summaries)
    for name, v in vals.items():
        np.testing.assert_array_equal(model[name].get_value(), v)
    assert vals["spearman_obs"] == pytest.approx(0.325)
    bad = sm.summaries["pfs"].copy()
    bad.loc[bad["row_id"] == "t5_pfs_retre_rprrt_midgut", "n"] = 55
    with pytest.raises(ValueError, match="column 'n' differs"):
        sm.data_values({"pfs": bad})
    with pytest.raises(ValueError, match=r"spearman=1\.5"):
        sm.data_values(sm.summaries, spearman=1.5)


def test_missing_median_drops_its_terms_only():
    """A NaN median (not reached) removes the row: the log density no longer depends on it."""
    import pymc as pm

    sm = SurvivalModel("pfs")
    model = sm.build()
    f = model.compile_logp()
    ip = model.initial_point()
    s = sm.summaries["pfs"].copy()
    base = f(ip)
    row = s["row_id"] == "t5_pfs_retre_rprrt_pancreatic"
    s.loc[row, "median_months"] = 30.0
    with model:
        pm.set_data(sm.data_values({"pfs": s}))
    changed = f(ip)
    s.loc[row, "median_months"] = np.nan
    with model:
        pm.set_data(sm.data_values({"pfs": s}))
    dropped = f(ip)
    s.loc[row, "se_months"] = np.nan
    with model:
        pm.set_data(sm.data_values({"pfs": s}))
    assert changed != base and np.isfinite(dropped)
    assert f(ip) == dropped  # its SE term went with the median


# ----------------------------------------------------------------------------------------------
# smoke version of the coverage benchmark
# ----------------------------------------------------------------------------------------------
def _benchmark():
    spec = importlib.util.spec_from_file_location(
        "survival_coverage", ROOT / "benchmarks" / "survival_coverage.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_coverage_benchmark_smoke_three_replicates():
    """The benchmark's own loop, 3 replicates, short chains.

    27 targets (15, and the 12 medians at the study's own intercepts) x 3 replicates. With
    calibrated 90% intervals the expected coverage is 0.9 and, for independent targets, its SD
    is sqrt(0.09/81) = 0.033: fewer than 60% covered is a 9-SD event (less extreme, still
    rare, when targets within a replicate are correlated). A broken pipeline (targets
    mislabelled, data not swapped in, truth misaligned) fails."""
    bench = _benchmark()
    per_rep = bench.run_coverage(3, draws=200, tune=300, chains=2, verbose=False)
    assert per_rep["rep"].nunique() == 3
    groups = {**bench.GROUPS, **bench.STUDY_GROUPS}  # population and the study's own medians
    assert set(per_rep["target"]) == {n for g in groups.values() for n in g}
    # the study effect is drawn with the truth (u = 0 made the population medians over-cover)
    u = per_rep.groupby("rep")["u_study"].first()
    assert (u != 0).all() and u.nunique() == 3
    assert np.isfinite(per_rep[["truth", "post_mean", "post_sd"]].to_numpy()).all()
    assert per_rep["in90"].mean() >= 0.6
    # replicates differ (the summaries were swapped in) and are reproducible
    means = per_rep.pivot(index="rep", columns="target", values="post_mean")
    assert means["k2"].nunique() == 3
    summary = bench.summarise(per_rep)
    assert {"shape", "prior-PFS effect"} <= set(summary["group"])


@pytest.mark.parametrize("k", [1.5, 3.0])
def test_se_noise_scale_matches_the_kappa_prior(k):
    """The prior on ``kappa_se`` is the SE estimator's own noise scale: for n = 54 (the
    largest rows that inform the shapes) and the design's censoring, SD(log SE_hat/SE_asym)
    x sqrt(n) (SE_asym at the published median) lies inside the prior's central 95%. Over 200
    samples the SD's Monte Carlo SE is about 5% (0.15), and the interval is +-0.6 wide around
    3, so about 4 SEs."""
    kappa = SurvivalPriors().kappa_se
    med, sd_log = math.exp(kappa.mu), kappa.sigma
    rng = np.random.default_rng(3)
    n, lam, d = 54, 20.0, []
    for _ in range(200):
        t = lam * rng.weibull(k, n)
        c = np.median(t) * rng.uniform(0.5, 4.0, n)
        m, se = km_summary(np.minimum(t, c), (t <= c).astype(int))
        f = k / lam * (m / lam) ** (k - 1) * math.exp(-((m / lam) ** k))  # Weibull density
        d.append(math.log(se * f * math.sqrt(4 * n)))
    kappa_eff = float(np.std(d, ddof=1)) * math.sqrt(n)
    assert med * math.exp(-1.96 * sd_log) < kappa_eff < med * math.exp(1.96 * sd_log)


def test_an_old_lifelines_is_refused_not_used(monkeypatch):
    """pip next to pandas 3 picks a lifelines older than 0.30 (newer ones pin pandas<3): the
    simulators refuse it, naming the fix, rather than change their KM reference silently."""
    import lifelines

    from netbayes import simulation

    assert simulation._lifelines_km() is lifelines.KaplanMeierFitter
    monkeypatch.setattr(lifelines, "__version__", "0.27.8")
    with pytest.raises(ImportError, match=r"lifelines 0.27.8 is older than 0.30.*--override"):
        simulation.km_summary(np.array([1.0, 2.0, 3.0]), np.array([1, 1, 0]))
