"""Simulation-based calibration: the rank statistics (no MCMC) and a smoke run of the benchmark.

The statistics are checked on a conjugate normal model, where the exact posterior is known in
closed form: ranks of an exact posterior must look uniform, ranks of a posterior that is too
narrow (or shifted) must not. The smoke test runs the benchmark's own loop for a few
replicates of each model with short chains.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from netbayes.sbc import plot_rank_histograms, rank_of_truth, sbc_ranks, uniformity_table

ROOT = Path(__file__).resolve().parents[1]
L = 99


def _conjugate_ranks(n_reps: int, sd_scale: float, shift: float, seed: int) -> pd.DataFrame:
    """Prior N(0, 1), 5 observations N(theta, 1): posterior N(sum/(n+1), 1/sqrt(n+1)).

    ``sd_scale`` < 1 makes the posterior too narrow, ``shift`` biases it (in posterior SDs)."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_reps):
        theta = rng.normal(size=2)
        y = theta[:, None] + rng.normal(size=(2, 5))
        mean, sd = y.sum(1) / 6, 1 / math.sqrt(6)
        draws = mean + sd * (shift + sd_scale * rng.normal(size=(400, 2)))
        rows.append(sbc_ranks({"theta": draws}, {"theta": theta}, L, rng))
    return pd.DataFrame(rows)


def test_exact_posterior_gives_uniform_ranks():
    table = uniformity_table(_conjugate_ranks(400, 1.0, 0.0, seed=1), L)
    assert list(table["parameter"]) == ["theta[0]", "theta[1]"]
    # with a fixed seed these are two fixed p-values; under uniformity each is U(0, 1), so
    # p > 0.001 fails only by a 1-in-1000 accident of the seed, which we would have seen
    assert (table["p_value"] > 0.001).all()
    # mean of 400 uniform ranks: SD sqrt(1/12/400) = 0.014; 4 SD
    assert np.allclose(table["mean_rank"], 0.5, atol=0.06)
    # share outside the central 90%: SD sqrt(0.09/400) = 0.015; 4 SD
    assert np.allclose(table["outside_90"], 0.10, atol=0.06)


@pytest.mark.parametrize(("sd_scale", "shift"), [(0.6, 0.0), (1.0, 0.7), (1.8, 0.0)])
def test_miscalibrated_posteriors_are_detected(sd_scale, shift):
    table = uniformity_table(_conjugate_ranks(400, sd_scale, shift, seed=2), L)
    # too narrow: 90% intervals cover ~ 2*Phi(1.645*0.6)-1 = 68%; shifted by 0.7 SD: mean rank
    # far from 0.5; too wide: a hump. Each gives chi-square p-values far below 1e-6 at 400 reps.
    assert (table["p_value"] < 1e-6).all()
    if sd_scale < 1:
        assert (table["outside_90"] > 0.2).all()
    if shift:
        assert (table["mean_rank"] < 0.4).all()  # the truth sits low in a posterior shifted up
    if sd_scale > 1:
        assert (table["outside_90"] < 0.05).all()


def test_rank_of_truth_bounds_thinning_and_ties():
    rng = np.random.default_rng(0)
    x = np.arange(1000.0)
    assert rank_of_truth(x, -1.0, L, rng) == 0
    assert rank_of_truth(x, 1e6, L, rng) == L
    # evenly thinned: 99 draws spread over 0..999, about half below 500
    assert abs(rank_of_truth(x, 499.5, L, rng) - 49.5) <= 1
    # a truth equal to kept draws is ranked at random among the ties
    ties = [rank_of_truth(np.zeros(200), 0.0, L, rng) for _ in range(300)]
    assert min(ties) < 20 and max(ties) > 80


@pytest.mark.parametrize(
    ("draws", "truth", "n", "match"),
    [
        (np.array([1.0, np.nan]), 0.0, 1, "finite"),
        (np.ones(10), np.inf, 5, "finite"),
        (np.ones(10), 0.0, 11, "n_ranks=11"),
        (np.ones(10), 0.0, 0, "n_ranks=0"),
    ],
)
def test_rank_of_truth_refuses_bad_input(draws, truth, n, match):
    with pytest.raises(ValueError, match=match):
        rank_of_truth(draws, truth, n, np.random.default_rng(0))


def test_uniformity_table_matches_a_hand_computation_and_checks_bins():
    r = pd.DataFrame({"a": [0, 5, 10, 99, 99, 50, 51, 52, 12, 13]})
    t = uniformity_table(r, L, bins=10)
    counts = np.bincount(np.array(r["a"]) // 10, minlength=10)
    assert t.loc[0, "chi2"] == pytest.approx(stats.chisquare(counts).statistic)
    assert t.loc[0, "replicates"] == 10
    with pytest.raises(ValueError, match="divisible"):
        uniformity_table(r, 98, bins=10)


def test_rank_histogram_png(tmp_path):
    ranks = _conjugate_ranks(60, 1.0, 0.0, seed=3)
    out = plot_rank_histograms(ranks, L, tmp_path / "r.png", title="t", p_values={"theta[0]": 0.5})
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 5000


# ----------------------------------------------------------------------------------------------
# smoke version of the SBC benchmark
# ----------------------------------------------------------------------------------------------
def _benchmark():
    spec = importlib.util.spec_from_file_location("sbc_bench", ROOT / "benchmarks" / "sbc.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.parametrize("model", ["survival", "toxicity"])
def test_sbc_benchmark_smoke(model, tmp_path):
    """Two replicates of the benchmark's own loop with short chains, then its report.

    Every ranked parameter gets a rank in 0..L per replicate, the named labels are used, the
    resumable CSV holds the replicates, and the report writes the table and the PNG. A
    pipeline that swapped in no data or misaligned truth and draws would still give ranks, so
    the statistical check is the benchmark run itself; this guards the plumbing."""
    bench = _benchmark()
    csv = tmp_path / "ranks.csv"
    settings = {"draws": 100, "tune": 150}
    per_rep = bench.run_sbc(model, 2, out_csv=csv, settings=settings, verbose=False)
    assert list(per_rep["rep"]) == [0, 1]
    ranks = per_rep.drop(columns=bench.RANK_META)
    assert ranks.notna().all().all()
    assert ranks.to_numpy().min() >= 0 and ranks.to_numpy().max() <= bench.N_RANKS
    expected = {"survival": ["k2", "beta_x", "z1[midgut]"], "toxicity": ["theta", "c3[platelets]"]}
    assert set(expected[model]) <= set(ranks.columns)
    # resuming with the same number of replicates re-fits nothing
    assert len(bench.run_sbc(model, 2, out_csv=csv, settings=settings, verbose=False)) == 2
    table = bench.report(model, pd.read_csv(csv), tmp_path)
    assert set(table["parameter"]) == set(ranks.columns)
    assert (tmp_path / f"sbc_{model}_ranks.png").stat().st_size > 5000
