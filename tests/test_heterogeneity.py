"""The external priors of the between-study SDs τ and τ_tox (issue 15, item 1)."""

from __future__ import annotations

import math
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from netbayes.calibration import heterogeneity as H

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "tau_priors.md"


def _figure(row_id: str) -> H.MetaAnalysis:
    return next(m for m in H.meta_analyses() if m.row_id == row_id)


def _documented() -> dict[str, tuple[float, float]]:
    """``| `name` | median | sd_log |`` rows of the doc's result table."""
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `(tau_\w+)` \| ([\d.]+) \| ([\d.]+) \|", text, flags=re.MULTILINE)
    return {name: (float(med), float(sdl)) for name, med, sdl in rows}


def test_priors_recomputed_from_the_csv_equal_the_documented_values():
    """An edit of data/meta_analyses.csv or of the derivation changes these and fails here."""
    surv, tox = H.tau_prior_survival(), H.tau_prior_toxicity()
    assert _documented() == {
        "tau_survival": (surv.median, surv.sd_log),
        "tau_toxicity_marginal": (tox.median, tox.sd_log),
    }
    assert (surv.median, surv.sd_log) == (0.17, 0.59)
    assert (tox.median, tox.sd_log) == (0.34, 0.51)


def test_intermediate_numbers():
    t = H.derivation_table().set_index("row_id")
    s = t.loc["strosberg2021_pfs"]
    # SE(log) = (15.22 - 9.82)/3.92/12.52; tau^2 = I^2 k SE^2 = 0.505 * 7 * 0.1100^2
    assert s["se"] == pytest.approx(0.1100, abs=1e-4)
    assert s["tau"] == pytest.approx(math.sqrt(0.505 * 7 * 0.1100**2), rel=1e-3)
    assert s["q"] == pytest.approx(12.12, abs=0.01)
    k = t.loc["kim_salvage_pfs"]
    assert k["se"] == pytest.approx(3.7 / 3.919928 / 14.1, rel=1e-6)
    assert k["tau"] == pytest.approx(math.sqrt(k["k_se2"] - k["s2"]), rel=1e-9)
    # toxicity: (a) delta method at 5%, (b) arcsine-scale SE mapped to probit
    a = t.loc["strosberg2021_grade34_ae"]
    assert a["se"] == pytest.approx(0.06 / 3.919928 / 0.103136, rel=1e-4)
    assert t.loc["kim_salvage_haem_grade34", "k_assumed"]
    # the mixture's log-normal is what the priors report, before rounding
    assert t.loc["mixture", "median"].tolist() == [
        H.tau_prior_survival().median_exact,
        H.tau_prior_toxicity().median_exact,
    ]


def test_kim_toxicity_arcsine_se_is_close_to_the_probit_of_its_bounds():
    """The arcsine reading of the asymmetric CI (AUDIT M03) against transforming its bounds."""
    from scipy import stats

    m = _figure("kim_salvage_haem_grade34")
    assert m.ci_scale == "arcsine"
    bounds = (stats.norm.ppf(m.ci_high) - stats.norm.ppf(m.ci_low)) / (2 * H.Z95)
    assert float(H.pooled_se(m)) == pytest.approx(bounds, rel=0.02)


@pytest.mark.parametrize("row_id", ["strosberg2021_pfs"])
def test_larger_i2_gives_larger_tau(row_id):
    m = _figure(row_id)
    taus = [H.tau_point(replace(m, i2=i2))["tau"] for i2 in (0.2, 0.5, 0.8)]
    meds = [H.fit_lognormal(H.tau_draws(replace(m, i2=i2), 4000))[0] for i2 in (0.2, 0.5, 0.8)]
    assert taus == sorted(taus) and taus[0] < taus[-1]
    assert meds == sorted(meds) and meds[0] < meds[-1]


@pytest.mark.parametrize(
    "row_id",
    [
        "strosberg2021_pfs",
        "kim_salvage_pfs",
        "strosberg2021_grade34_ae",
        "kim_salvage_haem_grade34",
    ],
)
def test_wider_ci_gives_larger_tau(row_id):
    m = _figure(row_id)
    taus, meds = [], []
    for f in (0.8, 1.0, 1.25):
        w = replace(
            m,
            ci_low=m.estimate - f * (m.estimate - m.ci_low),
            ci_high=m.estimate + f * (m.ci_high - m.estimate),
        )
        taus.append(H.tau_point(w)["tau"])
        meds.append(H.fit_lognormal(H.tau_draws(w, 4000))[0])
    assert taus == sorted(taus) and taus[0] < taus[-1]
    assert meds == sorted(meds) and meds[0] < meds[-1]


def test_more_patients_per_study_gives_larger_tau_when_i2_is_not_printed():
    """Smaller within-study variance leaves more of k·SE² to τ² (the 'within' reading)."""
    m = _figure("kim_salvage_pfs")
    taus = [H.tau_point(replace(m, n_patients=n))["tau"] for n in (300, 426, 600)]
    assert taus == sorted(taus) and taus[0] < taus[-1]


def test_within_study_variances():
    # exponential without censoring: Var(log median) = 1/(n ln^2 2) = 2.08/n
    assert float(H.km_log_median_variance(100, 1.0)) == pytest.approx(2.0814 / 100, rel=1e-4)
    # no censoring before the median: J = 1; censoring before it inflates J
    assert float(H.greenwood_inflation(1.3, 12.0, 20.0, 60.0)) == pytest.approx(1.0, abs=1e-9)
    j = H.greenwood_inflation(np.array([1.0, 1.5]), 12.0, 0.0, 36.0)
    assert np.all(j > 1.0) and j[0] < j[1] + 0.2
    # J exact for exponential, G(t) = 1 - t/b: ln2 ∫ 2^v / (1 - m v / b) dv (v = t/m)
    from scipy import integrate

    exact = integrate.quad(lambda v: math.log(2) * 2**v / (1 - 12.0 * v / 36.0), 0, 1)[0]
    assert float(H.greenwood_inflation(1.0, 12.0, 0.0, 36.0)) == pytest.approx(exact, rel=1e-8)
    p, n = 0.05, 54.2
    z = -1.6448536
    assert float(H.binomial_probit_variance(p, n)) == pytest.approx(
        p * (1 - p) / (n * (math.exp(-z * z / 2) / math.sqrt(2 * math.pi)) ** 2), rel=1e-6
    )


def test_latent_conversion():
    assert float(H.latent_tau(0.34, 0.0)) == pytest.approx(0.34)
    assert float(H.latent_tau(0.34, 0.75)) == pytest.approx(0.34 * 1.25)
    out = H.latent_tau(np.array([0.1, 0.2]), np.array([[0.0], [math.sqrt(3.0)]]))
    np.testing.assert_allclose(out, [[0.1, 0.2], [0.2, 0.4]])


def test_deterministic_and_lognormal_fit():
    m = _figure("kim_salvage_pfs")
    np.testing.assert_array_equal(H.tau_draws(m, 1000), H.tau_draws(m, 1000))
    rng = np.random.default_rng(3)
    med, sdl = H.fit_lognormal(0.2 * np.exp(0.5 * rng.standard_normal(200_000)))
    assert med == pytest.approx(0.2, rel=0.01) and sdl == pytest.approx(0.5, rel=0.02)
    # more than half the draws at zero (I² = 0): upper quantiles are matched instead
    d = np.r_[np.zeros(600), 0.2 * np.exp(0.5 * rng.standard_normal(400))]
    med0, sdl0 = H.fit_lognormal(d)
    assert 0 < med0 < 0.2 and sdl0 > 0
    assert H.fit_lognormal(np.zeros(10)) == (0.0, 0.0)


def test_meta_analyses_are_not_calibration_data():
    """Only this module reads the table; no study registry entry, no likelihood."""
    from netbayes import calibration

    src = ROOT / "src" / "netbayes"
    readers = {
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if "meta_analyses" in p.read_text(encoding="utf-8")
    }
    assert readers == {"calibration/heterogeneity.py", "data.py", "store.py"}
    assert set(calibration.STUDIES) == {"rotterdam2019", "re188pilot"}


def test_data_hash_ignores_the_prior_only_data(tmp_path, monkeypatch):
    """Shipped posteriors stay valid: the hash of data/ without the meta-analyses is the same."""
    import netbayes.data
    from netbayes.store import data_hash

    now = data_hash()
    data = ROOT / "data"
    for p in data.glob("*.csv"):
        if p.name != "meta_analyses.csv":
            shutil.copy(p, tmp_path / p.name)
    for name, keep in (
        ("sources.csv", lambda ln: not ln.startswith("meta_analyses.csv,")),
        ("papers.csv", lambda ln: not ln.startswith(("strosberg2021,", "kim_salvage,"))),
    ):
        lines = (data / name).read_text(encoding="utf-8").splitlines(keepends=True)
        (tmp_path / name).write_text("".join(filter(keep, lines)), encoding="utf-8")
    monkeypatch.setattr(netbayes.data, "data_dir", lambda: tmp_path)
    assert data_hash() == now
    # while a calibration table's edit changes it
    (tmp_path / "rotterdam_selection.csv").write_text(
        (data / "rotterdam_selection.csv").read_text(encoding="utf-8") + "\n", encoding="utf-8"
    )
    assert data_hash() != now


def test_simulation_check_smoke():
    """The derivation tracks the true τ on simulated published-style meta-analyses.

    60 meta-analyses of k = 8 studies at τ = 0.2 (benchmarks/tau_prior_check.py runs 400 per
    τ ∈ {0.1, 0.2, 0.35}). Tolerances from Monte Carlo error: log(prior median/true) has a
    spread of about 0.55 at τ = 0.2 (benchmark), so the median of 60 has SE ≈ 1.25 × 0.55 / √60
    = 0.09 on the log scale; the benchmark's median ratio is 0.99-1.04, so [0.7, 1.4] (log
    ±0.35) is about ±4 SE around it. The 90%
    coverage is a binomial share of 60 with SD √(0.9 × 0.1 / 60) = 0.04 around about 0.9:
    >= 0.75 is ~4 SD below. The KM-median variance formula: the sample variance of 600 log
    medians has relative SE √(2/600) = 6%: within 20% (3 SE).
    """
    sims = H.simulate_survival_meta_analyses(0.2, 60, seed=7)
    assert (sims["k"] == 8).mean() > 0.9
    for with_i2 in (True, False):
        ratios, inside = [], []
        for i, row in sims.iterrows():
            m = H.MetaAnalysis(
                "sim",
                "pfs_median",
                int(row["k"]),
                int(row["n_patients"]),
                float(row["estimate"]),
                float(row["ci_low"]),
                float(row["ci_high"]),
                float(row["i2"]) if with_i2 else None,
            )
            med, sdl = H.fit_lognormal(H.tau_draws(m, 2000, seed=int(i)))
            ratios.append(med / 0.2)
            inside.append(abs(math.log(0.2 / med)) <= 1.645 * sdl)
        assert 0.7 <= float(np.median(ratios)) <= 1.4, (with_i2, np.median(ratios))
        assert float(np.mean(inside)) >= 0.75, (with_i2, np.mean(inside))
    rng = np.random.default_rng(11)
    lam = 13.0 / math.log(2) ** (1 / 1.3)
    logm = []
    for _ in range(600):
        t, c = lam * rng.weibull(1.3, 50), rng.uniform(6.0, 60.0, 50)
        logm.append(math.log(H._km_median_ci(np.minimum(t, c), (t <= c).astype(float))[0]))
    formula = float(H.km_log_median_variance(50, 1.3, H.greenwood_inflation(1.3, 13.0, 6.0, 60.0)))
    assert np.var(logm, ddof=1) == pytest.approx(formula, rel=0.2)
