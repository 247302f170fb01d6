"""Survival model builder: input validation, structure, and log-density checks (no MCMC)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from netbayes.models.survival import (
    SurvivalModel,
    SurvivalPriors,
    _type_weights,
    validate_patients,
)


def _law(family: str, k: float, lam: float):
    """SciPy's version of a survival family's law (the independent reference)."""
    if family == "weibull":
        return stats.weibull_min(k, scale=lam)
    return stats.lognorm(s=1.0 / k, scale=lam)


FAMILIES = ["weibull", "lognormal"]


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


# ----------------------------------------------------------------------------------------------
# validation of users' patients
# ----------------------------------------------------------------------------------------------


def test_valid_patients_are_typed():
    d = validate_patients(_patients())
    assert d["event"].dtype == np.int64 and d["time_months"].dtype == np.float64
    assert isinstance(d["tumour_type"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize(
    ("over", "pattern"),
    [
        ({"time_months": [0.0, 20.0, 7.5]}, r"time_months=0\.0 \(row 0\).*finite time > 0"),
        ({"time_months": [-3.0, 20.0, 7.5]}, r"time_months=-3\.0 \(row 0\)"),
        ({"time_months": [np.nan, 20.0, 7.5]}, r"time_months=nan \(row 0\).*not missing"),
        ({"time_months": ["soon", 20.0, 7.5]}, r"time_months='soon' \(row 0\).*a number"),
        ({"event": [2, 0, 1]}, r"event=2 \(row 0\).*0 \(censored\) or 1 \(event\)"),
        ({"line": ["R-PRRT", "salvage", "I-PRRT"]}, r"line='salvage' \(row 1\).*I-PRRT, R-PRRT"),
        (
            {"tumour_type": ["midgut", "colon", "bronchial"]},
            r"tumour_type='colon' \(row 1\).*one of foregut, midgut",
        ),
        ({"prior_pfs_months": [np.nan, 45.0, np.nan]}, r"prior_pfs_months=nan \(row 0\).*required"),
        ({"prior_pfs_months": [-1.0, 45.0, np.nan]}, r"prior_pfs_months=-1\.0 \(row 0\)"),
        ({"cumulative_gbq": [-5.0, 44.4, 29.6]}, r"cumulative_gbq=-5\.0 \(row 0\).*>= 0 GBq"),
    ],
)
def test_bad_patients_name_field_value_and_allowed(over, pattern):
    with pytest.raises(ValueError, match=pattern):
        validate_patients(_patients(**over))


def test_missing_columns_and_wrong_type():
    with pytest.raises(ValueError, match=r"missing column\(s\) \['event'\]"):
        validate_patients(_patients().drop(columns="event"))
    with pytest.raises(TypeError, match="must be a pandas DataFrame"):
        validate_patients([1, 2, 3])  # type: ignore[arg-type]


def test_model_arguments_are_checked():
    with pytest.raises(ValueError, match="endpoint='dfs' is not allowed"):
        SurvivalModel("dfs")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nothing to fit"):
        SurvivalModel(include_published=False)
    with pytest.raises(ValueError, match="unknown parameter 'beta_dose'"):
        SurvivalPriors().replace(beta_dose={"sigma": 1.0})
    with pytest.raises(ValueError, match=r"priors\['k1'\]: dist='normal' has support real"):
        SurvivalModel(priors={"k1": {"dist": "normal"}})


def test_priors_table_lists_every_prior():
    t = SurvivalPriors().to_frame()
    assert len(t) == 17 and t["sigma"].gt(0).all() and t["meaning"].str.len().gt(0).all()
    # the OS model's first-line block has its priors here too (and so in the model card)
    os1 = t.loc[["alpha1_os", "k1_os", "sigma1_os"]]
    assert list(os1["dist"]) == ["normal", "lognormal", "halfnormal"]
    assert os1.loc["k1_os", "args"] == "median=1.5, sd_log=0.5"
    assert os1.loc["sigma1_os", "sigma"] == 0.5
    att = t.loc["spearman_attenuation"]
    assert att["dist"] == "beta" and (att["mu"], att["sigma"]) == (0.88, 0.08)
    # the SE noise scale is a property of the estimator, calibrated by simulation: tight prior
    kap = t.loc["kappa_se"]
    assert kap["args"] == "median=3, sd_log=0.1" and kap["mu"] == math.log(3.0)
    p = SurvivalPriors().replace(beta_gbq={"sigma": 0.05})
    assert (p.beta_gbq.mu, p.beta_gbq.sigma) == (0.0, 0.05)
    assert SurvivalPriors().beta_gbq.sigma == 0.15
    assert p.beta_gbq.meaning == SurvivalPriors().beta_gbq.meaning  # the text is kept


def test_coarse_type_weights_follow_the_rotterdam_mix():
    w = _type_weights(pd.Series(["gi_non_pancreatic", "pancreatic"]))
    # foregut 5, midgut 54, hindgut 12 of the 71 GI non-pancreatic retreated patients
    np.testing.assert_allclose(w[0, :3], np.array([5, 54, 12]) / 71)
    assert w[0, 3:].sum() == 0 and w[1].tolist() == [0, 0, 0, 1, 0, 0]


# ----------------------------------------------------------------------------------------------
# log-density checks: each likelihood block against a direct computation
# ----------------------------------------------------------------------------------------------


def _point(model, priors=None, **values):
    """The model's value variables at parameter values given as the model is written."""
    from netbayes.models.survival import _value_point

    return _value_point(model, priors or SurvivalPriors(), values)


@pytest.mark.parametrize("family", FAMILIES)
def test_initial_point_log_density_is_finite_for_both_endpoints(family):
    for ep in ("pfs", "os"):
        m = SurvivalModel(ep, family=family).build()
        logps = m.point_logps(m.initial_point())
        assert all(np.isfinite(v) for v in logps.values()), (ep, logps)
    m = SurvivalModel("os", family=family).build()
    assert "re188_os" in m.point_logps(m.initial_point())


@pytest.mark.parametrize("family", FAMILIES)
def test_first_line_block_matches_scipy_order_statistic(family):
    """The first-line median term equals a direct truncated order-statistic density."""
    sm = SurvivalModel("pfs", family=family)
    m = sm.build()
    z1 = np.linspace(-1.2, 0.9, 6)
    pt_ = _point(m, alpha1=math.log(40), z1=z1, k1=1.5, sigma1=0.5, delta_control=0.1)
    import pytensor

    [pot] = m.replace_rvs_by_values([m.potentials[0]])  # in terms of value variables
    fn = pytensor.function(m.value_vars, pot, on_unused_input="ignore")
    got = fn(*[pt_[v.name] for v in m.value_vars])
    from netbayes.cohorts import survival_summaries

    s = survival_summaries("pfs")
    s = s[(s["line"] == "I-PRRT") & (s["tumour_type"] != "all")]
    types = ["foregut", "midgut", "hindgut", "pancreatic", "bronchial", "unknown"]
    total = 0.0
    for _, row in s.iterrows():
        j = types.index(row["tumour_type"])
        lam = 40 * math.exp(0.5 * z1[j] + (0.1 if row["group"] == "control" else 0.0))
        d = _law(family, 1.5, lam)
        s18 = d.sf(18.0)
        m_, n = row["median_months"], row["n"]
        r = math.ceil(n / 2)
        f_t = d.pdf(m_) / s18
        s_t = d.sf(m_) / s18
        log_comb = math.lgamma(n + 1) - math.lgamma(r) - math.lgamma(n - r + 1)
        total += log_comb + (r - 1) * math.log(1 - s_t) + (n - r) * math.log(s_t) + math.log(f_t)
    assert np.isclose(got, total, rtol=1e-8)


@pytest.mark.parametrize("family", FAMILIES)
def test_first_line_se_term_uses_density_at_published_median(family):
    """The first-line SE term equals a direct scipy computation of Collett's SE at the
    published median: log SE_obs ~ N(log(sqrt(1/(4n)) / f_L(m_obs)) - tau^2/2, tau)."""
    m = SurvivalModel("pfs", family=family).build()
    z1 = np.linspace(0.7, -0.8, 6)
    pt_ = _point(
        m, alpha1=math.log(40), z1=z1, k1=1.3, sigma1=0.4, delta_control=-0.2, kappa_se=2.5
    )
    got = m.point_logps(pt_, round_vals=12)["first_line_se"]
    from netbayes.cohorts import survival_summaries

    s = survival_summaries("pfs")
    s = s[(s["line"] == "I-PRRT") & (s["tumour_type"] != "all") & s["se_months"].notna()]
    assert len(s) >= 6
    types = ["foregut", "midgut", "hindgut", "pancreatic", "bronchial", "unknown"]
    total = 0.0
    for _, row in s.iterrows():
        j = types.index(row["tumour_type"])
        lam = 40 * math.exp(0.4 * z1[j] + (-0.2 if row["group"] == "control" else 0.0))
        d = _law(family, 1.3, lam)
        f_l = d.pdf(row["median_months"]) / d.sf(18.0)
        tau = 2.5 / math.sqrt(row["n"])
        mu = math.log(math.sqrt(0.25 / row["n"]) / f_l) - tau**2 / 2
        total += stats.norm(mu, tau).logpdf(math.log(row["se_months"]))
    assert got == pytest.approx(total, rel=1e-9)


def test_salvage_mixture_equals_monte_carlo_population():
    """The R-PRRT row's mixture CDF at its median matches a direct simulation of the cohort."""
    import pytensor.tensor as pt_mod

    from netbayes.likelihoods import survival as L

    rng = np.random.default_rng(11)
    k1, lam1, k2, a2, bx = 1.5, 30.0, 1.8, math.log(18.0), 0.5
    g = 64
    u = (np.arange(g) + 0.5) / g
    h = (18.0 / lam1) ** k1
    x = lam1 * (h - np.log1p(-u)) ** (1 / k1)
    lam = np.exp(a2 + bx * np.log(x / 36.0))
    cdf_grid = np.exp(
        pt_mod.logsumexp(L.weibull_logcdf(14.0, k2, lam), axis=-1).eval() - math.log(g)
    )
    # Monte Carlo: first-line PFS truncated at 18 by rejection, then salvage PFS
    x_mc = lam1 * rng.weibull(k1, 2_000_000)
    x_mc = x_mc[x_mc >= 18.0][:400_000]
    t_mc = np.exp(a2 + bx * np.log(x_mc / 36.0)) * rng.weibull(k2, x_mc.size)
    p_mc = (t_mc <= 14.0).mean()
    se = math.sqrt(p_mc * (1 - p_mc) / x_mc.size)
    # midpoint-rule error for 64 nodes is far below the MC SE (~8e-4); allow 4 SE + 1e-3
    assert abs(cdf_grid - p_mc) < 4 * se + 1e-3


def test_patients_add_a_likelihood_term():
    m0 = SurvivalModel("pfs").build()
    m1 = SurvivalModel("pfs", patients=_patients()).build()
    names1 = {p.name for p in m1.potentials}
    assert {"patients_first_line", "patients_salvage"} <= names1
    assert not {"patients_first_line", "patients_salvage"} & {p.name for p in m0.potentials}
    m2 = SurvivalModel("pfs", patients=_patients(), include_published=False).build()
    assert {p.name for p in m2.potentials} == {"patients_first_line", "patients_salvage"}
    assert np.isfinite(m2.compile_logp()(m2.initial_point()))


@pytest.mark.parametrize("family", FAMILIES)
def test_patient_terms_match_scipy_for_known_and_coarse_types(family):
    """User rows of one known type use that type's scale; a coarse ``gi_non_pancreatic`` row
    mixes the likelihoods of foregut/midgut/hindgut with the Rotterdam weights."""

    d = _patients(
        time_months=[12.0, 20.0, 7.5, 9.0, 30.0],
        event=[1, 0, 1, 1, 0],
        line=["R-PRRT", "R-PRRT", "I-PRRT", "R-PRRT", "I-PRRT"],
        tumour_type=["midgut", "gi_non_pancreatic", "bronchial", "pancreatic", "gi_non_pancreatic"],
        prior_pfs_months=[30.0, 45.0, np.nan, 22.0, np.nan],
        cumulative_gbq=[44.4, 50.0, 29.6, 40.0, 29.6],
    )
    m = SurvivalModel("pfs", patients=d, include_published=False, family=family).build()
    z1 = np.linspace(-1, 1, 6)
    z2 = np.linspace(0.8, -0.8, 6)
    v = dict(alpha1=math.log(35.0), alpha2=math.log(15.0), k1=1.4, k2=1.7, sigma1=0.3,
             sigma2=0.4, z1=z1, z2=z2, beta_x=0.5, beta_gbq=0.1)  # fmt: skip
    logps = m.point_logps(_point(m, **v), round_vals=12)
    w = _type_weights(d["tumour_type"])
    lam1 = np.exp(v["alpha1"] + v["sigma1"] * z1)

    def ll(t, e, k, lam):
        dist = _law(family, k, lam)
        return dist.logpdf(t) if e else dist.logsf(t)

    first = salvage = 0.0
    for i, r in d.iterrows():
        if r.line == "I-PRRT":
            terms = [ll(r.time_months, r.event, v["k1"], lam1[j]) for j in range(6)]
        else:
            lp = (v["alpha2"] + v["sigma2"] * z2 + v["beta_x"] * math.log(r.prior_pfs_months / 36)
                  + v["beta_gbq"] * (r.cumulative_gbq - 44.7) / 10)  # fmt: skip
            terms = [ll(r.time_months, r.event, v["k2"], math.exp(lp[j])) for j in range(6)]
        with np.errstate(divide="ignore"):
            val = float(np.logaddexp.reduce(np.log(w[i]) + np.array(terms)))
        if r.line == "I-PRRT":
            first += val
        else:
            salvage += val
    assert logps["patients_first_line"] == pytest.approx(first, rel=1e-9)
    assert logps["patients_salvage"] == pytest.approx(salvage, rel=1e-9)


@pytest.mark.parametrize("family", FAMILIES)
def test_pointwise_loglik_sums_to_the_patient_potentials(family):
    """One term per patient (for LOO) whose sum is the model's own patient log-likelihood."""
    d = _patients(
        time_months=[12.0, 20.0, 7.5, 9.0, 30.0],
        event=[1, 0, 1, 1, 0],
        line=["R-PRRT", "RR-PRRT", "I-PRRT", "188Re-HEDP", "I-PRRT"],
        tumour_type=["midgut", "gi_non_pancreatic", "bronchial", "pancreatic", "gi_non_pancreatic"],
        prior_pfs_months=[30.0, 45.0, np.nan, np.nan, np.nan],
        cumulative_gbq=[44.4, 50.0, 29.6, np.nan, 29.6],
    )
    sm = SurvivalModel(
        "pfs", patients=d, include_published=False, family=family, study_level=False
    )  # the study level's share: tests/test_study_level.py
    m = sm.build()
    rng = np.random.default_rng(4)
    for _ in range(3):
        v = dict(alpha1=math.log(35.0) + rng.normal(0, 0.2), alpha2=math.log(15.0),
                 k1=1.4 + rng.uniform(0, 0.5), k2=1.7, sigma1=0.3, sigma2=0.4,
                 z1=rng.normal(size=6), z2=rng.normal(size=6), beta_x=0.5, beta_gbq=0.1,
                 gamma_rr=rng.normal(0, 0.3), gamma_re188=rng.normal(0, 0.3))  # fmt: skip
        logps = m.point_logps(_point(m, **v), round_vals=12)
        draws = {k: np.asarray(val, float)[None, None] for k, val in v.items()}
        pw = sm.pointwise_loglik(draws)
        assert pw.shape == (1, 1, 5) and np.isfinite(pw).all()
        total = logps["patients_first_line"] + logps["patients_salvage"]
        assert pw.sum() == pytest.approx(total, rel=1e-9)
    with pytest.raises(ValueError, match="needs a model with patients"):
        SurvivalModel("pfs").pointwise_loglik(draws)
