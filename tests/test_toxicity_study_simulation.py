"""The K-study toxicity simulator and its coverage driver (issue 15, deliver 4).

The simulator must be the model's generative law: the fraction of simulated patients with a
grade >= III cytopenia on any line equals the prediction formula's any-line risk at that
centre; the model's added-study term is the binomial of that same risk (tested in
``test_study_level.py``), so simulator, likelihood and predictive agree. The driver re-uses one
compiled model per K through data containers; that must give the log density of a model built
on the replicate's rows.
"""

from __future__ import annotations

import importlib.util
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from netbayes.models.toxicity import ToxicityModel, ToxicityPriors
from netbayes.simulation import (
    TOXICITY_ROW_COLUMNS,
    ToxicityStudyDesign,
    draw_toxicity_study_truth,
    random_toxicity_designs,
    simulate_toxicity_grades,
    simulate_toxicity_studies,
)

PRIORS = ToxicityPriors()


def _driver():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "toxicity_study_coverage.py"
    spec = importlib.util.spec_from_file_location("toxicity_study_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_truth_has_the_model_parameterisation():
    """tau_tox is on the marginal scale; the latent study effects are sqrt(1 + sigma_u^2)
    tau_tox z; the same seed gives the same truth."""
    a = draw_toxicity_study_truth(PRIORS, np.random.default_rng(1), 4)
    b = draw_toxicity_study_truth(PRIORS, np.random.default_rng(1), 4)
    assert a["v_study"].shape == (4,) and a["c3"].shape == (3,) and a["log_gap"].shape == (3, 3)
    np.testing.assert_allclose(
        a["v_study"], math.sqrt(1 + a["sigma_u"] ** 2) * a["tau_tox"] * a["z_study_tox"]
    )
    np.testing.assert_array_equal(a["v_study"], b["v_study"])
    assert a["tau_tox"] > 0 and a["sigma_u"] > 0


@pytest.mark.parametrize("line, planned", [("R-PRRT", 14.9), ("I-PRRT", 29.6), ("188Re-HEDP", 3.0)])
def test_simulated_any_line_fraction_is_the_formula_risk(line, planned):
    """40,000 simulated patients at a centre with latent effect v: the fraction with an any-line
    grade >= III equals ``grade3_risk`` with the cut points shifted by v (how prediction
    applies a centre) within 4 binomial SEs (<= 0.01); a wrong centre (v + 0.3) is rejected."""
    from netbayes.formulas import toxicity as ftox

    rng = np.random.default_rng(7)
    for _ in range(3):
        tr = draw_toxicity_study_truth(PRIORS, rng, 1)
        v = 0.4
        d = ToxicityStudyDesign("x", 40_000, planned_gbq=planned, prior_gbq=22.2, line=line)
        frac = float((simulate_toxicity_grades(tr, d, v, rng).max(axis=1) >= 3).mean())

        def risk(shift: float, tr=tr) -> float:
            th = {k: np.atleast_1d(np.asarray(tr[k], float)) for k in ftox.PARAMS}
            th["c3"], th["log_gap"] = th["c3"][None] - shift, th["log_gap"][None]
            return float(ftox.grade3_risk(th, [planned], [22.2], line)[1][0, 0])

        p = risk(v)
        se = math.sqrt(max(p * (1 - p), 1e-4) / 40_000)
        assert abs(frac - p) < 4 * se, (frac, p)
        if 0.05 < p < 0.95:
            assert abs(frac - risk(v + 0.3)) > 4 * se


def test_rows_are_published_rows_and_the_model_builds_on_them():
    """One ``any``/``3+`` row per design in the published layout; ``load_published`` and the
    model take them (one study effect per design, the packaged studies excluded)."""
    from netbayes.calibration import load_published

    rng = np.random.default_rng(0)
    designs = random_toxicity_designs(3, rng)
    tr = draw_toxicity_study_truth(PRIORS, rng, 3)
    rows = simulate_toxicity_studies(tr, designs, rng)
    assert list(rows.columns) == list(TOXICITY_ROW_COLUMNS)
    assert list(rows["study"]) == ["tox00", "tox01", "tox02"]
    assert (rows["count"] <= rows["n"]).all() and (rows["count"] >= 0).all()
    assert list(rows["n"]) == [d.n for d in designs]
    ps = load_published(rows, name="simulated")
    assert list(ps.studies) == ["tox00", "tox01", "tox02"]
    tm = ToxicityModel(studies=rows, exclude_studies=("rotterdam2019", "re188pilot"))
    assert tm.studies == ["tox00", "tox01", "tox02"]
    assert tm.build()["z_study_tox"].eval().shape == (3,)
    with pytest.raises(ValueError, match="3 study effects but 2 designs"):
        simulate_toxicity_studies(tr, designs[:2], rng)


def test_data_containers_give_the_log_density_of_a_fresh_model():
    """The driver swaps one replicate's counts, sizes and activities into a model built on
    another's (``pm.set_data``): the log density equals that of a model built on the new rows,
    at random points."""
    import pymc as pm

    sc = _driver()
    a = sc.simulate_replicate(3, 0, 15)["rows"]
    b = sc.simulate_replicate(3, 1, 15)["rows"]
    assert not np.allclose(a["count"], b["count"])
    m_a = ToxicityModel(studies=a, exclude_studies=sc.PACKAGED).build()
    m_b = ToxicityModel(studies=b, exclude_studies=sc.PACKAGED).build()
    with m_a:
        pm.set_data({
            "study_count": b["count"].to_numpy(float), "study_n": b["n"].to_numpy(float),
            "study_planned_gbq": b["planned_gbq"].to_numpy(float),
            "study_prior_gbq": b["prior_gbq"].to_numpy(float),
        })  # fmt: skip
    f_a, f_b = m_a.compile_logp(), m_b.compile_logp()
    rng = np.random.default_rng(2)
    ip = m_b.initial_point()
    for _ in range(3):
        p = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in ip.items()}
        assert float(f_a(p)) == pytest.approx(float(f_b(p)), rel=1e-12)


def _prior_draws(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = [draw_toxicity_study_truth(PRIORS, rng, 1) for _ in range(n)]
    return {k: np.stack([np.asarray(t[k], float) for t in ts]) for k in ts[0]}


def test_new_centre_count_pit_is_uniform_under_a_point_posterior():
    """A 'posterior' that is a point mass at the truth leaves as predictive the new centre's
    spread and the binomial sampling: the randomised PIT of 300 new-centre counts (fresh
    centre each) is uniform (KS p > 0.001) and its 90% coverage within 4 binomial SEs (0.07)
    of 0.9; the same with tau_tox set to 0 in the predictive (a one-centre answer) is rejected
    when the truth's tau_tox is large."""
    from scipy import stats

    sc = _driver()
    sim0 = sc.simulate_replicate(1, 0, 15)
    tr = dict(sim0["truth"])
    tr["tau_tox"] = 0.6
    draws = {k: np.repeat(np.asarray(v, float)[None], 1000, axis=0) for k, v in tr.items()}
    rng = np.random.default_rng(4)
    pits, pits_narrow = [], []
    narrow = dict(draws, tau_tox=np.zeros(1000))
    for i in range(300):
        v_new = math.sqrt(1 + tr["sigma_u"] ** 2) * tr["tau_tox"] * rng.normal()
        g = simulate_toxicity_grades(tr, sc.new_design(), v_new, rng)
        sim = dict(sim0, truth=tr, new_count=int((g.max(1) >= 3).sum()), v_new=v_new)
        sim["new_risk"] = float(sc.any_line_risk(tr, v_new)[0])
        pits.append(sc.score(sim, draws, seed=i)["new_count"]["rank"])
        pits_narrow.append(sc.score(sim, narrow, seed=i)["new_count"]["rank"])
    pits = np.array(pits)
    assert stats.kstest(pits, "uniform").pvalue > 1e-3
    cov = np.mean((pits >= 0.05) & (pits <= 0.95))
    assert abs(cov - 0.9) < 4 * math.sqrt(0.09 / 300), cov
    assert stats.kstest(pits_narrow, "uniform").pvalue < 1e-3


def test_driver_summary_and_markdown():
    """Scored stand-in records (prior draws as the posterior) give every target's coverage with
    MC SEs and the posterior-SD table."""
    import argparse

    sc = _driver()
    draws = _prior_draws(300, 4)
    records = []
    for k in (1, 3):
        for rep in range(2):
            sim = sc.simulate_replicate(k, rep, 15)
            rec = sc._record(k, rep, 15, sim)
            rec.update(fit=sc.score(sim, draws, seed=rep), divergences=0, max_rhat=1.0,
                       min_ess_bulk=500.0, seconds=1.0)  # fmt: skip
            records.append(rec)
    summ = sc.summarise(records)
    assert len(summ) == 2 * len(sc.TARGETS)
    row = summ[(summ["K"] == 3) & (summ["target"] == "tau_tox")].iloc[0]
    assert row["coverage90"] == np.mean([r["fit"]["tau_tox"]["in90"] for r in records[2:]])
    md = sc.markdown(records, argparse.Namespace(draws=10, tune=10, chains=1, seed=15))
    assert "## Coverage" in md and "new_count" in md and "## Posterior SD by K" in md
    assert isinstance(pd.DataFrame(records), pd.DataFrame)


@pytest.mark.slow
def test_driver_fits_and_resumes(tmp_path):
    """End to end with short chains: K = 1, two replicates, every target scored; a rerun
    skips them (resume)."""
    sc = _driver()
    out = tmp_path / "r.jsonl"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        recs = sc.run((1,), 2, out, draws=100, tune=150, chains=2)
    assert len(recs) == 2 and all(set(r["fit"]) == set(sc.TARGETS) for r in recs)
    assert np.isfinite([v["post_sd"] for r in recs for v in r["fit"].values()]).all()
    again = sc.run((1,), 2, out, draws=100, tune=150, chains=2)
    assert len(out.read_text().splitlines()) == 2 and len(again) == 2
