"""One prior-spec style for every model (netbayes.priors): distributions, overrides, JSON."""

from __future__ import annotations

import json
import math
from typing import ClassVar

import numpy as np
import pytest
from scipy import stats

from netbayes.priors import DISTS, Prior, PriorSet

PRIORS = {
    "normal": Prior.normal(0.3, 0.7),
    "lognormal": Prior.lognormal(1.5, 0.5),
    "halfnormal": Prior.halfnormal(0.8),
    "beta": Prior.beta(0.88, 0.08),
}


def _scipy(p: Prior):
    if p.dist == "normal":
        return stats.norm(p.mu, p.sigma)
    if p.dist == "lognormal":
        return stats.lognorm(p.sigma, scale=math.exp(p.mu))
    if p.dist == "halfnormal":
        return stats.halfnorm(scale=p.sigma)
    return stats.beta(*p.beta_ab())


def test_every_distribution_is_covered():
    assert set(PRIORS) == set(DISTS)


@pytest.mark.parametrize("name", list(PRIORS))
def test_draws_follow_the_distribution(name):
    """20 000 draws against SciPy: KS p > 1e-3 (fixed seed, so deterministic; a wrong
    parameterisation, e.g. a beta given (a, b) instead of (mean, sd), gives p ~ 0), and the
    exact mean/SD within 4 Monte Carlo SEs."""
    p = PRIORS[name]
    x = p.sample(np.random.default_rng(3), 20000)
    assert stats.kstest(x, _scipy(p).cdf).pvalue > 1e-3
    m, s = p.mean_sd()
    assert m == pytest.approx(_scipy(p).mean(), rel=1e-12)
    assert s == pytest.approx(_scipy(p).std(), rel=1e-12)
    assert abs(x.mean() - m) < 4 * s / math.sqrt(x.size)


@pytest.mark.parametrize("name", list(PRIORS))
def test_pymc_variable_has_the_scipy_density(name):
    import pymc as pm

    p = PRIORS[name]
    with pm.Model() as model:
        p.rv(pm, "x")
    xs = _scipy(p).ppf([0.05, 0.5, 0.95])
    logp = model.compile_logp(jacobian=False)
    for x in xs:
        got = logp(
            {model.rvs_to_values[model["x"]].name: x}
            if p.dist == "normal"
            else {model.rvs_to_values[model["x"]].name: _transformed(p, x)}
        )
        np.testing.assert_allclose(got, _scipy(p).logpdf(x), rtol=1e-7)  # log/exp round trip


def _transformed(p: Prior, x: float) -> float:
    """The value variable of a constrained prior (log for positive, logit for (0, 1))."""
    return math.log(x) if p.support == "positive" else math.log(x / (1 - x))


def test_scalar_draw_is_the_historic_arithmetic():
    """A scalar draw consumes one normal, exactly as the simulators always drew their truths
    (``rng.normal(mu, sd)``, ``math.exp`` of it, ``abs`` of it): the SBC and coverage
    replicates of earlier benchmark runs stay reproducible."""
    a, b = np.random.default_rng(11), np.random.default_rng(11)
    assert Prior.normal(0.2, 0.5).sample(a) == b.normal(0.2, 0.5)
    assert Prior.lognormal(1.5, 0.5).sample(a) == math.exp(b.normal(math.log(1.5), 0.5))
    assert Prior.halfnormal(0.5).sample(a) == abs(b.normal(0, 0.5))
    assert a.normal() == b.normal()  # the streams are in step


class _Set(PriorSet):
    DEFAULTS: ClassVar = {
        "a": Prior.normal(0.0, 1.0, "a location", "wide"),
        "s": Prior.halfnormal(1.0, "a scale", "weakly informative"),
        "g": Prior.normal(-0.5, 0.75, "a log gap", "shifted when sampling"),
    }
    ONLY: ClassVar = {"g": ("normal",)}


def test_overrides_keep_what_they_do_not_change():
    p = _Set(a={"sigma": 2.0}, s=Prior.lognormal(0.5, 0.3))
    assert (p.a.dist, p.a.mu, p.a.sigma, p.a.meaning) == ("normal", 0.0, 2.0, "a location")
    assert p["s"].dist == "lognormal" and p["s"].meaning == "a scale"  # meaning carried over
    assert _Set()["a"].sigma == 1.0  # the defaults are untouched
    assert p.replace(a={"mu": 1.0}).a == Prior.normal(1.0, 2.0, "a location", "wide")
    assert p != _Set() and _Set() == _Set() and len(p) == 3 and list(p) == ["a", "s", "g"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"b": {"mu": 0}}, "unknown parameter 'b'; allowed: a, s, g"),
        ({"a": {"sd": 1}}, r"priors\['a'\]: unknown field\(s\) \['sd'\]"),
        ({"a": {"sigma": 0.0}}, r"priors\['a'\]: sigma=0.0; expected a finite number > 0"),
        ({"a": {"mu": float("nan")}}, r"priors\['a'\]: mu=nan; expected a finite number"),
        ({"a": {"mu": True}}, r"priors\['a'\]: mu=True"),
        ({"a": {"dist": "cauchy"}}, r"priors\['a'\]: dist='cauchy'; allowed"),
        (
            {"s": {"dist": "normal"}},
            r"priors\['s'\]: dist='normal' has support real; the "
            "parameter needs a positive one \\(lognormal, halfnormal\\)",
        ),
        ({"g": {"dist": "normal", "sigma": 1.0}}, None),
        ({"a": (0.0, 1.0)}, r"priors\['a'\]: \(0.0, 1.0\); expected a Prior or a mapping"),
    ],
)
def test_bad_overrides_name_the_parameter(change, message):
    if message is None:
        assert _Set(change)["g"].sigma == 1.0
        return
    with pytest.raises(ValueError, match=message):
        _Set(change)


def test_only_list_and_beta_bounds():
    class _B(PriorSet):
        DEFAULTS: ClassVar = {"att": Prior.beta(0.5, 0.1), "g": Prior.normal(0, 1)}
        ONLY: ClassVar = {"g": ("normal",)}

    with pytest.raises(ValueError, match=r"sd\*\*2 < mean \* \(1 - mean\)"):
        _B(att={"sigma": 0.6})
    with pytest.raises(ValueError, match=r"mean=1.2"):
        _B(att={"mu": 1.2})


def test_json_form_round_trips():
    p = _Set(a={"sigma": 2.0})
    d = json.loads(json.dumps(p.to_dict()))
    assert d["a"] == {"dist": "normal", "mu": 0.0, "sigma": 2.0}
    assert _Set({k: {f: v[f] for f in ("dist", "mu", "sigma")} for k, v in d.items()}) == p


def test_both_models_share_the_style():
    """Same base class, same overrides, same JSON in the model card, same table."""
    from netbayes.models.survival import SurvivalModel, SurvivalPriors
    from netbayes.models.toxicity import ToxicityModel, ToxicityPriors

    sm = SurvivalModel("pfs", priors={"beta_gbq": {"sigma": 0.3}})
    tm = ToxicityModel(priors={"theta": {"sigma": 0.5}})
    for m, cls in ((sm, SurvivalPriors), (tm, ToxicityPriors)):
        assert isinstance(m.priors, cls) and isinstance(m.priors, PriorSet)
        assert m.model_info()["priors"] == m.priors.to_dict() == m.config()["priors"]
        t = m.prior_table()
        assert {"dist", "args", "meaning", "why", "prior_mean", "prior_sd"} <= set(t.columns)
    t = sm.prior_table()
    assert t.loc["beta_gbq", "prior_sd"] == pytest.approx(0.3, rel=0.03)  # 20 000 draws: 1% SE
    assert "alpha1_os" not in t.index and "spearman_attenuation" in t.index
    assert "alpha1_os" in SurvivalModel("os").prior_table().index
    # the card tells a changed prior apart
    assert sm.config()["priors"] != SurvivalModel("pfs").config()["priors"]
