"""The study (centre) level: model terms, the published checks and predictions for a centre.

Fast tests: log densities at fixed points (no sampling) and predictions from the shipped draws
with an injected study level.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from _graphs import potentials_at, values_at

from netbayes.calibration import heterogeneity
from netbayes.models.survival import SurvivalModel, SurvivalPriors
from netbayes.models.toxicity import ToxicityModel, ToxicityPriors


# ----------------------------------------------------------------------------------------------
# priors
# ----------------------------------------------------------------------------------------------
def test_tau_priors_are_the_derived_ones():
    """The models' tau priors are exactly what the derivation from the meta-analyses gives
    (an edit of either the data, the derivation or the defaults fails here)."""
    ts, tt = heterogeneity.tau_prior_survival(), heterogeneity.tau_prior_toxicity()
    p, q = SurvivalPriors()["tau"], ToxicityPriors()["tau_tox"]
    assert p.dist == q.dist == "lognormal"
    assert (math.exp(p.mu), p.sigma) == pytest.approx((ts.median, ts.sd_log), rel=1e-12)
    assert (math.exp(q.mu), q.sigma) == pytest.approx((tt.median, tt.sd_log), rel=1e-12)


# ----------------------------------------------------------------------------------------------
# survival model terms
# ----------------------------------------------------------------------------------------------
_values = values_at  # compiled once per model and outputs (tests/_graphs.py)
_potentials = potentials_at


def _point(model, rng, **fixed):
    ip = model.initial_point()
    p = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in ip.items()}
    p.update({k: np.asarray(v, dtype=float) for k, v in fixed.items()})
    return p


def _anchored(without, base, u0, blocks=(("alpha1", "z1", "sigma1"), ("alpha2", "z2", "sigma2"))):
    """Value variables of the study-level model whose anchor-study intercepts and type offsets
    equal the one-centre model's intercepts and offsets at ``base``, with u_0 = ``u0``."""
    from netbayes.models.survival import SurvivalPriors, _type_mean_coordinates

    priors = SurvivalPriors()
    p = dict(base)
    for a, z, s in blocks:
        a_v, z_v, s_v = _values(without, [without[a], without[z], without[s]], base)
        pr = priors[a]
        m, w, c = _type_mean_coordinates(a_v, z_v, s_v, pr.mu + u0, pr.sigma)
        p |= {f"{a}_types": m, f"{z}_mean_w": w, f"{z}_contrasts": c}
    return p


@pytest.fixture(scope="module")
def pfs_models():
    return SurvivalModel("pfs"), SurvivalModel("pfs", study_level=False)


def test_one_study_sees_only_its_own_intercepts(pfs_models):
    """With one study, every published term depends on the anchor study's intercepts
    ``alpha_anchor = alpha + u`` alone: at the same anchors, any tau and z give the terms of
    the one-centre model with alpha = anchor (to rounding). A term that missed u, or added it
    twice, would differ by the shift (0.2-0.8 here)."""
    with_s, without = (m.build() for m in pfs_models)
    rng = np.random.default_rng(5)
    base = _point(without, rng)
    ref = _potentials(without, base)
    for tau_log, z in ((-1.5, 0.7), (-0.5, -1.9)):
        p = _anchored(without, base, math.exp(tau_log) * z)
        p |= {"tau_log__": np.asarray(tau_log), "z_study": np.array([z])}
        got = _potentials(with_s, p)
        assert set(got) == set(ref)
        for k in ref:
            assert got[k] == pytest.approx(ref[k], rel=1e-10, abs=1e-9), k


def test_population_intercept_is_anchor_minus_the_study_effect(pfs_models):
    import pymc as pm

    m = pfs_models[0].build()
    p = _point(m, np.random.default_rng(1), tau_log__=math.log(0.3), z_study=[1.5])
    a1, a1a, u = _values(m, [m["alpha1"], m["alpha1_anchor"], m["u_study"]], p)
    assert float(u[0]) == pytest.approx(0.45, rel=1e-12)
    assert float(a1) == pytest.approx(float(a1a) - 0.45, rel=1e-12)
    # the prior of the population intercept is still N(log 40, 1): 4000 prior draws
    d = pm.draw(m["alpha1"], draws=4000, random_seed=3)
    assert abs(d.mean() - math.log(40.0)) < 4 / math.sqrt(4000) and abs(d.std() - 1) < 0.05


def test_a_second_study_shifts_only_its_rows():
    """OS: the 188Re-HEDP pilot is a study of its own; its patients' term equals the
    one-centre model's with gamma_re188 moved by u_re188 - u_rotterdam, and the Rotterdam rows
    are untouched by u_re188."""
    with_s = SurvivalModel("os").build()
    without = SurvivalModel("os", study_level=False).build()
    assert list(with_s.coords["study"]) == ["rotterdam2019", "re188pilot"]
    rng = np.random.default_rng(9)
    base = _point(without, rng)
    ref = _potentials(without, base)
    tau, z = 0.4, np.array([0.5, -1.0])
    u = tau * z
    blocks = (("alpha1", "z1", "sigma1"), ("alpha2", "z2", "sigma2"),
              ("alpha1_os", "z1_os", "sigma1_os"))  # fmt: skip
    p = _anchored(without, base, u[0], blocks)
    p |= {"tau_log__": np.asarray(math.log(tau)), "z_study": z}
    got = _potentials(with_s, p)
    for k in ref:
        if k != "re188_os":
            assert got[k] == pytest.approx(ref[k], rel=1e-10, abs=1e-9), k
    shifted = dict(base, gamma_re188=base["gamma_re188"] + (u[1] - u[0]))
    assert got["re188_os"] == pytest.approx(_potentials(without, shifted)["re188_os"], rel=1e-10)
    assert got["re188_os"] != pytest.approx(ref["re188_os"], rel=1e-3)


def test_user_patients_get_their_study():
    pts = pd.DataFrame({
        "time_months": [5.0, 12.0, 30.0, 7.0], "event": [1, 0, 1, 1],
        "line": ["R-PRRT", "R-PRRT", "I-PRRT", "R-PRRT"],
        "tumour_type": ["midgut", "pancreatic", "midgut", "bronchial"],
        "prior_pfs_months": [30.0, 25.0, None, 20.0], "cumulative_gbq": [44.7, 40.0, 29.6, 52.0],
        "study": ["lyon", "lyon", "oslo", "user"],
    })  # fmt: skip
    m = SurvivalModel("pfs", patients=pts)
    assert m.studies == ["rotterdam2019", "lyon", "oslo", "user"]
    assert m.config()["studies"] == m.studies and "tau" in m.prior_table().index
    assert list(SurvivalModel("pfs", patients=pts.drop(columns="study")).studies)[-1] == "user"
    with pytest.raises(ValueError, match=r"study.*non-empty study label"):
        SurvivalModel("pfs", patients=pts.assign(study=[1, "a", "b", "c"]))
    # the pointwise log-likelihood carries each patient's study effect, like the model
    mod = m.build()
    p = _point(
        mod, np.random.default_rng(2), tau_log__=math.log(0.5), z_study=[0.3, -1.2, 0.8, 2.0]
    )
    names = ["alpha1", "alpha2", "sigma1", "sigma2", "z1", "z2", "k1", "k2", "beta_x", "beta_gbq",
             "gamma_rr", "gamma_re188", "u_study"]  # fmt: skip
    vals = _values(mod, [mod[n] for n in names], p)
    draws = {n: np.asarray(v)[None] for n, v in zip(names, vals, strict=True)}
    ll = m.pointwise_loglik(draws)
    pots = _potentials(mod, p)
    assert ll.sum() == pytest.approx(
        pots["patients_first_line"] + pots["patients_salvage"], rel=1e-10
    )


# ----------------------------------------------------------------------------------------------
# toxicity model terms
# ----------------------------------------------------------------------------------------------
def test_toxicity_study_effects_shift_their_own_rows():
    with_s, without = ToxicityModel().build(), ToxicityModel(study_level=False).build()
    rng = np.random.default_rng(4)
    base = _point(without, rng)
    ref = _potentials(without, base)
    zero = dict(base, tau_tox_log__=np.asarray(-1.0), z_study_tox=np.zeros(2))
    got = _potentials(with_s, zero)
    for k in ref:
        assert got[k] == pytest.approx(ref[k], rel=1e-12), k
    tau, z = 0.5, np.array([0.0, 1.4])  # only the pilot's effect: v_m = 0.7 (marginal scale)
    got = _potentials(with_s, dict(zero, tau_tox_log__=np.asarray(math.log(tau)), z_study_tox=z))
    shifted = dict(base, delta_re188_marg=base["delta_re188_marg"] + tau * z[1])
    assert got["ll_re188_cycles"] == pytest.approx(_potentials(without, shifted)["ll_re188_cycles"])
    table6 = [k for k in ref if k.startswith("ll_table6")]  # margins and grade IV (exact)
    assert table6 == ["ll_table6_margins", "ll_table6_grade4"]
    for k in table6:  # the Rotterdam rows do not move with the pilot's effect
        assert got[k] == pytest.approx(ref[k], rel=1e-12), k
    assert got["ll_re188_cycles"] != pytest.approx(ref["ll_re188_cycles"], rel=1e-3)
    # the composite likelihood's terms likewise
    with_c = ToxicityModel(margins="composite").build()
    without_c = ToxicityModel(margins="composite", study_level=False).build()
    ref_c = _potentials(without_c, base)
    got_c = _potentials(with_c, dict(zero, tau_tox_log__=np.asarray(math.log(tau)), z_study_tox=z))
    assert got_c["ll_table6_lines"] == pytest.approx(ref_c["ll_table6_lines"], rel=1e-12)
    assert got_c["ll_re188_cycles"] != pytest.approx(ref_c["ll_re188_cycles"], rel=1e-3)


def test_toxicity_user_records_use_their_study_not_delta_user():
    df = pd.DataFrame({"patient": ["a", "a", "b"], "cycle": [1, 1, 1],
                       "cell_line": ["platelets", "leucocytes", "platelets"], "grade": [3, 1, 0],
                       "activity_gbq": [7.4, 7.4, 7.4], "prior_gbq": [0.0, 0.0, 29.6],
                       "study": ["lyon", "lyon", "lyon"]})  # fmt: skip
    m = ToxicityModel(df)
    assert m.studies == ["rotterdam2019", "re188pilot", "lyon"]
    names = m.parameter_names()
    assert "delta_user" not in names and "v_study" in names
    assert "delta_user" in ToxicityModel(df, study_level=False).parameter_names()
    assert "delta_user" not in {v.name for v in m.build().free_RVs}


# ----------------------------------------------------------------------------------------------
# predictions for a centre
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shipped():
    from netbayes.store import load_posterior

    s = load_posterior("survival-pfs").all_draws()
    t = load_posterior("toxicity").all_draws()
    return s, t


STUDY_VARS = ("tau", "z_study", "u_study", "tau_tox", "z_study_tox", "v_study")


def _without_level(d):
    return {k: v for k, v in d.items() if k not in STUDY_VARS and not k.endswith("_anchor")}


def _with_level(s, t, seed=0):
    s, t = _without_level(s), _without_level(t)
    rng = np.random.default_rng(seed)
    S, St = len(s["k2"]), len(t["theta"])
    s2 = dict(s, tau=np.full(S, 0.2), u_study=rng.normal(0.3, 0.05, (S, 1)))
    t2 = dict(t, tau_tox=np.full(St, 0.3), v_study=rng.normal(-0.4, 0.05, (St, 2)))
    return s2, t2


REC = dict(tumour_type="midgut", line="R-PRRT", prior_pfs_months=30, prior_gbq=29.9,
           planned_gbq=14.9)  # fmt: skip


def test_centres_of_a_posterior_with_a_study_level(shipped):
    from netbayes.predict import Predictor

    s, t = (_without_level(d) for d in shipped)
    s2, t2 = _with_level(s, t)
    p0 = Predictor(s, t)
    p = Predictor(s2, t2)
    assert p.study_level and p.studies == ["rotterdam2019"] and not p0.study_level
    typ = p.patient(**REC, centre="typical")
    # typical = the one-centre computation on the same draws, bit for bit
    base = p0.patient(**REC)
    for k in typ.arrays:
        assert np.array_equal(typ.arrays[k], base.arrays[k]), k
    # a known study: its effect multiplies every draw's scale (Weibull median is linear in it)
    rot = p.patient(**REC, centre="rotterdam2019")
    ratio = rot.arrays["median_pfs_months"][0] / typ.arrays["median_pfs_months"][0]
    np.testing.assert_allclose(np.log(ratio), s2["u_study"][:, 0], rtol=1e-9)
    # a new centre: log ratio / tau is standard normal over 4000 draws (mean SE 0.016, SD SE
    # 0.011: tolerances of about 4.5 SE)
    new = p.patient(**REC)
    assert new.centre == "new" and "new centre" in new.centre_note
    zr = np.log(new.arrays["median_pfs_months"][0] / typ.arrays["median_pfs_months"][0]) / 0.2
    assert abs(zr.mean()) < 0.07 and abs(zr.std() - 1) < 0.05
    assert new.median().upper - new.median().lower > typ.median().upper - typ.median().lower
    # toxicity: the centre's latent effect; the pilot's -0.4 lowers Rotterdam's risk... here
    # the toxicity posterior knows rotterdam2019 (v ~ -0.4): lower risk than typical
    assert rot.p_grade3plus("any").median < typ.p_grade3plus("any").median
    assert new.to_dict()["centre"] == {"choice": "new", "meaning": new.centre_note}


def test_every_path_predicts_the_same_centre(shipped):
    from netbayes.predict import Predictor

    s2, t2 = _with_level(*shipped)
    p = Predictor(s2, t2)
    df = pd.DataFrame([REC, dict(REC, tumour_type="unknown", line="RR-PRRT", prior_gbq=44.0,
                                 planned_gbq=7.4, prior_pfs_months=20)])  # fmt: skip
    for centre in ("new", "typical", "rotterdam2019"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            one = p.patients(df, centre=centre).summary
            wide = p.summaries(df, centre=centre)
        assert wide.attrs["centre"] == centre
        med = one[one["quantity"] == "median_pfs"].set_index("patient")["median"]
        np.testing.assert_allclose(wide["median_pfs_median"], med, rtol=1e-9)
        anyr = one[(one["quantity"] == "p_grade3plus") & (one["cell_line"] == "any")]
        np.testing.assert_allclose(
            wide["p_grade3plus_any_median"], anyr.set_index("patient")["median"], atol=1e-6
        )
    c_new = p.cohort(100, centre="new")
    c_typ = p.cohort(100, centre="typical")
    assert c_new.centre == "new" and c_typ.centre == "typical"
    w = lambda c: float(c.summary["eti95_upper"].iloc[0] - c.summary["eti95_lower"].iloc[0])  # noqa: E731
    assert w(c_new) > w(c_typ)


def test_bad_centres_are_named(shipped):
    from netbayes.predict import Predictor

    s, t = (_without_level(d) for d in shipped)
    s2, t2 = _with_level(s, t)
    with pytest.raises(ValueError, match=r"centre='lyon'.*new, typical, rotterdam2019"):
        Predictor(s2, t2).patient(**REC, centre="lyon")
    with pytest.raises(ValueError, match=r"centre=3"):
        Predictor(s2, t2).summaries(pd.DataFrame([REC]), centre=3)
    with pytest.raises(ValueError, match=r"centre='rotterdam2019'.*expected new, typical"):
        Predictor(s, t).patient(**REC, centre="rotterdam2019")  # no study level
    one = Predictor(s, t).patient(**REC, centre="new")
    assert "no study level" in one.centre_note


# ----------------------------------------------------------------------------------------------
# checks: each published figure at its own centre
# ----------------------------------------------------------------------------------------------
def test_checks_use_the_rows_own_study(shipped):
    from netbayes.checks.survival_ppc import survival_ppc_table

    s = _without_level(shipped[0])
    zero = survival_ppc_table(s, "pfs", n_sims=200, study_effect=np.zeros(len(s["k2"])))
    none = survival_ppc_table(s, "pfs", n_sims=200)
    pd.testing.assert_frame_equal(zero, none)
    c = 0.3
    shifted = survival_ppc_table(s, "pfs", n_sims=200, study_effect=np.full(len(s["k2"]), c))
    moved = survival_ppc_table(
        dict(s, alpha1=s["alpha1"] + c, alpha2=s["alpha2"] + c), "pfs", n_sims=200
    )
    np.testing.assert_allclose(
        shifted["predicted_median_months"], moved["predicted_median_months"], rtol=1e-9
    )
    assert (shifted["predicted_median_months"] > none["predicted_median_months"]).all()


# ----------------------------------------------------------------------------------------------
# added published studies (docs/published_cohorts.md)
# ----------------------------------------------------------------------------------------------
def _rot_rows(first: bool):
    from netbayes.calibration import survival_calibration

    s = survival_calibration("pfs").summaries["pfs"]
    line = "I-PRRT" if first else "R-PRRT"
    return s[(s["line"] == line) & (s["tumour_type"] == "midgut") & (s["group"] == "retreatment")]


@pytest.mark.parametrize("first", [False, True])
def test_an_added_row_is_the_packaged_likelihood(first):
    """A Rotterdam row given as an added study (its selection rule and activity in the row)
    has exactly the packaged row's likelihood: the new term is the validated one, generalised
    (per-row threshold, activity, mix and study)."""
    from netbayes.calibration import survival_calibration

    cal = survival_calibration("pfs")
    row = _rot_rows(first)
    both = pd.concat([row, _rot_rows(False)]) if first else row  # Spearman needs R-PRRT rows
    packaged = SurvivalModel("pfs", summaries={"pfs": both}, study_level=False).build()
    added = pd.DataFrame({
        "study": ["sim"], "row_id": ["r"], "endpoint": ["pfs"], "line": [str(row["line"].iloc[0])],
        "tumour_type": ["midgut"], "n": [float(row["n"].iloc[0])],
        "median_months": [float(row["median_months"].iloc[0])],
        "se_months": [float(row["se_months"].iloc[0])],
        "selection_min_prior_pfs_months": [cal.threshold("R-PRRT")],
        "cumulative_gbq": [cal.cumulative_gbq["R-PRRT"]],
    })  # fmt: skip
    m = SurvivalModel("pfs", studies=added, include_published=False, study_level=False).build()
    rng = np.random.default_rng(8)
    for _ in range(3):
        p = _point(m, rng)
        got = _potentials(m, p)
        ref = _potentials(packaged, {k: v for k, v in p.items()} | {
            k: v for k, v in _point(packaged, rng).items() if k not in p})  # fmt: skip
        key = "first_line" if first else "salvage"
        name = "first_line_medians" if first else "salvage_medians_r"
        se = "first_line_se" if first else "salvage_se_r"
        assert got[f"study_medians_{key}"] == pytest.approx(ref[name], rel=1e-9), key
        assert got[f"study_se_{key}"] == pytest.approx(ref[se], rel=1e-9), key


def test_an_all_row_mixes_its_tumour_types():
    """An overall row is the mix of its types' populations: with every type given the same
    effect, the mix equals a single-type row; with different effects it lies between."""
    base = dict(study="sim", endpoint="pfs", line="R-PRRT", n=60.0, median_months=14.0,
                se_months=2.0, selection_min_prior_pfs_months=12.0,
                cumulative_gbq=44.7)  # fmt: skip
    types = ("foregut", "midgut", "hindgut", "pancreatic", "bronchial", "unknown")
    mix = {f"mix_{t}": 0.0 for t in types} | {"mix_midgut": 3.0, "mix_pancreatic": 1.0}
    rows = pd.DataFrame([
        base | {"row_id": "all", "tumour_type": "all"} | mix,
        base | {"row_id": "mid", "tumour_type": "midgut", "study": "sim2"},
    ])  # fmt: skip
    m = SurvivalModel("pfs", studies=rows, include_published=False, study_level=False)
    w = m.added[[f"mix_{t}" for t in ("midgut", "pancreatic")]].to_numpy()
    np.testing.assert_allclose(w[0], [0.75, 0.25])
    mod = m.build()
    # equal type effects (offsets with no contrast between types): the two rows coincide
    p = _point(mod, np.random.default_rng(1), z2_contrasts=np.zeros(5), z1_contrasts=np.zeros(5))
    lp = _values(mod, [mod["study_medians_salvage"]], p)
    one = SurvivalModel("pfs", studies=rows.iloc[[1]], include_published=False, study_level=False)
    built = one.build()
    lp1 = _values(built, [built["study_medians_salvage"]], p)
    assert float(lp[0]) == pytest.approx(2 * float(lp1[0]), rel=1e-9)


def test_added_studies_are_checked_and_get_their_own_effect():
    rows = pd.DataFrame({"study": ["sim_a"], "row_id": ["a"], "endpoint": ["pfs"],
                         "line": ["R-PRRT"], "tumour_type": ["midgut"], "n": [30],
                         "median_months": [12.0]})  # fmt: skip
    m = SurvivalModel("pfs", studies=rows)
    assert m.studies == ["rotterdam2019", "sim_a"]
    assert m.added["threshold"].iloc[0] == 0.0 and m.added["cumulative_gbq"].iloc[0] == 44.7
    with pytest.raises(ValueError, match=r"packaged studies; added studies never replace"):
        SurvivalModel("pfs", studies=rows.assign(study="rotterdam2019"))
    with pytest.warns(UserWarning, match=r"left out: sim_b:b \(RR-PRRT\)"):
        two = SurvivalModel("pfs", studies=[rows, rows.assign(study="sim_b", row_id="b",
                                                                line="RR-PRRT")])  # fmt: skip
    assert list(two.added["study"]) == ["sim_a"]
    with pytest.raises(ValueError, match=r"appears twice"):
        SurvivalModel("pfs", studies=[rows, rows])
    with pytest.raises(ValueError, match=r"below the study's selection threshold"):
        SurvivalModel("pfs", studies=rows.assign(line="I-PRRT", selection_min_prior_pfs_months=18))
    with pytest.raises(ValueError, match=r"no rows of endpoint 'os'"):
        SurvivalModel("os", studies=rows)
    # the study's effect moves its row only
    mod = m.build()
    rng = np.random.default_rng(3)
    p = _point(mod, rng, tau_log__=math.log(0.3), z_study=np.array([0.0, 0.0]))
    a = _potentials(mod, p)
    b = _potentials(mod, p | {"z_study": np.array([0.0, 1.0])})
    assert b["study_medians_salvage"] != pytest.approx(a["study_medians_salvage"], rel=1e-6)
    assert b["salvage_medians_r"] == a["salvage_medians_r"]


def test_the_loader_feeds_the_model():
    """netbayes.load_published reads the documented example; the model takes its rows."""
    from pathlib import Path

    import netbayes

    path = Path(__file__).resolve().parents[1] / "docs" / "examples" / "published_example.csv"
    pub = netbayes.load_published(path)
    with pytest.warns(UserWarning, match="RR-PRRT"):
        m = SurvivalModel("pfs", studies=pub)
    assert m.studies == ["rotterdam2019", "sim_a", "sim_b"]
    logps = m.build().point_logps()
    assert np.isfinite(logps["study_medians_salvage"] + logps["study_medians_first_line"])


def test_added_grade_counts_are_binomial_in_the_model_risk():
    """An added study's grade >= III counts (per cell line and any line) have the binomial
    log-likelihood of the prediction formula's risk for a patient on that line at that
    study's centre (formulas.toxicity.grade3_risk with the study's effect)."""
    from netbayes.formulas import toxicity as ftox

    rows = pd.DataFrame({
        "study": "sim_t", "row_id": ["p", "a", "l"], "line": ["R-PRRT", "R-PRRT", "I-PRRT"],
        "cell_line": ["platelets", "any", "leucocytes"], "grade": "3+", "count": [3, 5, 1],
        "n": [40, 40, 30], "planned_gbq": [14.8, 14.8, 29.6], "prior_gbq": [29.6, 29.6, 0.0],
    })  # fmt: skip
    tm = ToxicityModel(studies=rows)
    assert tm.studies == ["rotterdam2019", "re188pilot", "sim_t"]
    m = tm.build()
    p = _point(m, np.random.default_rng(6), tau_tox_log__=math.log(0.4),
               z_study_tox=np.array([0.2, -0.5, 1.1]))  # fmt: skip
    names = ["c3", "log_gap", "beta_activity", "beta_prior", "delta_control", "delta_retreated",
             "delta_re188", "theta", "sigma_u", "v_study"]  # fmt: skip
    vals = dict(zip(names, _values(m, [m[n] for n in names], p), strict=True))
    th = {k: np.asarray(v)[None] for k, v in vals.items() if k != "v_study"}
    th["c3"] = th["c3"] - float(vals["v_study"][2])  # the centre's effect, as prediction applies it
    ref = 0.0
    for r in rows.itertuples(index=False):
        per_line, any_line = ftox.grade3_risk(th, r.planned_gbq, r.prior_gbq, r.line)
        risk = float(any_line[0, 0]) if r.cell_line == "any" else float(
            per_line[0, 0, ftox.CELL_LINES.index(r.cell_line)])  # fmt: skip
        ref += r.count * math.log(risk) + (r.n - r.count) * math.log1p(-risk)
    got = _potentials(m, p)["ll_study_counts"]
    assert got == pytest.approx(ref, rel=1e-6)
    with pytest.raises(ValueError, match=r"sim_t:p count=50 of n=40"):
        ToxicityModel(studies=rows.assign(count=[50, 5, 1]))
    with pytest.raises(ValueError, match=r"packaged studies"):
        ToxicityModel(studies=rows.assign(study="re188pilot"))
