"""The survival model's type-mean sampling coordinates are an exact change of variables.

The intercepts and type offsets of each block are sampled as (``<alpha>_types``,
``<z>_mean_w``, ``<z>_contrasts``) ("Sampling coordinates" in ``netbayes.models.survival``).
The posterior is the model's only if (1) the map back to (alpha, z) is the written one,
(2) the density in the new coordinates is the old one times the map's Jacobian, and (3) the
prior draws of alpha and z are those of N(mu, sd) and N(0, 1). Each is checked here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from netbayes.models.survival import (
    SurvivalModel,
    SurvivalPriors,
    _contrast_basis,
    _value_point,
)


def _fn(model, outs):
    import pytensor

    graphs = model.replace_rvs_by_values(outs)
    return pytensor.function(model.value_vars, graphs, on_unused_input="ignore")


def _call(model, fn, point):
    return fn(**{v.name: point[v.name] for v in model.value_vars})


@pytest.fixture(scope="module")
def users_model():
    """A user's study with CENTRED_STUDY_ROWS salvage rows: its study effect and the salvage
    block's type contrasts are sampled centred."""
    from netbayes.models import survival

    return SurvivalModel("pfs", patients=_rows(survival.CENTRED_STUDY_ROWS, "lyon")).build()


@pytest.fixture(scope="module")
def models():
    return {
        "pfs": SurvivalModel("pfs").build(),
        "pfs_one_centre": SurvivalModel("pfs", study_level=False).build(),
        "os": SurvivalModel("os").build(),
    }


def test_contrast_basis_is_orthonormal_and_sums_to_zero():
    for n in (2, 3, 6):
        b = _contrast_basis(n)
        assert b.shape == (n, n - 1)
        np.testing.assert_allclose(b.T @ b, np.eye(n - 1), atol=1e-15)
        np.testing.assert_allclose(b.sum(axis=0), 0.0, atol=1e-15)


@pytest.mark.parametrize("name", ["pfs", "pfs_one_centre", "os"])
def test_the_map_returns_the_parameters_it_was_given(models, name):
    """alpha, the anchor, z and sigma evaluated at ``_value_point(values)`` are ``values``:
    the inverse in ``_type_mean_coordinates`` and the model's forward map agree."""
    m = models[name]
    blocks = [("alpha1", "z1", "sigma1"), ("alpha2", "z2", "sigma2")]
    if name == "os":
        blocks.append(("alpha1_os", "z1_os", "sigma1_os"))
    rng = np.random.default_rng(11)
    names = [n for b in blocks for n in b]
    blocks_fn = _fn(m, [m[n] for n in names])  # compiled once
    anchor_fn = _fn(m, [m["alpha2_anchor"]]) if name != "pfs_one_centre" else None
    for _ in range(3):
        vals = {}
        for a, z, s in blocks:
            vals |= {a: rng.normal(3.0, 1.0), z: rng.normal(size=6), s: rng.uniform(0.05, 1.5)}
        if name != "pfs_one_centre":
            vals |= {"tau": rng.uniform(0.05, 0.8), "z_study": rng.normal(size=m["z_study"].size
                                                                        .eval())}  # fmt: skip
        point = _value_point(m, SurvivalPriors(), vals)
        got = dict(zip(names, _call(m, blocks_fn, point), strict=True))
        for n in names:
            np.testing.assert_allclose(got[n], vals[n], rtol=1e-12, atol=1e-12, err_msg=n)
        if name != "pfs_one_centre":
            u0 = vals["tau"] * vals["z_study"][0]
            [anchor] = _call(m, anchor_fn, point)
            assert float(anchor) == pytest.approx(vals["alpha2"] + u0, rel=1e-12)


@pytest.mark.parametrize("name", ["pfs", "pfs_one_centre", "users"])
def test_density_is_the_written_one_times_the_jacobian(models, users_model, name):
    """log p(types, w, contrasts) = log N(alpha_anchor; mu + u_0, sd) + sum log N(z_j; 0, 1)
    + log |det d(alpha, z)/d(types, w, contrasts)| at fixed sigma and u, the Jacobian taken
    numerically by PyTensor (a wrong conditional mean, SD or basis would break it)."""
    import pytensor
    import pytensor.tensor as pt

    m = users_model if name == "users" else models[name]
    # the users' 500 salvage rows: block 2's contrasts are sampled centred
    a, z, c = (
        ("alpha2", "z2", "z2_contrasts_centred")
        if name == "users"
        else ("alpha1", "z1", "z1_contrasts")
    )
    prior = SurvivalPriors()[a]
    rng = np.random.default_rng(3)
    coords = [m.rvs_to_values[m[n]] for n in (f"{a}_types", f"{z}_mean_w", c)]
    a_name = a if name == "pfs_one_centre" else f"{a}_anchor"
    [a_g, z_g] = m.replace_rvs_by_values([m[a_name], m[z]])
    flat = pt.concatenate([pt.atleast_1d(a_g), z_g])
    jac = pt.concatenate(
        [pt.atleast_2d(pytensor.gradient.jacobian(flat, c)).reshape((7, -1)) for c in coords],
        axis=1,
    )
    prior_lp = m.logp(vars=[m[f"{a}_types"], m[f"{z}_mean_w"], m[c]])
    outs = [prior_lp, jac, a_g, z_g]
    if name != "pfs_one_centre":
        outs.append(m.replace_rvs_by_values([m["u_study"]])[0])
    fn = pytensor.function(m.value_vars, outs, on_unused_input="ignore")
    for _ in range(4):
        vals = {a: rng.normal(3.7, 0.8), z: rng.normal(size=6),
                f"sigma{a[-1]}": rng.uniform(0.02, 2.0)}  # fmt: skip
        if name == "pfs":
            vals |= {"tau": rng.uniform(0.05, 0.8), "z_study": rng.normal(size=1)}
        if name == "users":
            vals |= {"tau": rng.uniform(0.05, 0.8), "z_study_noncentred": rng.normal(size=1)}
        point = _value_point(m, SurvivalPriors(), vals)
        lp, j, a_v, z_v, *u = _call(m, fn, point)
        assert j.shape == (7, 7)
        mu = prior.mu + (float(u[0][0]) if u else 0.0)
        written = (
            -0.5 * ((a_v - mu) / prior.sigma) ** 2 - math.log(prior.sigma * math.sqrt(2 * math.pi))
            - 0.5 * np.sum(z_v**2) - 3 * math.log(2 * math.pi)
        )  # fmt: skip
        assert float(lp) == pytest.approx(written + math.log(abs(np.linalg.det(j))), abs=1e-10)


def test_prior_draws_are_the_written_priors(models):
    """20,000 prior draws: alpha1 ~ N(log 40, 1) and z1_j ~ N(0, 1), independent of each other
    and of sigma1. Tolerances are 5 Monte Carlo SEs: 1/sqrt(N) = 0.0071 for means and
    correlations, 1/sqrt(2N) = 0.005 for SDs."""
    import pymc as pm

    m = models["pfs"]
    a, z, s = pm.draw([m["alpha1"], m["z1"], m["sigma1"]], draws=20_000, random_seed=7)
    n = len(a)
    se = 1 / math.sqrt(n)
    assert abs(a.mean() - math.log(40.0)) < 5 * se and abs(a.std() - 1.0) < 5 * se / math.sqrt(2)
    assert np.all(np.abs(z.mean(axis=0)) < 5 * se)
    assert np.all(np.abs(z.std(axis=0) - 1.0) < 5 * se / math.sqrt(2))
    c = np.corrcoef(np.column_stack([a, z, s, z.mean(axis=1)]).T)
    off = c[:8, :8][~np.eye(8, dtype=bool)]  # alpha, the six z, sigma: pairwise independent
    assert np.all(np.abs(off) < 5 * se), c[:8, :8].round(3)
    assert abs(c[0, 8]) < 5 * se and abs(c[7, 8]) < 5 * se  # alpha, sigma vs the mean offset


def test_log_prior_group_holds_the_written_densities():
    """A fit's ``log_prior`` has N(mu + u_0, sd) for the anchors and N(0, 1) per type for the
    offsets (what power-scaling sensitivity scales), not the sampling coordinates'."""
    import xarray as xr

    rng = np.random.default_rng(2)
    shape = (2, 5)
    post = xr.Dataset({
        "alpha1_anchor": (("chain", "draw"), rng.normal(3.7, 0.3, shape)),
        "alpha2_anchor": (("chain", "draw"), rng.normal(2.9, 0.3, shape)),
        "z1": (("chain", "draw", "tumour_type"), rng.normal(size=(*shape, 6))),
        "z2": (("chain", "draw", "tumour_type"), rng.normal(size=(*shape, 6))),
        "u_study": (("chain", "draw", "study"), rng.normal(0, 0.3, (*shape, 1))),
    })  # fmt: skip
    sm = SurvivalModel("pfs")
    lp = sm._type_log_priors(xr.Dataset(), post, {"z1_contrasts", "z2_contrasts", "z_study"})
    assert set(lp.data_vars) == {"alpha1_anchor", "alpha2_anchor", "z1", "z2"}
    pr = sm.priors["alpha1"]
    mu = pr.mu + post["u_study"].to_numpy()[..., 0]
    x = post["alpha1_anchor"].to_numpy()
    want = -0.5 * ((x - mu) / pr.sigma) ** 2 - math.log(pr.sigma * math.sqrt(2 * math.pi))
    np.testing.assert_allclose(lp["alpha1_anchor"].to_numpy(), want, rtol=1e-13)
    zz = post["z2"].to_numpy()
    np.testing.assert_allclose(lp["z2"].to_numpy(), -0.5 * zz**2 - 0.5 * math.log(2 * math.pi),
                               rtol=1e-13)  # fmt: skip
    assert lp["z2"].dims == ("chain", "draw", "tumour_type")


# ----------------------------------------------------------------------------------------------
# study effects: centred for a user's study with many rows
# ----------------------------------------------------------------------------------------------
def _rows(n, study):
    import pandas as pd

    k = np.arange(n)
    return pd.DataFrame({
        "time_months": 5.0 + (k % 17), "event": (k % 3 > 0).astype(int), "line": "R-PRRT",
        "tumour_type": np.array(["midgut", "pancreatic", "hindgut"])[k % 3],
        "prior_pfs_months": 20.0 + (k % 11), "cumulative_gbq": 44.7, "study": study,
    })  # fmt: skip


@pytest.fixture(scope="module")
def study_models():
    """The same data with the large study's effect centred (the default) and non-centred."""
    import pandas as pd

    from netbayes.models import survival

    pts = pd.concat([_rows(survival.CENTRED_STUDY_ROWS, "lyon"), _rows(20, "oslo")])
    centred = SurvivalModel("pfs", patients=pts)
    old = survival.CENTRED_STUDY_ROWS
    survival.CENTRED_STUDY_ROWS = 10**9
    try:
        plain = SurvivalModel("pfs", patients=pts)
        plain_model = plain.build()
    finally:
        survival.CENTRED_STUDY_ROWS = old
    return centred, centred.build(), plain_model


def test_a_study_with_many_rows_is_sampled_centred(study_models):
    sm, m, plain = study_models
    assert sm.studies == ["rotterdam2019", "lyon", "oslo"]
    np.testing.assert_array_equal(sm._centred_studies(), [False, True, False])
    free = {v.name for v in m.free_RVs}
    assert {"u_study_relative", "z_study_noncentred"} <= free and "z_study" not in free
    assert "z_study" in {v.name for v in plain.free_RVs}
    assert SurvivalModel("pfs")._centred_studies().tolist() == [False]  # published data alone
    assert "z2_contrasts_centred" in free and "z1_contrasts" in free  # 520 salvage rows, 0 first
    assert "z2_contrasts" in {v.name for v in plain.free_RVs}


def test_centred_study_density_is_the_non_centred_one_over_tau(study_models):
    """At the same parameters, the joint log density with lyon's effect centred (relative to
    the anchor's, u_lyon - u_0) and the salvage contrasts centred is the non-centred one minus
    log tau and 5 log sigma2 (the Jacobians of u = tau z and sigma2 x contrasts; the shift by
    u_0 has Jacobian 1), every likelihood term equal; z_study and u_study are recorded as
    written."""
    _, m, plain = study_models
    rng = np.random.default_rng(8)
    base = plain.initial_point()
    logp_c, logp_nc = m.compile_logp(), plain.compile_logp()  # compiled once: seconds each
    z_and_u = _fn(m, [m["z_study"], m["u_study"]])
    for _ in range(3):
        p_nc = {k: v + 0.3 * rng.standard_normal(np.shape(v)) for k, v in base.items()}
        tau, z = math.exp(float(p_nc["tau_log__"])), p_nc["z_study"]
        s2 = math.exp(float(p_nc["sigma2_log__"]))
        p_c = {k: v for k, v in p_nc.items() if k not in ("z_study", "z2_contrasts")}
        p_c |= {"u_study_relative": tau * (z[[1]] - z[0]), "z_study_noncentred": z[[0, 2]],
                "z2_contrasts_centred": s2 * p_nc["z2_contrasts"]}  # fmt: skip
        lp_c, lp_nc = logp_c(p_c), logp_nc(p_nc)
        # Jacobians: u = tau z (one study), the 5 salvage contrasts times sigma2
        want = float(lp_nc) - math.log(tau) - 5 * math.log(s2)
        assert float(lp_c) == pytest.approx(want, abs=1e-8)
        z_got, u_got = _call(m, z_and_u, p_c)
        np.testing.assert_allclose(z_got, z, rtol=1e-12)
        np.testing.assert_allclose(u_got, tau * z, rtol=1e-12)


def test_centred_study_prior_draws_are_the_written_prior(study_models):
    """20,000 prior draws: every z_study ~ N(0, 1), independent of tau (5 MC SEs)."""
    import pymc as pm

    _, m, _ = study_models
    z, tau = pm.draw([m["z_study"], m["tau"]], draws=20_000, random_seed=9)
    se = 1 / math.sqrt(len(z))
    assert np.all(np.abs(z.mean(axis=0)) < 5 * se)
    assert np.all(np.abs(z.std(axis=0) - 1.0) < 5 * se / math.sqrt(2))
    for j in range(3):
        assert abs(np.corrcoef(z[:, j], np.log(tau))[0, 1]) < 5 * se


def test_log_prior_of_centred_study_effects_is_z_studys(study_models):
    import xarray as xr

    sm = study_models[0]
    z = np.random.default_rng(1).normal(size=(2, 4, 3))
    post = xr.Dataset({"z_study": (("chain", "draw", "study"), z)})
    lp = sm._type_log_priors(xr.Dataset(), post, set())
    np.testing.assert_allclose(lp["z_study"].to_numpy(), -0.5 * z**2 - 0.5 * math.log(2 * math.pi))
