"""The K-study simulator of the study level (issue 15, deliver 4).

The simulator must be the model's generative law: with tau = 0 and the Rotterdam design it
reproduces the one-study simulator's distribution of medians; a study effect u scales every
log-time scale of its study; the selection threshold truncates the first-line PFS of the
retreated patients; the same seed gives the same rows.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import netbayes.simulation as S
from netbayes import vocab
from netbayes.families import get_family
from netbayes.models.survival import SurvivalPriors
from netbayes.simulation import (
    SURVIVAL_ROW_COLUMNS,
    StudyDesign,
    draw_study_truth,
    draw_survival_truth,
    random_designs,
    rotterdam_mix,
    simulate_studies,
    simulate_study_patients,
    simulate_survival_study,
    type_counts,
)

PRIORS = SurvivalPriors()


def _truth(k: int = 1, u=None, **over) -> dict[str, np.ndarray]:
    tr = draw_survival_truth(PRIORS, np.random.default_rng(5))
    tr.update({key: np.asarray(v, float) for key, v in over.items()})
    u = np.zeros(k) if u is None else np.asarray(u, float)
    tr.update(tau=np.asarray(0.0), z_study=np.zeros(len(u)), u_study=u)
    return tr


def _km_median(t: np.ndarray, e: np.ndarray) -> tuple[float, float]:
    """Textbook KM median (first event time with S <= 1/2; NaN if not reached), no SE: a fast
    stand-in for lifelines in the distribution comparison, used by *both* simulators."""
    o = np.lexsort((1 - np.asarray(e), t))
    t, e = np.asarray(t, float)[o], np.asarray(e)[o]
    at_risk = len(t) - np.arange(len(t))
    s = np.cumprod(np.where(e == 1, 1 - 1 / at_risk, 1.0))
    i = np.flatnonzero((s <= 0.5 + 1e-12) & (e == 1))
    return (float(t[i[0]]) if i.size else math.nan), math.nan


def _compare(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """Means within 4 Monte Carlo SEs of their difference; SDs within exp(+-0.3).

    With R = 200 replicates per simulator, SE(diff of means) = sqrt(s_a^2/R + s_b^2/R):
    4 SEs is a two-sided false-alarm rate of 6e-5 per row (< 1e-3 over the 8 rows compared).
    log(s_a/s_b) has SE about sqrt(2/(2(R-1))) = 0.071, so 0.3 is 4.2 SEs. The seeds are
    fixed, so the test is deterministic; the tolerances say it would pass for most seeds.
    A misplaced selection (threshold) or activity term moves a mean by far more: e.g.
    dropping the 18-month truncation shifts the R-PRRT median by ~ beta_x x 0.5 on log scale.
    """
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    assert len(a) > 190 and len(b) > 190, what
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    assert abs(a.mean() - b.mean()) < 4 * se, (what, a.mean(), b.mean(), se)
    assert abs(math.log(a.std(ddof=1) / b.std(ddof=1))) < 0.3, (what, a.std(), b.std())


def test_tau0_rotterdam_design_matches_the_one_study_simulator(monkeypatch):
    """tau = 0, the Rotterdam R-PRRT design (168 patients, its type mix, 18-month selection,
    44.7 GBq): the per-type and all-tumour medians have the one-study simulator's distribution
    (200 replicates each, uncensored). Censored: a midgut-only study of 54 patients with
    follow-up U(0.5, 4) x its median is the one-study simulator's censored midgut row."""
    monkeypatch.setattr(S, "km_summary", _km_median)
    tr = _truth(beta_x=0.6)  # a visible prior-PFS effect: the selection matters
    reps = 200
    design = StudyDesign(
        "rot", 168, rotterdam_mix(), threshold=18.0, followup=None, report=("types", "all")
    )
    mid = StudyDesign("mid", 54, {"midgut": 1}, threshold=18.0, followup=(0.5, 4.0))
    old_u, old_c, new_u, new_c = [], [], [], []
    rng_old, rng_new = np.random.default_rng(11), np.random.default_rng(12)
    for _ in range(reps):
        s = simulate_survival_study(tr, rng_old, follow_up=(1e6, 1e6 + 1)).summaries
        r = s[(s["line"] == "R-PRRT") & (s["group"] == "retreatment")]
        old_u.append(r.set_index("tumour_type")["median_months"])
        s = simulate_survival_study(tr, rng_old).summaries
        old_c.append(s.loc[s["row_id"] == "t5_pfs_retre_rprrt_midgut", "median_months"].item())
        rows = simulate_studies(tr, [design], rng_new)
        new_u.append(rows.set_index("tumour_type")["median_months"])
        new_c.append(simulate_studies(tr, [mid], rng_new)["median_months"].item())
    old_df, new_df = pd.DataFrame(old_u), pd.DataFrame(new_u)
    assert sorted(new_df.columns) == sorted(old_df.columns)  # six types and "all"
    for col in old_df.columns:
        _compare(new_df[col].to_numpy(float), old_df[col].to_numpy(float), col)
    _compare(np.array(new_c), np.array(old_c), "midgut censored")


@pytest.mark.parametrize("beta_x", [0.0, 0.7])
def test_study_effect_scales_the_study_medians(beta_x):
    """u_s shifts the study's first-line and salvage log scales. Without selection the
    salvage times scale by exp(u (1 + beta_x)) (the prior PFS moves too): exactly, patient by
    patient, with the same random numbers; with beta_x = 0 that is exp(u), and a large
    uncensored study's KM median matches the family's median at scale lambda2 exp(u)."""
    u = 0.4
    tr = _truth(k=2, u=[0.0, u], beta_x=beta_x, beta_gbq=0.0)
    d = StudyDesign("a", 20001, {"midgut": 1}, threshold=0.0, followup=None)
    p0 = simulate_study_patients(tr, d, 0.0, np.random.default_rng(3))
    p1 = simulate_study_patients(tr, d, u, np.random.default_rng(3))
    np.testing.assert_allclose(p1["prior_pfs_months"], p0["prior_pfs_months"] * math.exp(u))
    np.testing.assert_allclose(p1["time_months"], p0["time_months"] * math.exp(u * (1 + beta_x)))
    rows = simulate_studies(
        tr, [d, StudyDesign("b", 20001, {"midgut": 1}, threshold=0.0, followup=None)],
        np.random.default_rng(4),
    )  # fmt: skip
    m0, m1 = rows["median_months"].to_numpy()
    ratio = math.exp(u * (1 + beta_x))
    # SE of a log KM median ~ 1 / (k2 log 2 sqrt(n)) times the spread of the prior-PFS term
    k2 = float(tr["k2"])
    sd_log = math.sqrt((1 / k2) ** 2 * 1.65 + (beta_x / float(tr["k1"])) ** 2 * 1.65)
    se_log = sd_log * 1.5 / math.sqrt(20001)
    assert abs(math.log(m1 / m0) - math.log(ratio)) < 4 * math.sqrt(2) * se_log
    if beta_x == 0.0:
        j = vocab.TUMOUR_TYPES.index("midgut")
        lam2 = math.exp(float(tr["alpha2"] + tr["sigma2"] * tr["z2"][j]))
        fam = get_family("weibull")
        for m, uu in ((m0, 0.0), (m1, u)):
            pop = float(fam.median(k2, lam2 * math.exp(uu)))
            assert abs(math.log(m / pop)) < 4 * se_log


def test_threshold_truncates_the_selected_prior_pfs():
    """Threshold 0: the first-line law itself; 12 and 18: that law conditioned on x >= the
    threshold (Kolmogorov-Smirnov against the exact CDFs; n = 3000, p > 0.001). With a
    positive beta_x a stricter selection lengthens the salvage PFS."""
    tr = _truth(beta_x=0.5)
    fam = get_family("weibull")
    j = vocab.TUMOUR_TYPES.index("pancreatic")
    k1 = float(tr["k1"])
    lam1 = math.exp(float(tr["alpha1"] + tr["sigma1"] * tr["z1"][j]))
    medians = []
    for thr in (0.0, 12.0, 18.0):
        d = StudyDesign("s", 3000, {"pancreatic": 1}, threshold=thr, followup=None)
        p = simulate_study_patients(tr, d, 0.0, np.random.default_rng(int(thr)))
        x = p["prior_pfs_months"].to_numpy()
        assert (x >= thr).all()
        s_thr = float(fam.sf(thr, k1, lam1)) if thr > 0 else 1.0

        def cdf(v, thr=thr, s_thr=s_thr):
            return (fam.cdf(np.maximum(v, thr), k1, lam1) - (1 - s_thr)) / s_thr

        assert stats.kstest(x, cdf).pvalue > 1e-3
        medians.append(np.median(p["time_months"]))
    assert medians[0] < medians[1] < medians[2]


def test_rows_follow_the_published_cohort_layout():
    tr = draw_study_truth(PRIORS, np.random.default_rng(0), 3)
    designs = [
        StudyDesign("a", 60, rotterdam_mix(), threshold=12.0, report=("all",)),
        StudyDesign("b", 40, {"midgut": 2, "pancreatic": 1}, threshold=0.0, cumulative_gbq=30.0),
        StudyDesign("c", 25, {"bronchial": 1}, report=("types", "all")),
    ]
    rows, pts = simulate_studies(tr, designs, np.random.default_rng(1), return_patients=True)
    assert list(rows.columns) == list(SURVIVAL_ROW_COLUMNS)
    assert list(rows["study"]) == ["a", "b", "b", "c", "c"]
    assert list(rows["tumour_type"]) == ["all", "midgut", "pancreatic", "bronchial", "all"]
    assert rows["row_id"].is_unique and (rows["line"] == "R-PRRT").all()
    a = rows.iloc[0]
    mix = np.array([a[f"mix_{t}"] for t in vocab.TUMOUR_TYPES])
    assert mix.sum() == a["n"] == 60
    assert (
        rows.loc[rows["tumour_type"] != "all", [f"mix_{t}" for t in vocab.TUMOUR_TYPES]]
        .isna()
        .all()
        .all()
    )
    assert list(rows.loc[rows["study"] == "b", "n"]) == [27, 13]  # 40 x (2/3, 1/3), rounded
    assert list(rows["selection_min_prior_pfs_months"]) == [12.0, 0.0, 0.0, 18.0, 18.0]
    assert list(rows["cumulative_gbq"]) == [44.7, 30.0, 30.0, 44.7, 44.7]
    ok = rows["se_months"].notna()
    np.testing.assert_allclose(
        rows.loc[ok, "ci95_upper_months"] - rows.loc[ok, "median_months"],
        1.959963984540054 * rows.loc[ok, "se_months"],
    )
    assert (rows["followup_months"] > 0).all()
    assert len(pts) == 125 and set(pts["study"]) == {"a", "b", "c"}
    assert 0 < (pts["event"] == 0).mean() < 0.5  # follow-up U(0.5, 4) x median
    with pytest.raises(ValueError, match="study effects"):
        simulate_studies(tr, designs[:2], np.random.default_rng(1))


def test_seeds_make_it_reproducible():
    def run(seed: int) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        tr = draw_study_truth(PRIORS, rng, 5)
        return simulate_studies(tr, random_designs(5, rng), rng)

    pd.testing.assert_frame_equal(run(7), run(7))
    assert not run(7)["median_months"].equals(run(8)["median_months"])
    # the shared part of a study truth is draw_survival_truth's, from the same stream
    t1 = draw_study_truth(PRIORS, np.random.default_rng(3), 4)
    t0 = draw_survival_truth(PRIORS, np.random.default_rng(3))
    for key, v in t0.items():
        np.testing.assert_array_equal(t1[key], v)
    np.testing.assert_allclose(t1["u_study"], t1["tau"] * t1["z_study"])
    assert t1["u_study"].shape == (4,) and t1["tau"] > 0


def test_random_designs_are_heterogeneous_and_valid():
    ds = random_designs(200, np.random.default_rng(0))
    n = np.array([d.n for d in ds])
    assert n.min() >= 20 and n.max() <= 170 and len(set(n)) > 50
    assert {d.threshold for d in ds} == {0.0, 12.0, 18.0}
    g = np.array([d.cumulative_gbq for d in ds])
    assert g.min() >= 30 and g.max() <= 55
    mf = np.array([sum(d.followup) / 2 for d in ds])
    assert mf.min() >= 1.5 and mf.max() <= 3.0
    assert {d.report for d in ds} == {("types",), ("all",)}
    assert len({d.study for d in ds}) == 200
    assert sum(type_counts(d.n, d.mix)["midgut"] if "midgut" in d.counts else 0 for d in ds) > 0


def test_design_validation():
    with pytest.raises(ValueError, match="n="):
        StudyDesign("x", 0, {"midgut": 1})
    with pytest.raises(ValueError, match="mix"):
        StudyDesign("x", 10, {"kidney": 1})
    with pytest.raises(ValueError, match="report"):
        StudyDesign("x", 10, {"midgut": 1}, report=("both",))
    with pytest.raises(ValueError, match="followup"):
        StudyDesign("x", 10, {"midgut": 1}, followup=(2.0, 1.0))
    with pytest.raises(ValueError, match="k="):
        draw_study_truth(PRIORS, np.random.default_rng(0), 0)


# ---------------------------------------------------------------------------------------------
# the coverage driver (benchmarks/study_coverage.py)
# ---------------------------------------------------------------------------------------------
def _driver():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "study_coverage.py"
    spec = importlib.util.spec_from_file_location("study_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _prior_draws(n: int, seed: int) -> dict[str, np.ndarray]:
    """Prior draws in the layout of a one-study posterior (a stand-in for a fit)."""
    rng = np.random.default_rng(seed)
    ts = [draw_study_truth(PRIORS, rng, 1) for _ in range(n)]
    d = {key: np.stack([np.asarray(t[key], float) for t in ts]) for key in ts[0]}
    d["gamma_re188"] = PRIORS["gamma_re188"].sample(rng, n)
    return d


def test_new_centre_truth_matches_the_new_centre_predictive():
    """The driver's new-centre KM median (the simulator) and the model's new-centre cohort
    predictive (``Predictor.cohort(centre="new")``) are the same law. A 'posterior' that is a
    point mass at one truth (tau = 0.2, beta_x = 0.7 so that the selection matters, beta_gbq =
    0.1) leaves as predictive the new centre's spread and the cohort's sampling: 400 truths
    (fresh u_new each) have uniform ranks among 2000 predictive draws (KS p > 0.001) and 90%
    coverage within 4 binomial SEs (0.06) of 0.9. Observed: p = 0.58, 0.91. Power: the truth
    simulated with a 12-month selection gives p = 5e-19 (coverage 0.81); 5 GBq more, p = 2e-4."""
    import warnings

    from netbayes.predict import Predictor

    sc = _driver()
    tr = draw_study_truth(PRIORS, np.random.default_rng(5), 1)
    tr.update(beta_x=np.asarray(0.7), tau=np.asarray(0.2), beta_gbq=np.asarray(0.1))
    draws = {key: np.repeat(np.asarray(v, float)[None], 2000, axis=0) for key, v in tr.items()}
    draws["gamma_re188"] = np.zeros(2000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        coh = Predictor(draws).cohort(
            sc.NEW_N, line="R-PRRT", tumour_mix=rotterdam_mix(), prior_gbq=sc.NEW_GBQ[0],
            planned_gbq=sc.NEW_GBQ[1], n_sims=2000, seed=0, centre="new",
        )  # fmt: skip
    pred = np.sort(coh.km_medians)
    rng = np.random.default_rng(2)
    truths = np.array([sc.new_centre_median(tr, rng)[1] for _ in range(400)])
    ranks = np.searchsorted(pred, truths) / len(pred)
    assert stats.kstest(ranks, "uniform").pvalue > 1e-3
    lo, hi = np.quantile(pred, [0.05, 0.95])
    cov = np.mean((truths >= lo) & (truths <= hi))
    assert abs(cov - 0.9) < 4 * math.sqrt(0.09 / 400), cov


def test_driver_scores_and_resumes(tmp_path):
    """Simulation-only run: records per (K, replicate), skipped on a rerun (resume), the
    same replicate gives the same record whatever ran before; scoring a stand-in posterior
    gives every target's 50%/90% indicators."""
    sc = _driver()
    out = tmp_path / "rep.jsonl"
    recs = sc.run((1, 3), 2, out, fit=False)
    assert sorted((r["K"], r["rep"]) for r in recs) == [(1, 0), (1, 1), (3, 0), (3, 1)]
    again = sc.run((1, 3), 2, out, fit=False)
    assert len(out.read_text().splitlines()) == 4 and len(again) == 4
    solo = sc.run((3,), 2, tmp_path / "solo.jsonl", fit=False)
    key = ["K", "rep", "tau", "u_new", "new_median", "n_rows"]
    assert [solo[1][k] for k in key] == [recs[3][k] for k in key]
    sim = sc.simulate_replicate(3, 1, 15)
    s = sc.score(sim, _prior_draws(300, 3), seed=0, n_sims=300)
    assert set(s) == set(sc.TARGETS)
    assert all({"in50", "in90", "post_sd", "truth"} <= set(v) for v in s.values())
    assert s["new_median"]["truth"] == sim["new_median"]
    if not sc.studies_api_available():
        with pytest.raises(NotImplementedError, match="studies="):
            sc.fit_studies(sim["rows"], 0)


def test_driver_summary_and_markdown():
    """The coverage table, its MC SEs and the posterior-SD table from scored records (a
    stand-in posterior: prior draws), as the full run writes them."""
    import argparse

    sc = _driver()
    draws = _prior_draws(300, 4)
    records = []
    for k in (1, 3):
        for rep in range(2):
            sim = sc.simulate_replicate(k, rep, 15)
            rec = sc._record(k, rep, 15, sim)
            rec.update(fit=sc.score(sim, draws, seed=rep, n_sims=300), divergences=0,
                       max_rhat=1.0, min_ess_bulk=500.0, seconds=1.0)  # fmt: skip
            records.append(rec)
    summ = sc.summarise(records)
    assert len(summ) == 2 * len(sc.TARGETS)
    assert summ["coverage90"].between(0, 1).all() and (summ["mc_se90"] > 0).all()
    row = summ[(summ["K"] == 1) & (summ["target"] == "tau")].iloc[0]
    hits = [r["fit"]["tau"]["in90"] for r in records if r["K"] == 1]
    assert row["coverage90"] == np.mean(hits)
    args = argparse.Namespace(draws=10, tune=10, chains=1, seed=15)
    md = sc.markdown(records, args)
    assert "## Coverage" in md and "## Posterior SD by K" in md and "new_median" in md


def test_rows_load_as_published_studies_and_build_the_model():
    """The simulated rows are valid published-cohort rows: ``load_published`` takes them
    (SEs as given; a clipped CI is labelled ``upper`` as ``cohorts.wald_se`` would) and the
    model builds on them with one study effect per design."""
    from netbayes.calibration import load_published
    from netbayes.cohorts import wald_se
    from netbayes.models.survival import SurvivalModel

    rng = np.random.default_rng(0)
    tr = _truth(k=4, u=[0.1, -0.2, 0.0, 0.3], beta_x=0.3)
    rows = simulate_studies(tr, random_designs(4, rng), rng)
    ps = load_published(rows, name="simulated")
    assert list(ps.studies) == [f"sim{i:02d}" for i in range(4)]
    np.testing.assert_allclose(ps.survival["se_months"], rows["se_months"])
    _, src = wald_se(rows["median_months"], rows["ci95_lower_months"], rows["ci95_upper_months"])
    assert list(src) == list(rows["se_source"])
    sm = SurvivalModel("pfs", studies=[rows], include_published=False)
    assert sm.studies == list(ps.studies)
    sm.build()


@pytest.mark.slow
def test_study_coverage_driver_fits_one_replicate(tmp_path):
    """The driver end to end with short chains: K = 3, one replicate, every target scored."""
    sc = _driver()
    recs = sc.run((3,), 1, tmp_path / "r.jsonl", draws=100, tune=150, chains=2)
    assert len(recs) == 1 and set(recs[0]["fit"]) == set(sc.TARGETS)
    assert np.isfinite([v["post_sd"] for v in recs[0]["fit"].values()]).all()
    assert not sc.summarise(recs).empty


def test_one_study_truth_draws_u_and_shifts_every_intercept():
    """A one-study simulation under the study level: u = tau z from the priors, the study's
    intercepts shifted by u, the population parameters (the targets) left as drawn, and the
    same random stream as :func:`draw_study_truth` with k = 1."""
    from netbayes.models.survival import SurvivalModel
    from netbayes.simulation import draw_os_truth, one_study_truth

    os_priors = SurvivalModel("os", exclude_studies=("re188pilot",)).priors
    base = draw_os_truth(os_priors, np.random.default_rng(3))
    full, study = one_study_truth(base, os_priors, np.random.default_rng(4))
    u = float(full["u_study"][0])
    assert u == pytest.approx(float(full["tau"]) * float(full["z_study"][0]))
    assert u != 0.0
    for name in ("alpha1", "alpha2", "alpha1_os"):
        assert float(full[name]) == float(base[name])
        assert float(study[name]) == pytest.approx(float(base[name]) + u, abs=1e-12)
    for name in ("k1", "k2", "sigma1", "z1", "beta_x", "k1_os", "z1_os"):
        np.testing.assert_array_equal(study[name], base[name])
    # the stream: truth then (tau, z), as draw_study_truth(k=1) draws it
    rng = np.random.default_rng(8)
    ref = draw_study_truth(PRIORS, np.random.default_rng(8), 1)
    full2, _ = one_study_truth(draw_survival_truth(PRIORS, rng), PRIORS, rng)
    for name in ("tau", "z_study", "u_study", "alpha1", "k2"):
        np.testing.assert_array_equal(full2[name], ref[name])


def test_one_study_truth_u_has_the_prior_spread():
    """Var(u) = E[tau^2] over the prior (2000 draws: the SD of the sample variance of a
    scale mixture is below 10% of it, so a 25% tolerance cannot be met by u = 0 or u = tau)."""
    from netbayes.simulation import one_study_truth

    rng = np.random.default_rng(11)
    base = draw_survival_truth(PRIORS, rng)
    us = np.array([float(one_study_truth(base, PRIORS, rng)[0]["u_study"][0]) for _ in range(2000)])
    tau2 = np.mean(np.asarray(PRIORS["tau"].sample(np.random.default_rng(12), 20000)) ** 2)
    assert abs(us.mean()) < 4 * math.sqrt(tau2 / 2000)
    assert us.var() == pytest.approx(tau2, rel=0.25)
