"""The toxicity model's priors (:class:`ToxicityPriors`), apart from the model so that the
prediction path can read them without PyTensor (:mod:`netbayes.predict.share`). Re-exported by
:mod:`netbayes.models.toxicity`; the parameters are explained in its module docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from netbayes.priors import Prior, PriorSet

__all__ = ["DEFAULT_PRIORS", "ToxicityPriors"]


class ToxicityPriors(PriorSet):
    """Priors of the toxicity model (a :class:`netbayes.priors.PriorSet`), on the conditional
    (patient-level probit) scale; see "Parameterisation" in the module docstring.

    Override any of them with :meth:`replace` or the model's ``priors=`` argument, e.g.
    ``ToxicityModel(priors={"theta": {"mu": 1.0, "sigma": 0.5}})``. ``log_gap`` keeps a normal
    prior (it is shifted by log sqrt(1 + sigma_u^2) when sampling).
    """

    DEFAULTS: ClassVar[Mapping[str, Prior]] = {
        "c3": Prior.normal(
            1.8, 0.9,
            "grade III cutpoint per line at 29.9 GBq I-PRRT (probit, conditional on u = 0)",
            "P(grade >= III) after a standard course is a few % per line (Phi(-1.8) = 3.6%); "
            "95% range 0.1%-50%"),
        "log_gap": Prior.normal(
            -0.5, 0.75, "log gaps c2-c1, c3-c2, c4-c3 per line",
            "gaps of ~0.6 probit units (0.14-2.6 at 95%): grades roughly evenly spread"),
        "beta_activity": Prior.normal(
            0.2, 0.25, "probit effect of +10 GBq activity in the block",
            "judgement, direction only from the literature: marrow dose grows with activity "
            "(67 +- 7 mGy/GBq, Bergsma et al., EJNMMI 2016;43:453-463) and blood counts fall "
            "with marrow dose (EJNMMI Res 2024, doi:10.1186/s13550-024-01077-7), but no "
            "source gives the size on this scale; 21% prior mass below 0"),
        "beta_prior": Prior.normal(
            0.1, 0.2, "probit effect of +10 GBq prior cumulative activity (marrow reserve)",
            "reduced reserve expected but smaller than the acute effect (pilot paper's "
            "discussion disputes a major impact); sceptical"),
        "delta_control": Prior.normal(
            0.0, 0.45, "Rotterdam safety-control cohort vs retreatment group at I-PRRT",
            "selection (F12): sceptical, centred on no difference"),
        "delta_retreated": Prior.normal(
            0.0, 0.45, "selection effect of retreated patients (R-PRRT, RR-PRRT)",
            "selected for tolerance; confounded with dose in aggregate data: sceptical"),
        "delta_re188": Prior.normal(
            0.0, 0.45, "188Re-HEDP pilot cohort effect (baseline cytopenia, other centre)",
            "sceptical default, not from the literature: one small cohort, confounded with "
            "theta"),
        "delta_user": Prior.normal(
            0.0, 0.45, "cohort effect of the user's own records",
            "another centre and grading practice: sceptical"),
        "theta": Prior.lognormal(
            8.0, 0.7, "GBq 177Lu-octreotate marrow-equivalent to 1 GBq 188Re-HEDP",
            "physics (module docstring): bone-seeking high-energy beta vs renally cleared "
            "low-energy beta; median 8, 95% range ~2-32; judgement, no dosimetry source"),
        "tau_tox": Prior.lognormal(
            0.34, 0.51, "SD of the study (centre) effects on the marginal probit scale of "
            "P(grade >= III) (latent scale: times sqrt(1 + sigma_u^2))",
            "external: the between-study heterogeneity of grade 3/4 toxicity after salvage PRRT "
            "in two meta-analyses (netbayes.calibration.heterogeneity.tau_prior_toxicity; "
            "docs/tau_priors.md); two studies cannot learn it"),
        "sigma_u": Prior.halfnormal(
            1.0, "SD of the patient propensity shared by the three lines (probit scale)",
            "lines co-fail (marrow is one organ); intra-class correlation up to ~0.8"),
    }  # fmt: skip
    KIND: ClassVar[Mapping[str, str]] = {
        "c3": "weak", "log_gap": "weak", "beta_activity": "judgement", "beta_prior": "sceptical",
        "delta_control": "sceptical", "delta_retreated": "sceptical", "delta_re188": "sceptical",
        "delta_user": "sceptical", "theta": "judgement", "tau_tox": "external", "sigma_u": "weak",
    }  # fmt: skip
    """The kind of each default prior (:data:`netbayes.priors.KINDS`; docs/prior_share.md)."""
    ONLY: ClassVar[Mapping[str, tuple[str, ...]]] = {"log_gap": ("normal",)}


DEFAULT_PRIORS = ToxicityPriors()
"""The default priors (an instance of :class:`ToxicityPriors`)."""
