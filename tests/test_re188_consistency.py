"""Issue 16 (deliverable 3): the 188Re-HEDP patients are fitted as predictions treat them, the
OS prior-PFS effect is linked to the identified PFS one, and every I-PRRT prediction says that
its data are truncated at the selection threshold."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

from netbayes.calibration import calibrated_ranges, re188, survival_calibration
from netbayes.formulas.survival import re188_prior_pfs_nodes
from netbayes.predict import ExtrapolationWarning, Predictor
from netbayes.spec import GBQ_REF, GBQ_UNIT, X_REF

INTERVAL = (21.0, 13.0, 47.0)


@pytest.fixture(scope="module")
def pred_os() -> Predictor:
    return Predictor.load("os")


def test_the_pilots_prior_pfs_information_is_its_printed_interval():
    assert re188.prior_pfs_interval() == INTERVAL
    assert calibrated_ranges()["re188_prior_pfs"] == INTERVAL
    assert re188.os_times().prior_pfs == INTERVAL
    pts = re188.patients()
    np.testing.assert_array_equal(
        re188.os_times().cumulative_gbq, pts["lu177_cumulative_gbq"].to_numpy(float)
    )


def test_prior_pfs_nodes_are_the_truncated_law_with_the_reported_mean():
    x = np.asarray(re188_prior_pfs_nodes(*INTERVAL))
    assert len(x) == 8 and np.all(np.diff(x) > 0) and 13.0 < x[0] and x[-1] < 47.0
    # the law behind the nodes: log x ~ N(mu, sigma) on [13, 47]; sigma from the range of 6
    d6 = 2.534413  # expected range of 6 standard normals (tables: 2.534)
    sigma = math.log(47 / 13) / d6
    # recover mu from the median node pair and check the truncated mean by quadrature
    lo, hi = math.log(13.0), math.log(47.0)

    def mean_of(mu: float) -> float:
        f = stats.norm(mu, sigma)
        num = integrate.quad(lambda u: math.exp(u) * f.pdf(u), lo, hi)[0]
        return num / (f.cdf(hi) - f.cdf(lo))

    mu = float(
        __import__("scipy.optimize", fromlist=["brentq"]).brentq(
            lambda m: mean_of(m) - 21.0, lo, hi
        )
    )
    f = stats.norm(mu, sigma)
    pa, pb = f.cdf(lo), f.cdf(hi)
    want = np.exp(f.ppf(pa + (pb - pa) * (np.arange(8) + 0.5) / 8))
    np.testing.assert_allclose(x, want, rtol=1e-6)
    with pytest.raises(ValueError, match="0 < lo < mean < hi"):
        re188_prior_pfs_nodes(21.0, 30.0, 47.0)


def test_a_188re_prediction_without_prior_pfs_mixes_over_the_nodes(pred_os):
    rec = dict(tumour_type="pancreatic", line="188Re-HEDP", planned_gbq=6.4, prior_gbq=96.7)
    t = np.array([3.0, 6.0, 12.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        mix = pred_os.patient(**rec, times=t).arrays["survival"][0]
        per_node = [
            pred_os.patient(**rec, times=t, prior_pfs_months=x).arrays["survival"][0]
            for x in re188_prior_pfs_nodes(*INTERVAL)
        ]
    np.testing.assert_allclose(mix, np.mean(per_node, axis=0), rtol=1e-12, atol=1e-15)
    # not the old 36-month reference
    ref = pred_os.patient(**rec, times=t, prior_pfs_months=X_REF).arrays["survival"][0]
    assert np.max(np.abs(np.median(ref, 0) - np.median(mix, 0))) > 1e-3


def test_batch_summaries_give_the_one_patient_numbers_for_188re(pred_os):
    df = pd.DataFrame(
        {
            "tumour_type": ["pancreatic", "pancreatic", "gi_non_pancreatic", "midgut"],
            "line": ["188Re-HEDP", "188Re-HEDP", "188Re-HEDP", "R-PRRT"],
            "planned_gbq": [6.4, 6.4, 5.8, 14.9],
            "prior_gbq": [96.7, 96.7, 41.2, 29.9],
            "prior_pfs_months": [None, 20.0, None, 30.0],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = pred_os.summaries(df)
        for i, r in df.iterrows():
            x = r["prior_pfs_months"]
            one = pred_os.patient(
                tumour_type=r["tumour_type"], line=r["line"], planned_gbq=r["planned_gbq"],
                prior_gbq=r["prior_gbq"], prior_pfs_months=None if pd.isna(x) else float(x),
            ).summary  # fmt: skip
            med = one[one["quantity"] == "median_os"]["median"].iloc[0]
            assert s["median_os_median"].iloc[i] == pytest.approx(med, rel=1e-9)


def test_the_model_fits_the_188re_patients_at_their_activity_over_the_nodes(pred_os):
    pytest.importorskip("pymc")
    from netbayes.models.survival import SurvivalModel

    sm = SurvivalModel("os")
    m = sm.build()
    term = next(p for p in m.potentials if p.name == "re188_os")
    names = ("alpha2", "sigma2", "z2", "k2", "beta_x", "beta_gbq", "gamma_re188", "u_study")
    outs = m.replace_rvs_by_values([term, *(m[n] for n in names)])
    fn = m.compile_fn(outs, inputs=m.value_vars, on_unused_input="ignore")
    rng = np.random.default_rng(3)
    point = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in m.initial_point().items()}
    got, *values = fn(point)
    vals = dict(zip(names, values, strict=True))
    assert vals["beta_x"] != 0 and vals["beta_gbq"] != 0
    b = re188.os_times()
    study = sm.studies.index(re188.STUDY_ID)
    lx = np.log(np.asarray(re188_prior_pfs_nodes(*b.prior_pfs)) / X_REF)
    total = 0.0
    for i in range(len(b.time_months)):
        comps = []
        for j in np.flatnonzero(b.type_weights[i] > 0):
            for x in lx:
                loglam = (
                    vals["alpha2"] + vals["sigma2"] * vals["z2"][j] + vals["gamma_re188"]
                    + vals["u_study"][study] + vals["beta_x"] * x
                    + vals["beta_gbq"] * (b.cumulative_gbq[i] - GBQ_REF) / GBQ_UNIT
                )  # fmt: skip
                k, lam, t = vals["k2"], math.exp(loglam), b.time_months[i]
                ll = (stats.weibull_min.logpdf(t, k, scale=lam) if b.event[i]
                      else stats.weibull_min.logsf(t, k, scale=lam))  # fmt: skip
                comps.append(math.log(b.type_weights[i, j] / len(lx)) + ll)
        total += float(np.logaddexp.reduce(comps))
    assert float(got) == pytest.approx(total, rel=1e-9)


def test_the_os_prior_pfs_effect_is_linked_to_the_pfs_one():
    from netbayes.models.survival import BETA_X_PFS_POSTERIOR, SurvivalModel, os_beta_x_prior
    from netbayes.store import load_posterior

    b = load_posterior("survival-pfs").draws("beta_x")
    assert BETA_X_PFS_POSTERIOR[0] == pytest.approx(b.mean(), abs=0.02)
    assert BETA_X_PFS_POSTERIOR[1] == pytest.approx(b.std(), abs=0.02)
    # the product w * beta with w ~ U(s, 1), s = PFS / OS median after R-PRRT, by simulation
    cal = survival_calibration("os")
    med = {
        ep: cal.summaries[ep].query("tumour_type == 'all' and line == 'R-PRRT' and "
                                    "group == 'retreatment'")["median_months"].iloc[0]
        for ep in ("pfs", "os")
    }  # fmt: skip
    rng = np.random.default_rng(1)
    w = rng.uniform(med["pfs"] / med["os"], 1.0, 400_000)
    beta = rng.normal(*BETA_X_PFS_POSTERIOR, 400_000)
    p = os_beta_x_prior()
    assert p.dist == "normal"
    assert p.mu == pytest.approx(np.mean(w * beta), abs=0.003)
    assert p.sigma == pytest.approx(np.std(w * beta), abs=0.003)
    assert SurvivalModel("os").priors["beta_x"] == p
    assert SurvivalModel("pfs").priors["beta_x"].mu == 0.0
    # a user's override still wins
    assert SurvivalModel("os", priors={"beta_x": {"sigma": 1.0}}).priors["beta_x"].sigma == 1.0


def test_shipped_os_rises_with_prior_pfs(pred_os):
    assert np.mean(pred_os.survival["beta_x"] > 0) > 0.95
    rec = dict(tumour_type="midgut", line="R-PRRT", planned_gbq=14.9, prior_gbq=29.9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExtrapolationWarning)
        m = [
            pred_os.patient(**rec, prior_pfs_months=x)
            .summary.query("quantity == 'median_os'")["median"]
            .iloc[0]
            for x in (20, 40, 80)
        ]
    assert m[0] < m[1] < m[2]


@pytest.mark.parametrize("endpoint", ["pfs", "os"])
def test_every_first_line_prediction_says_its_data_are_truncated(endpoint):
    p = Predictor.load(endpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p.patient(tumour_type="midgut", line="I-PRRT", planned_gbq=29.6)
    msgs = [str(w.message) for w in caught if issubclass(w.category, ExtrapolationWarning)]
    assert any("selected for a first-line PFS >= 18 months" in m for m in msgs), msgs
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        p.patient(tumour_type="midgut", line="R-PRRT", planned_gbq=14.9, prior_gbq=29.9,
                  prior_pfs_months=30)  # fmt: skip
    assert not any("first-line PFS >= 18" in str(w.message) for w in caught)


def test_the_linked_os_prior_is_reported_as_linked(pred_os):
    from netbayes.models.survival import SurvivalPriors, os_beta_x_prior
    from netbayes.predict.share import resolve_priors

    assert SurvivalPriors.for_endpoint("os").kind("beta_x") == "linked"
    assert SurvivalPriors.for_endpoint("pfs").kind("beta_x") == "weak"
    assert SurvivalPriors(beta_x={"sigma": 1.0}).kind("beta_x") == "user"
    t = pred_os.prior_parameters()
    assert t.loc[t["parameter"] == "beta_x", "kind"].item() == "linked"
    # draws without a card: the OS defaults, not the PFS ones
    priors, source = resolve_priors(dict(pred_os.survival), None, "survival", "os")
    assert "defaults" in source and priors["beta_x"] == os_beta_x_prior()
