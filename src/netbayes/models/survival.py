r"""Hierarchical parametric survival model of PFS (or OS) after NET radionuclide therapy.

Structure
---------
Two linked blocks, both accelerated-failure-time (AFT) in the covariates, of one survival
family (:mod:`netbayes.families`; Weibull by default, written below, or log-normal):

*First line* (I-PRRT): PFS after the first cycle of initial PRRT for tumour type :math:`j`,

.. math:: T_1 \sim \mathrm{Weibull}(k_1, \lambda_{1j}),\quad
          \log\lambda_{1j} = \alpha_1 + \sigma_1 z_{1j} \;(+\,\delta_{control}).

*Salvage lines* (R-PRRT, RR-PRRT, 188Re-HEDP): time after the first cycle of the line for a
patient of type :math:`j` with prior PFS :math:`x` (PFS after the previous line, months) and
cumulative 177Lu activity :math:`d` (GBq, after the line),

.. math:: T \sim \mathrm{Weibull}(k_2, \lambda),\quad
          \log\lambda = \alpha_2 + \sigma_2 z_{2j} + \beta_x \log(x / 36)
          + \beta_{GBq} (d - 44.7)/10 + \gamma_{line},

so :math:`T \propto x^{\beta_x}` (doubling prior PFS multiplies salvage PFS by
:math:`2^{\beta_x}`). Tumour-type effects are partially pooled and non-centred
(:math:`z \sim N(0, 1)`). With ``endpoint="os"`` the salvage block (and the first-line rows of
the published table) describe OS; the prior-PFS distribution still comes from the first-line
PFS rows, which are always in the model.

Likelihood
----------
* Published Kaplan-Meier medians (Rotterdam Table 5), per tumour type: the median as the
  :math:`\lceil n/2\rceil`-th order statistic of :math:`n` draws from the row's population
  distribution, plus the Wald SE implied by the CI width as a noisy measurement of the
  asymptotic SE :math:`\sqrt{1/(4n)}/f(\hat m)`, with the row's density taken at the
  *published* median :math:`\hat m` (the paper's KM slope is measured around it; at the
  population median instead, the simulated SE residuals correlated 0.34 with the median's
  own error, against 0.09-0.12 at :math:`\hat m`): :math:`\log\widehat{SE} \sim
  N(\log SE - \tau^2/2, \tau)` with :math:`\tau = \kappa_{SE}/\sqrt n`. The CI width is what
  teaches the model the shape. The noise shrinks like :math:`1/\sqrt n` because the KM slope
  at the median is estimated from the few events near it. Censoring before the median is
  ignored (follow-up is much longer than the medians); :math:`\kappa_{SE}` absorbs its effect
  on the SE and has a tight prior calibrated by simulation of the estimator
  (:attr:`SurvivalPriors.kappa_se`).
* First-line rows of retreated (and control) patients are truncated at the 18-month selection
  rule. Salvage-line rows are *mixtures* over the prior PFS of the selected patients: R-PRRT
  over the first-line PFS of type :math:`j` truncated at 18 months, RR-PRRT over the R-PRRT PFS
  truncated at 14 months (nested), each integrated on a midpoint quantile grid; their SE uses
  the mixture density at the published median.
* The "all tumours" rows summarise the same patients as the type rows, so they are **not** in
  the likelihood: they are held out as posterior predictive checks.
* The published Spearman correlation between PFS after I-PRRT and after R-PRRT
  (:math:`r_S = 0.325`, :math:`n = 168`, among patients selected for PFS :math:`\ge` 18
  months) through Fisher's z, against the Spearman correlation the model implies among selected
  patients. This identifies :math:`\beta_x`. The implied value pools the tumour types with
  their published R-PRRT shares, each with its own first-line scale and salvage offset: the
  published coefficient pools them too. The published coefficient was computed on partly
  censored R-PRRT times, which attenuates it: its Fisher z is modelled as an attenuation
  factor :math:`a` times the population value (prior
  :attr:`SurvivalPriors.spearman_attenuation`), with the plain Fisher variance. The factor
  varies from study to study (prior SD 0.08), so over its prior the term's variance
  grows with the coefficient.
* Individual right-censored times: the 188Re-HEDP patients (OS only) and users' own patients.
  Each 188Re-HEDP patient enters at its own prior 177Lu activity and, as the pilot reports no
  prior PFS per patient, as a mixture over the prior-PFS law of its printed interval from the
  previous treatment (:func:`netbayes.formulas.survival.re188_prior_pfs_nodes`), exactly as a
  188Re-HEDP prediction without a prior PFS.
  A coarse tumour type (``gi_non_pancreatic``) is a mixture over foregut/midgut/hindgut with the
  Rotterdam mix as weights.

Cumulative activity is confounded with treatment line in the published data (one median per
line): :math:`\beta_{GBq}` has a sceptical prior centred at no effect, and its posterior is
reported against its prior. The OS rows cannot tell the sign of :math:`\beta_x`; the OS
model's default prior links it to the PFS model's identified effect (:func:`os_beta_x_prior`).

Sampling coordinates
--------------------
The model is the one written above; only the coordinates NUTS moves in differ. In the plain
non-centred coordinates the data fix each type's :math:`\alpha + \sigma z_j`, so the
intercept and the mean offset :math:`\bar z` trade along a ridge whose width depends on
:math:`\sigma`, and the sampler diverged there unless its step was made very small. Each block
(first line, salvage, first-line OS) is therefore sampled as

* ``<alpha>_types`` :math:`= m = \alpha + \sigma\bar z` (the mean of the types' log scales,
  which the data pin down), with its implied prior
  :math:`N(\mu, s^2 + \sigma^2/n)` (:math:`\alpha \sim N(\mu, s^2)`, :math:`n` types);
* ``<z>_mean_w``: :math:`\bar z` given :math:`m`, standardised:
  :math:`\bar z = \frac{\sigma/n}{s^2 + \sigma^2/n}(m - \mu) + \sqrt{\frac{s^2}{n(s^2 +
  \sigma^2/n)}}\, w` with :math:`w \sim N(0, 1)`;
* ``<z>_contrasts``: :math:`z - \bar z` in an orthonormal basis of the vectors that sum to 0,
  :math:`n - 1` independent N(0, 1); or, where the user's patient rows of the block (first
  line for ``z1``, salvage lines for ``z2``) number at least :data:`CENTRED_STUDY_ROWS`,
  ``<z>_contrasts_centred`` :math:`= \sigma \times` those contrasts,
  :math:`N(0, \sigma)`: many rows pin the types' differences down, which the standardised
  contrasts would tie to :math:`1/\sigma`.

This is an exact change of variables of :math:`\alpha \sim N(\mu, s^2)`,
:math:`z_j \sim N(0, 1)`: :math:`\alpha`, :math:`z` (and, with the study level, the anchor
study's intercept ``<alpha>_anchor``, whose prior mean is :math:`\mu + u_0`) are deterministic
functions of the three, and the posterior is unchanged (``tests/test_survival_coordinates.py``
checks the prior draws and the log densities). ``log_prior`` of a fit holds the densities of
:math:`\alpha` (or the anchor) and :math:`z`, as before.

The study effects are :math:`u_s = \tau z_s`, sampled as ``z_study`` (non-centred), except
for a user's study (not the first, anchor, study) with at least :data:`CENTRED_STUDY_ROWS`
patient rows, whose effect is sampled centred and relative to the anchor study's, as
``u_study_relative`` :math:`= u_s - u_0 \sim N(-u_0, \tau)` (the others then as
``z_study_noncentred``; ``u_study`` and ``z_study`` = :math:`u/\tau` are recorded for all).
Many rows pin down such a study's intercept, :math:`\alpha + u_s`, and the anchored
intercept :math:`\alpha + u_0` is pinned by the anchor study's data, so their difference is
what the data fix; as :math:`\tau z_s` it would follow :math:`1/\tau` along a narrow curve.
Again the posterior is the same; ``log_prior`` holds :math:`z`'s N(0, 1) density.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np

from netbayes import fields as fld
from netbayes import spec, vocab
from netbayes._lazy import LazyModule
from netbayes.calibration import (
    SurvivalCalibration,
    default_activities,
    pfs_share_of_os,
    rprrt_pfs_share_of_os,
    survival_calibration,
    type_weight_rows,
)
from netbayes.families import DEFAULT_FAMILY, get_family
from netbayes.formulas.survival import re188_prior_pfs_nodes
from netbayes.models.base import SurvivalInfo, study_column
from netbayes.priors import Prior, PriorSet
from netbayes.spec import GBQ_REF, GBQ_UNIT, X_REF

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = [
    "PATIENT_COLUMNS",
    "SurvivalModel",
    "SurvivalPriors",
    "calibration_constants",
    "os_beta_x_prior",
    "validate_patients",
]

_TINY = np.array(-1e-300)
"""A float64 bound below 0 for log S before ``log1mexp`` (a bare Python float may become a
float32 constant in a PyTensor graph, where -1e-300 is -0)."""
SPEARMAN_NODES = 120
"""Quantile nodes of the implied-Spearman term, shared among tumour types in proportion to
their R-PRRT n (at least 8 each; 127 in all for the published design). Against 300 nodes per
type the implied value is within 0.004 (20 random parameter sets; 4% of the term's SE), and the
term costs a quarter of the pairwise work of 40 nodes per type."""
TARGET_ACCEPT = 0.9
"""Default target acceptance of :meth:`SurvivalModel.fit` (with :data:`ADAPTATION`). In the
type-mean coordinates ("Sampling coordinates" above) the default PFS fit had no divergent
transitions at 0.9 in 3 seeds (the shipped one included); in the plain non-centred
coordinates it needed 0.98, twice the gradients (``benchmarks/README.md``, "Where the time
goes")."""
CENTRED_STUDY_ROWS = 500
"""A user's study (not the anchor) with at least this many patient rows has its study effect
sampled centred, relative to the anchor study's, and a block (first line, salvage) with at
least this many of the user's rows has its type contrasts sampled centred ("Sampling
coordinates" above): the rows pin those differences down, which standardised coordinates
would tie to 1/tau or 1/sigma along a narrow curve (``benchmarks/README.md``, "Where the time
goes")."""
ADAPTATION = "low_rank"
"""Default mass-matrix adaptation of :meth:`SurvivalModel.fit`: nutpie's diagonal plus
low-rank estimate. The shapes, intercepts and covariate effects are correlated through the
published medians; against the diagonal estimate the bulk ESS of the slowest parameter
(``k1``) about doubles (PFS, 3 seeds: 957-1054 against 483-649) for the same number of
gradients."""


def calibration_constants() -> dict[str, float]:
    """Selection thresholds (months) and cumulative activities (GBq) of the calibration data.

    Returns
    -------
    dict of str to float
        ``threshold_r`` (minimum I-PRRT PFS for R-PRRT), ``threshold_rr`` (minimum R-PRRT PFS
        for RR-PRRT), ``gbq_r`` and ``gbq_rr`` (median cumulative activity after each line),
        ``gbq_iprrt_phase`` and ``gbq_rprrt_phase`` (median activity given in the I-PRRT and
        R-PRRT phases: the reference retreated patient).
    """
    cal = survival_calibration("pfs")
    phase = default_activities("R-PRRT")
    return {
        "threshold_r": cal.threshold("R-PRRT"),
        "threshold_rr": cal.threshold("RR-PRRT"),
        "gbq_r": cal.cumulative_gbq["R-PRRT"],
        "gbq_rr": cal.cumulative_gbq["RR-PRRT"],
        "gbq_iprrt_phase": phase[0],
        "gbq_rprrt_phase": phase[1],
    }


class SurvivalPriors(PriorSet):
    """Priors of the survival model (a :class:`netbayes.priors.PriorSet`; times in months).

    Override any of them with :meth:`replace` or the model's ``priors=`` argument, as a
    :class:`~netbayes.priors.Prior` or a mapping of the fields to change, e.g.
    ``SurvivalModel("pfs", priors={"beta_gbq": {"sigma": 0.3}})``. ``kappa_se`` and
    ``spearman_attenuation`` are properties of the published estimators, not of the tumours;
    their evidence is in ``docs/model_notes.md`` and the benchmarks named there.
    """

    DEFAULTS: ClassVar[Mapping[str, Prior]] = {
        "alpha1": Prior.normal(
            math.log(40.0), 1.0, "log first-line scale (population level)",
            "first-line PFS after 177Lu-octreotate is typically 2-4 years; wide (x/e at 1 SD)"),
        "alpha2": Prior.normal(
            math.log(18.0), 1.0,
            "log salvage scale at prior PFS 36 months and 44.7 GBq cumulative",
            "salvage PFS about half the first-line one; wide"),
        "k1": Prior.lognormal(
            1.5, 0.5, "first-line shape", "hazard rising with time, as usual after PRRT"),
        "k2": Prior.lognormal(1.5, 0.5, "salvage shape", "as k1"),
        "sigma1": Prior.halfnormal(
            0.5, "SD of first-line tumour-type effects (log scale)",
            "types differ by tens of percent in median, rarely by a factor above 3"),
        "sigma2": Prior.halfnormal(
            0.5, "SD of salvage tumour-type effects (log scale)", "as sigma1"),
        "beta_x": Prior.normal(
            0.0, 0.5, "elasticity of salvage time in prior PFS",
            "centred on no carry-over; 95% within +-1"),
        "beta_gbq": Prior.normal(
            0.0, 0.15, "log-time effect per 10 GBq cumulative activity",
            "sceptical default, not from the literature: aggregate data cannot separate "
            "activity from selection, and no published dose-response links cumulative "
            "177Lu activity to PFS (tumour dosimetry relates lesion dose to local response "
            "only: Alipour et al., EJNMMI 2023;50:2997-3010); docs/prior_share.md"),
        "gamma_rr": Prior.normal(
            0.0, 0.5, "RR-PRRT vs R-PRRT log-time effect (beyond activity)",
            "centred on no difference"),
        "gamma_re188": Prior.normal(
            0.0, 1.0, "188Re-HEDP vs R-PRRT log-time effect",
            "weakly informative default, not from the literature (no comparative data on "
            "188Re-HEDP after PRRT): another nuclide and population, so wide"),
        "delta_control": Prior.normal(
            0.0, 0.3, "control-group first-line log-time offset (selection)",
            "sceptical, centred on no selection"),
        "alpha1_os": Prior.normal(
            math.log(90.0), 1.0, "log first-line OS scale (OS model only; total OS from I-PRRT)",
            "OS from first PRRT is several years; wide"),
        "k1_os": Prior.lognormal(1.5, 0.5, "first-line OS shape (OS model only)", "as k1"),
        "sigma1_os": Prior.halfnormal(
            0.5, "SD of first-line OS tumour-type effects (OS model only)", "as sigma1"),
        "spearman_attenuation": Prior.beta(
            0.88, 0.08,
            "attenuation a of the published Spearman coefficient by censoring: "
            "atanh(r_obs) ~ N(a atanh(rho), sqrt(1.06 / (n - 3)))",
            "mean: the slope of the censored coefficient's Fisher z on the population value in "
            "the simulated published design; SD: its study-to-study spread"),
        "tau": Prior.lognormal(
            0.17, 0.59, "SD of the study (centre) effects on log time, shared by a study's lines "
            "and tumour types",
            "external: the between-study heterogeneity of salvage PRRT in two meta-analyses "
            "(netbayes.calibration.heterogeneity.tau_prior_survival; docs/tau_priors.md); one "
            "or two studies cannot learn it"),
        "kappa_se": Prior.lognormal(
            3.0, 0.1, "relative noise of a published SE: SD(log SE) = kappa / sqrt(n)",
            "the noise of Collett's KM-median SE on the published design, by simulation; "
            "tight, as ~13 heavy-tailed SE residuals cannot teach it"),
    }  # fmt: skip
    KIND: ClassVar[Mapping[str, str]] = {
        "alpha1": "weak", "alpha2": "weak", "k1": "weak", "k2": "weak", "sigma1": "weak",
        "sigma2": "weak", "beta_x": "weak", "beta_gbq": "sceptical", "gamma_rr": "sceptical",
        "gamma_re188": "weak", "delta_control": "sceptical", "alpha1_os": "weak",
        "k1_os": "weak", "sigma1_os": "weak", "spearman_attenuation": "external",
        "tau": "external", "kappa_se": "external",
    }  # fmt: skip
    """The kind of each default prior (:data:`netbayes.priors.KINDS`; docs/prior_share.md)."""
    ONLY: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    @classmethod
    def for_endpoint(cls, endpoint: str) -> SurvivalPriors:
        """The default priors of the ``endpoint`` model: the OS model's ``beta_x`` is linked to
        the PFS effect (:func:`os_beta_x_prior`)."""
        spec.check_endpoint(endpoint)
        return cls(beta_x=os_beta_x_prior()) if endpoint == "os" else cls()

    def kind(self, name: str) -> str:
        """As :meth:`PriorSet.kind`; the OS model's linked ``beta_x`` default is
        ``"linked"``."""
        p, d = self[name], self.DEFAULTS[name]
        if name == "beta_x" and (p.dist, p.mu, p.sigma) != (d.dist, d.mu, d.sigma):
            link = os_beta_x_prior()  # reads the OS tables: only when it can be the link
            if (p.dist, p.mu, p.sigma) == (link.dist, link.mu, link.sigma):
                return "linked"
        return super().kind(name)


BETA_X_PFS_POSTERIOR = (0.58, 0.17)
"""Posterior mean and SD of ``beta_x`` in the shipped survival-PFS fit (``models/``; a test
checks them against the shipped posterior to 0.02), the input of :func:`os_beta_x_prior`."""


def os_beta_x_prior(
    pfs: tuple[float, float] = BETA_X_PFS_POSTERIOR, calibration: SurvivalCalibration | None = None
) -> Prior:
    r"""The OS model's prior of ``beta_x``, linked to the PFS model's identified effect.

    The published OS rows cannot tell the sign of the prior-PFS effect on OS (the OS model
    with the neutral Normal(0, 0.5) prior had a posterior SD of 0.64, with mass on both signs),
    while the PFS model identifies it through the published Spearman correlation. OS after a
    retreatment is PFS plus post-progression survival. If post-progression survival does not
    depend on the prior PFS, the OS elasticity is the PFS one times the PFS share of OS,
    :math:`s` = R-PRRT median PFS / median OS (Rotterdam Table 5, all tumours: 14.6 / 26.2 =
    0.56); if it scales like PFS (indolent tumours progress slowly and then live long), the
    elasticity is the PFS one. The link takes :math:`\beta_x^{OS} = w\,\beta_x^{PFS}` with
    :math:`w \sim U(s, 1)` and :math:`\beta_x^{PFS}` at its PFS posterior (mean :math:`m`, SD
    :math:`\sigma`); the prior is the normal with that product's mean
    :math:`E[w]\,m` and SD :math:`\sqrt{E[w]^2\sigma^2 + m^2 Var(w) + Var(w)\sigma^2}`
    (Normal(0.45, 0.15) for the shipped PFS fit).

    Parameters
    ----------
    pfs : (float, float)
        Posterior mean and SD of the PFS model's ``beta_x``.
    calibration : SurvivalCalibration, optional
        Where the all-tumour R-PRRT medians come from (default: the packaged OS calibration).

    Returns
    -------
    Prior
    """
    if calibration is None:
        return _os_beta_x_prior_default(tuple(pfs))
    return _os_beta_x_prior(pfs, calibration)


@functools.cache
def _os_beta_x_prior_default(pfs: tuple[float, float]) -> Prior:
    """:func:`os_beta_x_prior` on the packaged calibration (its share read once, cached)."""
    return _linked_prior(pfs, rprrt_pfs_share_of_os())


def _os_beta_x_prior(pfs: tuple[float, float], cal: SurvivalCalibration) -> Prior:
    """:func:`os_beta_x_prior` on the calibration ``cal``."""
    return _linked_prior(pfs, pfs_share_of_os(cal))


def _linked_prior(pfs: tuple[float, float], share: float) -> Prior:
    """The linked prior from the PFS posterior ``pfs`` and the PFS share of OS."""
    m, sd = float(pfs[0]), float(pfs[1])
    ew, vw = (1.0 + share) / 2.0, (1.0 - share) ** 2 / 12.0
    return Prior.normal(
        round(ew * m, 3),
        round(math.sqrt(ew**2 * sd**2 + m**2 * vw + vw * sd**2), 3),
        "elasticity of salvage OS in prior PFS",
        f"linked to the PFS model's identified effect (posterior {m:g} +- {sd:g}) times the "
        f"PFS share of OS, U({share:.2f}, 1) (os_beta_x_prior)",
    )


USER_STUDY = "user"
"""Study label of a user's patients without a ``study`` column."""
PATIENT_COLUMNS: dict[str, str] = {
    "time_months": "follow-up time from the first cycle of `line` to event or censoring, > 0 "
    "and <= 600 months",
    "event": "1 = progression (or death for OS) observed, 0 = censored",
    "line": f"treatment line, one of {', '.join(vocab.LINES)}",
    "tumour_type": f"one of {', '.join(vocab.PATIENT_TUMOUR_TYPES)}",
    "prior_pfs_months": "PFS after the previous line (months, >= 1 day and <= 600); required for "
    "salvage lines, ignored for I-PRRT; may be missing for 188Re-HEDP",
    "cumulative_gbq": "cumulative 177Lu activity after this line (GBq, >= 0 and <= 200); "
    "required for R-PRRT and RR-PRRT",
    "study": f"optional: the centre or study the patient was treated in (a label; default "
    f"{USER_STUDY!r}); each study gets its own effect in the study level",
}
"""Columns of a user's patient table (see :func:`validate_patients`)."""

_REQUIRED_COLUMNS = ("time_months", "event", "line", "tumour_type")


def _bad(field: str, value: Any, allowed: str, row: Any = None) -> ValueError:
    return fld.bad(field, value, allowed, row)


def _levels(df: pd.DataFrame, col: str, levels: Sequence[str]) -> pd.Categorical:
    """A vocabulary column as a categorical; an unknown value is refused with a suggestion."""
    raw = df[col]
    vals = raw.map(lambda v: v.strip() if isinstance(v, str) else None)
    bad = ~vals.isin(levels)
    if bad.any():
        i = bad[bad].index[0]
        v = raw[i]
        raise _bad(col, v, f"one of {', '.join(levels)}{fld.suggest(v, levels)}", i)
    return pd.Categorical(vals, categories=list(levels))


def validate_patients(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a user's individual patient table and return a typed copy.

    Every value is checked as prediction input is (:mod:`netbayes.fields`): numbers are real
    numbers (not booleans, strings, dates or durations), finite and inside the plausibility
    limits of their column, with the likely unit mistake named (a cumulative activity of
    44,700 "looks like MBq"); an unknown or misspelled column is refused with the closest
    known name. The limits (wider than the published data, which a user's patients may
    extend):

    ==================  =========================  ==========================================
    column              allowed                    when
    ==================  =========================  ==========================================
    time_months         > 0 and <= 600 months      every row
    event               0, 1 (or False, True)      every row
    line                :data:`vocab.LINES`        every row
    tumour_type         patient tumour types       every row
    prior_pfs_months    >= 1 day and <= 600 months required for R-PRRT and RR-PRRT; may be
                                                   missing for 188Re-HEDP; ignored for I-PRRT
    cumulative_gbq      >= 0 and <= 200 GBq        required for R-PRRT and RR-PRRT
    study               a non-empty label          optional (default ``"user"``)
    ==================  =========================  ==========================================

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient and line, with the columns of :data:`PATIENT_COLUMNS`
        (``prior_pfs_months`` and ``cumulative_gbq`` may be absent if every row is I-PRRT).

    Returns
    -------
    pandas.DataFrame
        Typed columns: floats for times and activities, int 0/1 for ``event``, categoricals for
        ``line`` and ``tumour_type``.

    Raises
    ------
    TypeError
        ``df`` is not a DataFrame.
    ValueError
        Naming the column, the offending value and row, and what is allowed.
    """
    fld.check_columns(
        df,
        "patients",
        _REQUIRED_COLUMNS,
        [c for c in PATIENT_COLUMNS if c not in _REQUIRED_COLUMNS],
        "netbayes.models.survival.PATIENT_COLUMNS",
    )
    out = pd.DataFrame(index=df.index)
    for col in ("time_months", "prior_pfs_months", "cumulative_gbq"):
        out[col] = fld.number_column(df, col)
    t = out["time_months"]
    if t.isna().any():
        i = t[t.isna()].index[0]
        raise _bad("time_months", df.loc[i, "time_months"], "a time > 0 months (not missing)", i)
    ev = df["event"]
    ok = ev.map(
        lambda v: (
            (isinstance(v, (bool, np.bool_)) or isinstance(v, (int, float, np.number)))
            and not (isinstance(v, float) and math.isnan(v))
            and v in (0, 1)
        )
    )
    if not ok.all():
        i = ok[~ok].index[0]
        raise _bad("event", ev[i], "0 (censored) or 1 (event)", i)
    out["event"] = ev.astype(int)
    out["study"] = study_column(df, USER_STUDY, _bad)
    for col, levels in (("line", vocab.LINES), ("tumour_type", vocab.PATIENT_TUMOUR_TYPES)):
        out[col] = _levels(df, col, levels)
    x, d = out["prior_pfs_months"], out["cumulative_gbq"]
    selected = [n for n, ls in spec.LINE_SPECS.items() if ls.selected_after is not None]
    needs = out["line"].isin(selected)  # retreatments: selected on the previous line's PFS
    for col, s, allowed in (
        (
            "prior_pfs_months",
            x,
            "a prior PFS > 0 months (required for R-PRRT and RR-PRRT): "
            + fld.allowed_range("prior_pfs_months"),
        ),
        (
            "cumulative_gbq",
            d,
            "a cumulative activity >= 0 GBq (required for R-PRRT/RR-PRRT): "
            + fld.allowed_range("cumulative_gbq"),
        ),
    ):
        miss = needs & s.isna()
        if miss.any():
            i = miss[miss].index[0]
            raise _bad(col, s[i], allowed, i)
    return out


_type_weights = type_weight_rows
"""Rows of weights over the fine tumour types; coarse types use the Rotterdam mix."""


def _normal_logpdf(x: Any, mu: Any, sd: float) -> Any:
    """Elementwise normal log density (NumPy or xarray operands)."""
    return -0.5 * ((x - mu) / sd) ** 2 - math.log(sd) - 0.5 * math.log(2.0 * math.pi)


@functools.cache
def _contrast_basis(n: int) -> np.ndarray:
    """An (n, n - 1) orthonormal basis of the vectors of length n that sum to 0 (Helmert)."""
    b = np.zeros((n, n - 1))
    for j in range(1, n):
        b[:j, j - 1] = 1.0
        b[j, j - 1] = -float(j)
        b[:, j - 1] /= math.sqrt(j * (j + 1))
    b.flags.writeable = False
    return b


def _type_mean_coordinates(
    alpha: Any, z: Any, sigma: Any, mu: Any, sd: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sampling coordinates (``<alpha>_types``, ``<z>_mean_w``, ``<z>_contrasts``) of an
    intercept ``alpha`` (the anchor study's with the study level, ``mu`` then including u_0),
    offsets ``z`` (types on the last axis) and type SD ``sigma``: the inverse of the model's
    change of variables ("Sampling coordinates" in the module docstring)."""
    z = np.asarray(z, float)
    n = z.shape[-1]
    z_bar = z.mean(axis=-1)
    mean = np.asarray(alpha, float) + sigma * z_bar
    var = sd**2 + np.asarray(sigma, float) ** 2 / n
    w = (z_bar - sigma / n * (mean - mu) / var) / np.sqrt(sd**2 / (n * var))
    return mean, w, (z - z_bar[..., None]) @ _contrast_basis(n)


_TYPE_BLOCKS = (
    ("alpha1", "z1", "sigma1"),
    ("alpha2", "z2", "sigma2"),
    ("alpha1_os", "z1_os", "sigma1_os"),
)
"""(intercept, type offsets, type SD) of the blocks sampled in type-mean coordinates."""


def _sampling_coordinates(draws: Mapping[str, Any], priors: Any) -> dict[str, np.ndarray]:
    """The type-mean sampling coordinates of posterior ``draws`` (the model's parameters:
    ``alpha1``, ``z1``, ``sigma1``, ..., ``u_study`` with the study level; draws on the leading
    axes): what the model's free variables were at those draws, e.g. to evaluate its graph at a
    stored posterior, for a model whose study effects and type contrasts are all sampled
    standardised (no large user table). ``priors`` are the model's (:class:`SurvivalPriors`)."""
    out: dict[str, np.ndarray] = {}
    u0 = np.asarray(draws["u_study"], float)[..., 0] if "u_study" in draws else 0.0
    for a, z, s in _TYPE_BLOCKS:
        if z not in draws:
            continue
        prior = priors[a]
        alpha = np.asarray(draws[a], float) + u0
        sigma = np.asarray(draws[s], float)
        mean, w, c = _type_mean_coordinates(alpha, draws[z], sigma, prior.mu + u0, prior.sigma)
        out |= {f"{a}_types": mean, f"{z}_mean_w": w, f"{z}_contrasts": c}
    return out


def _value_point(model: Any, priors: Any, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A point of ``model``'s value variables at parameter ``values`` given as the model is
    written (``alpha1``, ``z1``, ``sigma1``, ``k1``, ``tau``, ...; the intercepts at the
    population level), the others at the initial point; for log-density checks. ``priors``
    are the model's (:class:`SurvivalPriors`)."""
    import pytensor

    ip = model.initial_point()
    free = {rv.name: rv for rv in model.free_RVs}
    blocks = [b for b in _TYPE_BLOCKS if f"{b[0]}_types" in free]
    in_blocks = {n for b in blocks for n in b[:2]}
    for name, v in values.items():
        if name in in_blocks:
            continue
        if name not in free:
            raise KeyError(f"{name!r} is not a free parameter of the model")
        rv = free[name]
        key = model.rvs_to_values[rv].name
        tr = model.rvs_to_transforms.get(rv)
        arr = np.asarray(v, dtype=float)
        ip[key] = tr.forward(arr, *rv.owner.inputs).eval() if tr is not None else arr
    outs = [model[s] for _, _, s in blocks]
    has_u = "u_study" in model.named_vars
    if has_u:
        outs.append(model["u_study"])
    fn = pytensor.function(
        model.value_vars, model.replace_rvs_by_values(outs), on_unused_input="ignore"
    )
    got = fn(**{v.name: ip[v.name] for v in model.value_vars})
    u0 = float(got[-1][0]) if has_u else 0.0
    n = len(vocab.TUMOUR_TYPES)
    for (a, z, _), sig in zip(blocks, got, strict=False):
        prior = priors[a]
        alpha = np.asarray(values.get(a, prior.mu), float)
        zv = np.asarray(values.get(z, np.zeros(n)), float)
        mean, w, c = _type_mean_coordinates(alpha + u0, zv, sig, prior.mu + u0, prior.sigma)
        ip |= {f"{a}_types": mean, f"{z}_mean_w": w}
        if f"{z}_contrasts_centred" in free:
            ip[f"{z}_contrasts_centred"] = sig * c
        else:
            ip[f"{z}_contrasts"] = c
    return ip


def _midpoints(g: int) -> np.ndarray:
    return (np.arange(g) + 0.5) / g


@dataclass
class _Rows:
    """Summary rows of one block, as arrays."""

    row_id: np.ndarray
    type_idx: np.ndarray
    n: np.ndarray
    median: np.ndarray
    se: np.ndarray  # NaN where missing
    control: np.ndarray  # first-line block only
    line: np.ndarray  # salvage block only
    study: np.ndarray  # the row's study label
    followup: np.ndarray  # median follow-up (months), NaN: none (censoring-aware terms)


def _nested(lines: np.ndarray) -> np.ndarray:
    """Rows of a line selected on R-PRRT PFS (RR-PRRT): their prior PFS is itself a salvage
    time, so the prior-PFS mixture is nested (:data:`netbayes.spec.LINE_SPECS`)."""
    return np.array([spec.line_spec(str(x)).nested for x in lines], bool)


def _summary_block(summaries: pd.DataFrame, first_line: bool, study: str = "") -> _Rows:
    """The rows of one block; rows without a ``study`` column belong to ``study``."""
    s = summaries[summaries["tumour_type"] != vocab.ALL_TUMOURS]
    if first_line:
        s = s[s["line"] == spec.FIRST_LINE]
    else:
        s = s[(s["line"] != spec.FIRST_LINE) & (s["group"] == "retreatment")]
    return _Rows(
        row_id=s["row_id"].astype(str).to_numpy(),
        type_idx=np.array(
            [vocab.TUMOUR_TYPES.index(t) for t in s["tumour_type"].astype(str)], dtype=np.int64
        ),
        n=s["n"].to_numpy(float),
        median=s["median_months"].to_numpy(float),
        se=s["se_months"].to_numpy(float),
        control=(s["group"] == "control").to_numpy(),
        line=s["line"].astype(str).to_numpy(),
        study=(
            s["study"].astype(str).to_numpy()
            if "study" in s.columns
            else np.full(len(s), study, dtype=object)
        ),
        followup=(
            pd.to_numeric(s["followup_months"]).to_numpy(float)
            if "followup_months" in s.columns
            else np.full(len(s), np.nan)
        ),
    )


def _se_logp(se: Any, log_f: Any, kappa_se: Any, n: np.ndarray, n_eff: Any = None) -> Any:
    r"""Log density of a published SE given the row's log density at its published median.

    Collett's asymptotic SE of a KM median is :math:`SE_{asym} = \sqrt{1/(4n)} / f(\hat m)`,
    with the density taken at the *published* median :math:`\hat m` (the KM slope behind the
    published SE is measured around it); ``log_f`` is :math:`\log f(\hat m)`. The measurement
    model is :math:`\log\widehat{SE} \sim N(\log SE_{asym} - \tau^2/2, \tau)`,
    :math:`\tau = \kappa/\sqrt{n}`: the noise of an estimated KM slope shrinks like
    :math:`1/\sqrt n`, and the :math:`-\tau^2/2` offset makes :math:`\widehat{SE}` unbiased
    on its natural scale, as simulated Greenwood/slope SEs are (``tests/test_simulation.py``).
    Density of :math:`\log\widehat{SE}` (Jacobian-free, like :func:`km_se_logp`).

    With censoring before the median (``n_eff``, :mod:`netbayes.likelihoods.censoring`) the
    expected SE is :math:`\sqrt{1/(4 n_{eff})}/f(\hat m)`, i.e. inflated by
    :math:`\sqrt{n/n_{eff}}` (Greenwood's variance over the binomial one); the noise
    :math:`\tau = \kappa/\sqrt n` is kept (``docs/censoring.md``).
    """
    import pytensor.tensor as pt

    if n_eff is None:
        resid = pt.log(se) - (math.log(0.5) - 0.5 * np.log(n) - log_f)
    else:
        from netbayes.families._pt import _as_float

        resid = pt.log(se) - (math.log(0.5) - 0.5 * pt.log(_as_float(n_eff)) - log_f)
    tau = kappa_se / np.sqrt(n)
    z = (resid + 0.5 * tau**2) / tau
    return -0.5 * z**2 - pt.log(tau) - 0.5 * math.log(2 * math.pi)


def _row_data(pm: Any, name: str, rows: _Rows, placeholder: float) -> tuple[Any, ...]:
    """Data containers for a block's medians and SEs, with 0/1 weights for missing values.

    Missing values get a harmless placeholder and weight 0, so the compiled model's structure
    does not depend on which numbers are missing and new summaries can be swapped in.
    """
    values = _row_values(rows, placeholder)
    return tuple(pm.Data(f"{key}_{name}", v) for key, v in values.items())


def _row_values(rows: _Rows, placeholder: float) -> dict[str, np.ndarray]:
    has_m, has_se = ~np.isnan(rows.median), ~np.isnan(rows.se)
    return {
        "median": np.where(has_m, rows.median, placeholder),
        "w_median": has_m.astype(float),
        "se": np.where(has_se, rows.se, 1.0),
        "w_se": (has_se & has_m).astype(float),
    }


def _censoring_values(
    rows: _Rows, median: np.ndarray, lower: Any, accrual: str
) -> dict[str, np.ndarray]:
    """Greenwood quadrature nodes ``cens_t`` and excess weights ``cens_c`` of a block's rows
    (:func:`netbayes.likelihoods.censoring.greenwood_nodes`; data only)."""
    from netbayes.likelihoods.censoring import greenwood_nodes

    has_m = ~np.isnan(rows.median)
    fu = np.where(has_m, rows.followup, np.nan)
    t, c = greenwood_nodes(median, fu, rows.n, lower, accrual)
    return {"cens_t": t, "cens_c": c}


def _censored_terms(
    pm: Any, name: str, law: Any, med: Any, n: np.ndarray, values: dict[str, np.ndarray]
) -> tuple[Any, Any, Any]:
    """Effective sample sizes and the median term of a block under censoring.

    ``law(t)`` returns the rows' ``(log S, log F, log f)`` at times ``t`` of shape (rows, Q),
    the row's own (truncated or mixture) law. Returns ``(n_eff, median log density, log f at
    the median)`` per row (:mod:`netbayes.likelihoods.censoring`).
    """
    from netbayes.likelihoods.censoring import censoring_excess, km_median_neff_logp

    t = pm.Data(f"cens_t_{name}", values["cens_t"])
    c = pm.Data(f"cens_c_{name}", values["cens_c"])
    log_s_m, log_cdf_m, log_f_m = (x[:, 0] for x in law(med[:, None]))
    log_s_t, _, log_f_t = law(t)
    n_eff = n / (1.0 + censoring_excess(log_f_t, log_s_t, log_s_m, log_cdf_m, c))
    return n_eff, km_median_neff_logp(log_cdf_m, log_s_m, log_f_m, n, n_eff), log_f_m


def _check_design(old: _Rows, new: _Rows, what: str) -> None:
    for key in ("type_idx", "n", "control", "line"):
        a, b = getattr(old, key), getattr(new, key)
        if a.shape != b.shape or not np.array_equal(a, b):
            raise ValueError(
                f"{what}: column {key!r} differs from the built model's design; build a new "
                "SurvivalModel for a different design"
            )


STUDY_ROW_LINES = ("I-PRRT", "R-PRRT")
"""Lines whose rows an added study may report (RR-PRRT and 188Re-HEDP rows of other studies
need their nested selection and line effect written per study: not yet)."""


def _study_rows(studies: Any, packaged: Sequence[str]) -> pd.DataFrame | None:
    """The added studies' survival rows (``docs/published_cohorts.md``), normalised.

    ``studies`` is a DataFrame, a sequence of them, or anything with a ``survival`` attribute
    holding one (:func:`netbayes.calibration.load_published`). Selection NaN becomes 0 (no
    rule), a missing activity the reference 44.7 GBq, and an ``all`` row without mix columns
    takes the Rotterdam retreatment mix.
    """
    from netbayes.calibration.published import frames_of

    df = frames_of(studies, "survival")
    if df is None:
        return None
    required = ["study", "row_id", "endpoint", "line", "tumour_type", "n", "median_months"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(f"studies is missing column(s) {missing}; required: {required}")
    out = pd.DataFrame(
        {
            "study": df["study"].astype(str),
            "row_id": df["row_id"].astype(str),
            "endpoint": df["endpoint"].astype(str),
            "group": df["group"].astype(str) if "group" in df else "retreatment",
            "line": df["line"].astype(str),
            "tumour_type": df["tumour_type"].astype(str),
            "n": pd.to_numeric(df["n"]).astype(float),
            "median_months": pd.to_numeric(df["median_months"]).astype(float),
            "se_months": pd.to_numeric(df["se_months"]).astype(float) if "se_months" in df
            else np.nan,
            "threshold": pd.to_numeric(df["selection_min_prior_pfs_months"]).fillna(0.0)
            if "selection_min_prior_pfs_months" in df else 0.0,
            "cumulative_gbq": pd.to_numeric(df["cumulative_gbq"]).fillna(GBQ_REF)
            if "cumulative_gbq" in df else GBQ_REF,
            "followup_months": pd.to_numeric(df["followup_months"]).astype(float)
            if "followup_months" in df else np.nan,
        }
    )  # fmt: skip
    clash = sorted(set(out["study"]) & set(packaged))
    if clash:
        raise ValueError(
            f"studies: study id(s) {clash} are packaged studies; added studies never replace "
            "them (use another id)"
        )
    unsupported = ~out["line"].isin(STUDY_ROW_LINES)
    if unsupported.any():
        which = ", ".join(f"{a}:{b} ({c})" for a, b, c in out.loc[unsupported, ["study", "row_id",
                          "line"]].itertuples(index=False))  # fmt: skip
        warnings.warn(
            f"studies: rows on lines the model cannot take from an added study yet are left "
            f"out: {which}; supported lines: {', '.join(STUDY_ROW_LINES)}",
            UserWarning,
            stacklevel=3,
        )
        out = out[~unsupported].reset_index(drop=True)
        df = df[~unsupported.to_numpy()].reset_index(drop=True)
    dup = out.duplicated(["study", "row_id"])
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise ValueError(f"studies: row {out['study'][i]}:{out['row_id'][i]} appears twice")
    for col, allowed in (
        ("endpoint", spec.SURVIVAL_ENDPOINTS),
        ("tumour_type", (*vocab.TUMOUR_TYPES, vocab.ALL_TUMOURS)),
        ("group", ("retreatment", "control")),
    ):
        bad = ~out[col].isin(allowed)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"studies: row {out['study'][i]}:{out['row_id'][i]} {col}={out[col][i]!r}; "
                f"allowed: {', '.join(allowed)}"
            )
    for col, lo in (("n", 1.0), ("threshold", 0.0), ("cumulative_gbq", 0.0)):
        v = out[col].to_numpy(float)
        if not (np.isfinite(v).all() and (v >= lo).all()):
            i = int(np.flatnonzero(~(np.isfinite(v) & (v >= lo)))[0])
            raise ValueError(
                f"studies: row {out['study'][i]}:{out['row_id'][i]} {col}={v[i]!r}; expected a "
                f"finite number >= {lo:g}"
            )
    low = (out["line"] == spec.FIRST_LINE) & (out["median_months"] < out["threshold"])
    if low.any():
        i = int(np.flatnonzero(low)[0])
        raise ValueError(
            f"studies: row {out['study'][i]}:{out['row_id'][i]} first-line median "
            f"{out['median_months'][i]:g} is below the study's selection threshold "
            f"{out['threshold'][i]:g}: retreated patients' first-line PFS cannot be that short"
        )
    default = rotterdam_cohort_mix()
    w = np.zeros((len(out), len(vocab.TUMOUR_TYPES)))
    cols = [f"mix_{t}" for t in vocab.TUMOUR_TYPES]
    for i, ty in enumerate(out["tumour_type"]):
        if ty != vocab.ALL_TUMOURS:
            w[i, vocab.TUMOUR_TYPES.index(ty)] = 1.0
        elif all(c in df.columns for c in cols) and np.nansum(df.loc[i, cols].to_numpy(float)) > 0:
            w[i] = np.nan_to_num(df.loc[i, cols].to_numpy(float))
        else:
            w[i] = default
        w[i] /= w[i].sum()
    for j, c in enumerate(cols):
        out[c] = w[:, j]
    return out


def rotterdam_cohort_mix() -> np.ndarray:
    """Shares of the fine tumour types among the Rotterdam retreated patients (the default mix
    of an ``all`` row without one)."""
    from netbayes.calibration import calibrated_ranges

    mix = calibrated_ranges()["cohort_mix"]["I-PRRT/R-PRRT"]
    v = np.array([float(mix.get(t, 0.0)) for t in vocab.TUMOUR_TYPES])
    return v / v.sum()


class SurvivalModel(SurvivalInfo):
    """Build and fit the hierarchical Weibull model of PFS or OS.

    Parameters
    ----------
    endpoint : {"pfs", "os"}
        The outcome of the salvage lines (and of the first-line published rows).
    patients : pandas.DataFrame, optional
        The user's own patients (see :data:`PATIENT_COLUMNS`), added to the published data.
    priors : SurvivalPriors or mapping, optional
        Prior settings (default :class:`SurvivalPriors`); a mapping overrides some of them
        (parameter name to a :class:`~netbayes.priors.Prior` or to the fields to change).
    include_published : bool
        Use the published calibration data (default True). False fits users' patients alone.
    n_grid : int
        Quadrature points for integrating over prior PFS (per level; RR-PRRT uses a nested
        grid of ``n_grid`` by ``n_grid // 2``).
    summaries : dict of str to pandas.DataFrame, optional
        Published-style summary rows to calibrate on instead of the packaged Table 5, keyed by
        endpoint (``"pfs"``, and ``"os"`` for the OS model), in the layout of
        :func:`netbayes.cohorts.survival_summaries` (``group``, ``line``, ``tumour_type``,
        ``n``, ``median_months``, ``se_months``; a missing median or SE is NaN and drops that
        term). Used by the simulation studies; the rows' structure is fixed at build time and
        their numbers can be swapped with :meth:`data_values` without recompiling.
    spearman : tuple of (float, int), optional
        The rank correlation between first-line and R-PRRT PFS and its n (default: the
        published 0.325, n = 168).
    family : str
        The survival family of both blocks (:data:`netbayes.families.FAMILIES`; default
        ``"weibull"``). Its shape parameters keep the names ``k1``/``k2`` and their priors.
    calibration : netbayes.calibration.SurvivalCalibration, optional
        The published design to calibrate on (default: the registered studies,
        :func:`netbayes.calibration.survival_calibration`). ``summaries`` and ``spearman``
        replace its rows and its correlation.
    studies : DataFrame, list of DataFrame or PublishedStudies, optional
        Published studies to add to the packaged ones, as survival rows in the layout of
        ``docs/published_cohorts.md`` (:func:`netbayes.calibration.load_published` reads and
        checks a CSV): per row the study, line (I-PRRT or R-PRRT), tumour type or ``all`` with
        its mix, n, median and SE, the study's selection threshold on prior PFS and the
        cumulative activity. Each row's population is the model's, for that study's centre
        effect, selection rule, activity and tumour mix. A packaged study id is refused.
    exclude_studies : sequence of str
        Studies whose data are left out (for leave-one-study-out checks); the model is then
        fitted as if they had never been published.
    censoring : {"none", "followup"}
        Censoring before a published median (``docs/censoring.md``). ``"none"`` (default): the
        median is the order statistic of :math:`n` and the SE the uncensored asymptotic one.
        ``"followup"``: rows with a reported median follow-up (the calibration's
        ``followup``, a ``followup_months`` column of ``summaries`` or of added studies) use the
        effective sample size :math:`n_{eff}` from Greenwood's variance
        (:mod:`netbayes.likelihoods.censoring`) in both terms; rows without one are unchanged.
    accrual : {"uniform", "exponential"}
        How a median follow-up :math:`F` becomes the follow-up law with
        ``censoring="followup"``: potential follow-up uniform on :math:`(F/2, 3F/2)` (default)
        or exponential with median :math:`F` (a sensitivity check).
    study_level : bool
        Give each study (centre) an effect on log time, ``u_s = tau * z_s`` with
        ``z_s ~ N(0, 1)``, shared by all lines and tumour types of the study (default True).
        ``tau`` has an external prior (:class:`SurvivalPriors`), so predictions for a new
        centre carry the between-centre spread. False: one centre, the v0.1 model.
    """

    def __init__(
        self,
        endpoint: Literal["pfs", "os"] = "pfs",
        patients: pd.DataFrame | None = None,
        priors: SurvivalPriors | Mapping[str, Any] | None = None,
        include_published: bool = True,
        n_grid: int = 16,
        summaries: dict[str, pd.DataFrame] | None = None,
        spearman: tuple[float, int] | None = None,
        family: str = DEFAULT_FAMILY,
        calibration: SurvivalCalibration | None = None,
        study_level: bool = True,
        studies: Any = None,
        exclude_studies: Sequence[str] = (),
        censoring: Literal["none", "followup"] = "none",
        accrual: Literal["uniform", "exponential"] = "uniform",
    ) -> None:
        from netbayes.likelihoods.censoring import CENSORING, check_accrual

        spec.check_endpoint(endpoint)
        if censoring not in CENSORING:
            raise ValueError(f"censoring={censoring!r} is not allowed; expected one of {CENSORING}")
        self.censoring = censoring
        self.accrual = check_accrual(accrual)
        if n_grid < 4:
            raise ValueError(f"n_grid={n_grid} is not allowed; expected an integer >= 4")
        if not include_published and patients is None and studies is None:
            raise ValueError(
                "include_published=False needs patients or studies: there is nothing to fit"
            )
        self.endpoint = endpoint
        self.family = get_family(family)
        if isinstance(priors, SurvivalPriors):
            self.priors = priors
        else:
            # the OS model's beta_x default is linked to the PFS effect (os_beta_x_prior)
            base = (
                SurvivalPriors(beta_x=os_beta_x_prior(calibration=calibration))
                if endpoint == "os" and calibration is not None
                else SurvivalPriors.for_endpoint(endpoint)
            )
            self.priors = base.replace(**dict(priors or {}))
        self.include_published = include_published
        self.n_grid = n_grid
        self.patients = validate_patients(patients) if patients is not None else None
        cal = calibration if calibration is not None else survival_calibration(endpoint)
        self.calibration = cal
        self.threshold_r, self.threshold_rr = cal.threshold("R-PRRT"), cal.threshold("RR-PRRT")
        self.gbq = dict(cal.cumulative_gbq)
        if spearman is None:
            spearman = (cal.spearman.spearman, cal.spearman.n)
        elif not (-1.0 < float(spearman[0]) < 1.0 and int(spearman[1]) > 3):
            raise ValueError(
                f"spearman={spearman!r} is not allowed; expected (r_s in (-1, 1), n > 3)"
            )
        self.spearman = (float(spearman[0]), int(spearman[1]))
        needed = ["pfs", "os"] if endpoint == "os" else ["pfs"]
        given = dict(summaries or {})
        bad = sorted(set(given) - {"pfs", "os"})
        if bad:
            raise ValueError(f"summaries keys {bad} are not allowed; expected 'pfs' and/or 'os'")
        self.summaries = {ep: given.get(ep, cal.summaries[ep]) for ep in needed}
        self.study_level = bool(study_level)
        self.added = _study_rows(studies, list(cal.studies))
        if self.added is not None:
            self.added = self.added[self.added["endpoint"] == endpoint].reset_index(drop=True)
            if not len(self.added):
                raise ValueError(f"studies: no rows of endpoint {endpoint!r}")
        self.exclude_studies: tuple[str, ...] = ()
        self._model: Any = None
        if exclude_studies:
            self._exclude(tuple(str(x) for x in exclude_studies))

    def _exclude(self, names: tuple[str, ...]) -> None:
        """Leave every row, correlation, patient and individual time of ``names`` out (the
        leave-one-study-out refits of :func:`netbayes.validation.leave_one_study_out`)."""
        known = self.studies
        bad = [x for x in names if x not in known]
        if bad:
            raise ValueError(
                f"exclude_studies: {bad} are not studies of this model; allowed: {', '.join(known)}"
            )
        default = self.calibration.studies[0] if self.calibration.studies else ""
        for ep, df in self.summaries.items():
            st = df["study"].astype(str) if "study" in df.columns else pd.Series(default, df.index)
            self.summaries[ep] = df[~st.isin(names).to_numpy()]
        if self.added is not None:
            self.added = self.added[~self.added["study"].isin(names)].reset_index(drop=True)
            self.added = self.added if len(self.added) else None
        if self.patients is not None:
            keep = ~self.patients["study"].isin(names)
            self.patients = self.patients[keep] if keep.any() else None
        self.exclude_studies = names
        if not self.studies:
            raise ValueError(f"exclude_studies={list(names)} leaves nothing to fit")

    def _summaries_for(self, endpoint: str) -> pd.DataFrame:
        """The summary rows of ``endpoint`` the terms use: with ``censoring="followup"`` a copy
        with each row's median follow-up (``followup_months``) from the calibration design,
        unless the rows carry their own."""
        df = self.summaries[endpoint]
        if self.censoring == "none" or "followup_months" in df.columns:
            return df
        return df.assign(followup_months=self.calibration.followup_of(endpoint, df))

    def _has_spearman(self) -> bool:
        """The published correlation is used (PFS, its study not left out)."""
        default = self.calibration.studies[0] if self.calibration.studies else ""
        return (
            self.endpoint == "pfs"
            and self.include_published
            and (self.calibration.spearman.study or default) not in self.exclude_studies
        )

    def _individual_blocks(self) -> list[Any]:
        default = self.calibration.studies[0] if self.calibration.studies else ""
        return [
            b
            for b in self.calibration.individual_for(self.endpoint)
            if (b.study or default) not in self.exclude_studies
        ]

    @property
    def studies(self) -> list[str]:
        """The studies (centres) of the model's data, in order: the published studies whose
        rows it uses, then the user's (``study`` column of ``patients``)."""
        out: list[str] = []
        if self.include_published:
            default = self.calibration.studies[0] if self.calibration.studies else ""
            for ep in self.summaries:
                out += list(_summary_block(self.summaries[ep], True, default).study)
            out += list(_summary_block(self.summaries[self.endpoint], False, default).study)
            if self._has_spearman():
                out.append(self.calibration.spearman.study or default)
            out += [b.study or default for b in self._individual_blocks()]
        if self.added is not None:
            out += list(self.added["study"])
        if self.patients is not None:
            out += list(self.patients["study"])
        return list(dict.fromkeys(out))

    def _centred_studies(self) -> np.ndarray:
        """Which studies' effects are sampled centred, relative to the anchor study's: those
        other than the first with at least :data:`CENTRED_STUDY_ROWS` of the user's patient
        rows (boolean, in :attr:`studies` order)."""
        names = self.studies
        if self.patients is None:
            return np.zeros(len(names), dtype=bool)
        counts = self.patients["study"].value_counts()
        out = np.array([counts.get(s, 0) >= CENTRED_STUDY_ROWS for s in names], dtype=bool)
        out[:1] = False  # the anchor study: its data pin the anchored intercepts, not u_0
        return out

    def _centred_contrasts(self, z_name: str) -> bool:
        """Whether the type contrasts of block ``z_name`` are sampled centred: the user's
        rows of that block (first line for ``z1``, salvage lines for ``z2``) number at least
        :data:`CENTRED_STUDY_ROWS`."""
        if self.patients is None or z_name == "z1_os":
            return False
        first = int((self.patients["line"].astype(str) == spec.FIRST_LINE).sum())
        rows = first if z_name == "z1" else len(self.patients) - first
        return rows >= CENTRED_STUDY_ROWS

    def _study_index(self, labels: Any) -> np.ndarray:
        names = self.studies
        return np.array([names.index(str(v)) for v in labels], dtype=np.int64)

    # ------------------------------------------------------------------------------------------
    def build(self) -> Any:
        """Return the PyMC model (built once and cached)."""
        if self._model is None:
            self._model = self._build()
        return self._model

    def _spearman_type_weights(self) -> np.ndarray:
        """Tumour-type shares of the R-PRRT patients behind the published Spearman figure."""
        d = self.summaries["pfs"]
        r = d[(d["group"] == "retreatment") & (d["line"] == "R-PRRT") & (d["tumour_type"] != "all")]
        n = r.set_index("tumour_type")["n"].reindex(list(vocab.TUMOUR_TYPES)).fillna(0.0)
        return n.to_numpy(float)

    def _build(self) -> Any:
        import pymc as pm
        import pytensor.tensor as pt

        from netbayes.likelihoods import survival as L

        p = self.priors
        fam = self.family
        coords = {"tumour_type": list(vocab.TUMOUR_TYPES)}
        if self.study_level:
            coords["study"] = self.studies
        thr_r, thr_rr = self.threshold_r, self.threshold_rr
        default_study = self.calibration.studies[0] if self.calibration.studies else ""
        with pm.Model(coords=coords) as model:
            u_study = None
            if self.study_level:
                tau = p.tau.rv(pm, "tau")
                strong = self._centred_studies()
                if not strong.any():
                    z_study = pm.Normal("z_study", 0, 1, dims="study")
                    u_study = pm.Deterministic("u_study", tau * z_study, dims="study")
                else:  # "Sampling coordinates" in the module docstring
                    weak = np.flatnonzero(~strong)  # the anchor study 0 among them
                    z_nc = pm.Normal("z_study_noncentred", 0, 1, shape=len(weak))
                    u = pt.set_subtensor(pt.zeros(len(strong))[weak], tau * z_nc)
                    # u_s ~ N(0, tau) as u_s - u_0 ~ N(-u_0, tau) (Jacobian 1 at fixed u_0)
                    rel = pm.Normal(
                        "u_study_relative", mu=-u[0], sigma=tau, shape=int(strong.sum())
                    )
                    u = pt.set_subtensor(u[np.flatnonzero(strong)], u[0] + rel)
                    u_study = pm.Deterministic("u_study", u, dims="study")
                    pm.Deterministic("z_study", u_study / tau, dims="study")

            def type_effects(name: str, sigma: Any, z_name: str) -> tuple[Any, Any]:
                """The intercept ``name`` and the type offsets ``z_name`` of one block, in
                type-mean coordinates ("Sampling coordinates" in the module docstring; the
                posterior is the model's). With the study level the intercept is also recorded
                as the first (anchor) study's own, ``<name>_anchor`` = ``<name>`` + u_0."""
                prior = p[name]
                if prior.dist != "normal":  # pragma: no cover - the support check allows only
                    raise ValueError(f"priors[{name!r}] must be normal")
                n = len(vocab.TUMOUR_TYPES)
                mu = prior.mu if u_study is None else prior.mu + u_study[0]
                var = prior.sigma**2 + sigma**2 / n
                mean = pm.Normal(f"{name}_types", mu=mu, sigma=pt.sqrt(var))
                w = pm.Normal(f"{z_name}_mean_w", 0, 1)
                if self._centred_contrasts(z_name):  # sigma x the contrasts, N(0, sigma)
                    d = pm.Normal(f"{z_name}_contrasts_centred", 0, sigma, shape=n - 1)
                    contrasts = d / sigma
                else:
                    contrasts = pm.Normal(f"{z_name}_contrasts", 0, 1, shape=n - 1)
                z_bar = sigma / n * (mean - mu) / var + pt.sqrt(prior.sigma**2 / (n * var)) * w
                z = pm.Deterministic(
                    z_name, z_bar + pt.dot(_contrast_basis(n), contrasts), dims="tumour_type"
                )
                a = mean - sigma * z_bar
                if u_study is None:
                    return pm.Deterministic(name, a), z
                pm.Deterministic(f"{name}_anchor", a)
                return pm.Deterministic(name, a - u_study[0]), z

            k1 = p.k1.rv(pm, "k1")
            k2 = p.k2.rv(pm, "k2")
            sigma1 = p.sigma1.rv(pm, "sigma1")
            sigma2 = p.sigma2.rv(pm, "sigma2")
            alpha1, z1 = type_effects("alpha1", sigma1, "z1")
            alpha2, z2 = type_effects("alpha2", sigma2, "z2")
            beta_x = p.beta_x.rv(pm, "beta_x")
            beta_gbq = p.beta_gbq.rv(pm, "beta_gbq")
            gamma_rr = p.gamma_rr.rv(pm, "gamma_rr")
            gamma_re188 = p.gamma_re188.rv(pm, "gamma_re188")
            delta_control = p.delta_control.rv(pm, "delta_control")
            kappa_se = p.kappa_se.rv(pm, "kappa_se")

            def study_shift(labels: Any) -> Any:
                """The study effects of rows with these study labels (0 without the level)."""
                if u_study is None:
                    return None
                return u_study[self._study_index(labels)]

            log_lam1 = pm.Deterministic("log_lam1", alpha1 + sigma1 * z1, dims="tumour_type")
            type2 = pm.Deterministic("type2", alpha2 + sigma2 * z2, dims="tumour_type")
            # derived, for reporting: first-line and salvage medians per type at the reference
            pm.Deterministic("median1", fam.median_pt(k1, pt.exp(log_lam1)), dims="tumour_type")

            def gbq_term(d: Any) -> Any:
                return beta_gbq * (d - GBQ_REF) / GBQ_UNIT

            def x_nodes(j: Any, u: np.ndarray, us: Any) -> Any:
                """Prior-PFS quadrature nodes: first-line PFS of type j (in study effect ``us``)
                truncated at 18."""
                ll1 = log_lam1[j] if us is None else log_lam1[j] + us
                return fam.truncated_quantile_pt(u, k1, pt.exp(ll1)[..., None], thr_r)

            if self.include_published:
                # ---- first-line PFS rows (always: they define the prior-PFS distribution) --
                self._add_first_line(
                    pm, "pfs", log_lam1, k1, delta_control, kappa_se, study_shift=study_shift
                )
                if self.endpoint == "os":
                    # first-line OS rows: their own scale/shape (total OS from I-PRRT)
                    k1os = p.k1_os.rv(pm, "k1_os")
                    s1os = p.sigma1_os.rv(pm, "sigma1_os")
                    a1os, z1os = type_effects("alpha1_os", s1os, "z1_os")
                    self._add_first_line(
                        pm,
                        "os",
                        a1os + s1os * z1os,
                        k1os,
                        delta_control,
                        kappa_se,
                        "_os",
                        study_shift=study_shift,
                    )
                # ---- salvage rows: mixtures over prior PFS -------------------------------
                rows = _summary_block(self._summaries_for(self.endpoint), False, default_study)
                u1 = _midpoints(self.n_grid)
                is_rr = _nested(rows.line)
                for mask, nested in ((~is_rr, False), (is_rr, True)):
                    if not mask.any():
                        continue
                    j = rows.type_idx[mask]
                    us = study_shift(rows.study[mask])
                    x1 = x_nodes(j, u1, us)  # (rows, G)
                    t2 = type2[j] if us is None else type2[j] + us
                    lp_r = t2[:, None] + beta_x * pt.log(x1 / X_REF)
                    if not nested:
                        log_lam = lp_r + gbq_term(self.gbq["R-PRRT"])
                    else:
                        # prior PFS = R-PRRT PFS given x1, truncated at 14 months
                        lam_r = pt.exp(lp_r + gbq_term(self.gbq["R-PRRT"]))[..., None]
                        u2 = _midpoints(max(self.n_grid // 2, 4))
                        x2 = fam.truncated_quantile_pt(u2, k2, lam_r, thr_rr)  # (rows, G, G2)
                        log_lam = (
                            t2[:, None, None]
                            + beta_x * pt.log(x2 / X_REF)
                            + gbq_term(self.gbq["RR-PRRT"])
                            + gamma_rr
                        ).reshape((int(mask.sum()), -1))
                    self._add_mixture_rows(pm, pt, fam, rows, mask, log_lam, k2, kappa_se)
                # ---- Spearman correlation (PFS only) --------------------------------------
                if self._has_spearman():
                    rs_obs = pm.Data("spearman_obs", self.spearman[0])
                    n_rs = self.spearman[1]
                    w_rs = self._spearman_type_weights()
                    us = study_shift([self.calibration.spearman.study or default_study])
                    rs_model = pm.Deterministic(
                        "spearman_implied",
                        L.implied_spearman_selected_mixture(
                            fam,
                            beta_x,
                            k2,
                            k1,
                            log_lam1 if us is None else log_lam1 + us,
                            type2 if us is None else type2 + us,
                            w_rs,
                            thr_r,
                            n_grid=np.maximum(8, np.ceil(SPEARMAN_NODES * w_rs / w_rs.sum())),
                        ),
                    )
                    att = p.spearman_attenuation.rv(pm, "spearman_attenuation")
                    pm.Potential(
                        "spearman", L.spearman_fisher_logp(rs_obs, rs_model, n_rs, attenuation=att)
                    )
                # ---- individual times of published studies (188Re-HEDP OS) ---------------
                effects = {"gamma_rr": gamma_rr, "gamma_re188": gamma_re188}
                for block in self._individual_blocks():
                    effect = spec.line_spec(block.line).survival_effect
                    lp = type2[None, :] + (0.0 if effect is None else effects[effect])
                    us = study_shift([block.study or default_study])
                    if us is not None:
                        lp = lp + us
                    # each patient at its own cumulative 177Lu activity, and over the prior-PFS
                    # law the study reports (the same as a prediction without a prior PFS)
                    gb = GBQ_REF if block.cumulative_gbq is None else block.cumulative_gbq
                    lp = lp + pt.reshape(gbq_term(np.asarray(gb, float)), (-1, 1))
                    w = block.type_weights
                    lp = pt.broadcast_to(lp, w.shape)
                    if block.prior_pfs is not None:
                        nodes = np.log(np.asarray(re188_prior_pfs_nodes(*block.prior_pfs)) / X_REF)
                        lp = (lp[:, :, None] + beta_x * nodes[None, None, :]).reshape((len(w), -1))
                        w = np.repeat(w, len(nodes), axis=1) / len(nodes)
                    self._add_individual(
                        pm,
                        pt,
                        fam,
                        "re188_os" if block.line == "188Re-HEDP" else f"individual_{block.line}",
                        block.time_months,
                        block.event,
                        w,
                        lp,
                        k2,
                    )
            if self.added is not None:
                self._add_study_rows(
                    pm,
                    pt,
                    fam,
                    {
                        "log_lam1": log_lam1, "k1": k1, "type2": type2, "k2": k2,
                        "beta_x": beta_x, "gbq_term": gbq_term, "kappa_se": kappa_se,
                        "study_shift": study_shift, "delta_control": delta_control,
                    },
                )  # fmt: skip
            if self.patients is not None:
                self._add_patients(
                    pm,
                    pt,
                    fam,
                    log_lam1,
                    k1,
                    type2,
                    k2,
                    beta_x,
                    gbq_term,
                    gamma_rr,
                    gamma_re188,
                    study_shift(self.patients["study"]),
                )
        return model

    def _add_first_line(
        self, pm, endpoint, log_lam1, k1, delta_control, kappa_se, sfx="", study_shift=None
    ):
        import pytensor.tensor as pt

        fam = self.family
        default = self.calibration.studies[0] if self.calibration.studies else ""
        rows = _summary_block(self._summaries_for(endpoint), True, default)
        log_lam = log_lam1[rows.type_idx] + delta_control * rows.control
        us = None if study_shift is None else study_shift(rows.study)
        lam = pt.exp(log_lam if us is None else log_lam + us)
        thr = self.threshold_r
        med, w_med, se, w_se = _row_data(pm, f"first_line{sfx}", rows, placeholder=thr + 1.0)
        if self.censoring == "followup":
            log_sl = fam.logsf(thr, k1, lam)[:, None]

            def law(t: Any) -> tuple[Any, Any, Any]:
                """The first-line law truncated at the selection threshold."""
                log_s = pt.minimum(fam.logsf(t, k1, lam[:, None]) - log_sl, 0.0)
                log_f = fam.logpdf(t, k1, lam[:, None]) - log_sl
                return log_s, pt.log1mexp(pt.minimum(log_s, _TINY)), log_f

            values = _censoring_values(rows, _row_values(rows, thr + 1.0)["median"], thr,
                                       self.accrual)  # fmt: skip
            n_eff, med_lp, log_f = _censored_terms(pm, f"first_line{sfx}", law, med, rows.n, values)
            pm.Potential(f"first_line_medians{sfx}", pt.sum(pt.switch(w_med, med_lp, 0)))
            pm.Potential(
                f"first_line_se{sfx}",
                pt.sum(pt.switch(w_se, _se_logp(se, log_f, kappa_se, rows.n, n_eff), 0)),
            )
            return
        pm.Potential(
            f"first_line_medians{sfx}",
            pt.sum(pt.switch(w_med, fam.km_median_logp(med, rows.n, k1, lam, lower=thr), 0)),
        )
        # truncated density f(m) / S(L) at the published median
        log_f = fam.logpdf(med, k1, lam) - fam.logsf(thr, k1, lam)
        pm.Potential(
            f"first_line_se{sfx}",
            pt.sum(pt.switch(w_se, _se_logp(se, log_f, kappa_se, rows.n), 0)),
        )

    def _add_mixture_rows(self, pm, pt, fam, rows, mask, log_lam, k2, kappa_se):
        """Order-statistic and SE terms for rows whose population is a mixture over nodes."""
        name = "rr" if _nested(rows.line[mask])[0] else "r"
        sub = _Rows(*(getattr(rows, f.name)[mask] for f in fields(_Rows)))
        med, w_med, se, w_se = _row_data(pm, f"salvage_{name}", sub, placeholder=1.0)
        if self.censoring == "followup":
            lam = pt.exp(log_lam)[:, None, :]  # (rows, 1, G)

            def law(t: Any) -> tuple[Any, ...]:
                """The mixture over the prior-PFS nodes at times ``t`` (rows, Q)."""
                return tuple(
                    pt.logsumexp(f(t[:, :, None], k2, lam), axis=-1) - pt.log(log_lam.shape[-1])
                    for f in (fam.logsf, fam.logcdf, fam.logpdf)
                )

            values = _censoring_values(sub, _row_values(sub, 1.0)["median"], 0.0, self.accrual)
            n_eff, med_lp, log_d = _censored_terms(pm, f"salvage_{name}", law, med, sub.n, values)
            pm.Potential(f"salvage_medians_{name}", pt.sum(pt.switch(w_med, med_lp, 0)))
            pm.Potential(
                f"salvage_se_{name}",
                pt.sum(pt.switch(w_se, _se_logp(se, log_d, kappa_se, sub.n, n_eff), 0)),
            )
            return
        m = med[:, None]
        g = log_lam.shape[-1]
        lse = pt.logsumexp
        log_s = lse(fam.logsf(m, k2, pt.exp(log_lam)), axis=-1) - pt.log(g)
        log_f = lse(fam.logcdf(m, k2, pt.exp(log_lam)), axis=-1) - pt.log(g)
        log_d = lse(fam.logpdf(m, k2, pt.exp(log_lam)), axis=-1) - pt.log(g)
        n = sub.n
        r = np.ceil(n / 2)
        comb = pt.gammaln(n + 1) - pt.gammaln(r) - pt.gammaln(n - r + 1)
        pm.Potential(
            f"salvage_medians_{name}",
            pt.sum(pt.switch(w_med, comb + (r - 1) * log_f + (n - r) * log_s + log_d, 0)),
        )
        pm.Potential(
            f"salvage_se_{name}", pt.sum(pt.switch(w_se, _se_logp(se, log_d, kappa_se, n), 0))
        )

    def _add_study_rows(self, pm: Any, pt: Any, fam: Any, v: dict[str, Any]) -> None:
        """Order-statistic and SE terms of the added studies' rows.

        A row's population is a mixture over its tumour mix (the types with weight > 0; one
        type for a type row) and, on R-PRRT, over the prior PFS: the study's first-line PFS of
        each type (with the study's effect) truncated at the row's selection threshold, at G
        quantile nodes. First-line (I-PRRT) rows are the first-line law truncated at the
        threshold (the retreated patients were selected on it; 0: no rule). Only the
        components a row has are computed (a padded slot repeats one with weight 0), and the
        first-line and salvage rows are separate terms, so no unused branch can put a NaN
        into the gradient.
        """
        d = self.added
        first = (d["line"] == spec.FIRST_LINE).to_numpy()
        for mask, name in ((first, "first_line"), (~first, "salvage")):
            if mask.any():
                self._study_block(pm, pt, fam, d[mask].reset_index(drop=True), name, v)

    def _study_block(
        self, pm: Any, pt: Any, fam: Any, d: pd.DataFrame, name: str, v: dict[str, Any]
    ) -> None:
        """The terms of one block (first-line or salvage) of added rows (see above)."""
        log_lam1, k1, type2, k2 = v["log_lam1"], v["k1"], v["type2"], v["k2"]
        beta_x, gbq_term, kappa_se = v["beta_x"], v["gbq_term"], v["kappa_se"]
        study_shift, delta_control = v["study_shift"], v["delta_control"]
        w = d[[f"mix_{t}" for t in vocab.TUMOUR_TYPES]].to_numpy(float)  # (R, 6)
        comps = [np.flatnonzero(row > 0) for row in w]
        J = max(len(c) for c in comps)
        tix = np.array([np.r_[c, np.full(J - len(c), c[0])] for c in comps])  # (R, J)
        logw = np.array(
            [np.r_[np.log(w[i, c]), np.full(J - len(c), -np.inf)] for i, c in enumerate(comps)]
        )  # (R, J)
        thr = d["threshold"].to_numpy(float)
        ctrl = (d["group"] == "control").to_numpy(float)
        ll1 = log_lam1[tix] + delta_control * ctrl[:, None]  # (R, J)
        t2 = type2[tix]
        us = study_shift(d["study"])  # (R,) or None
        if us is not None:
            ll1, t2 = ll1 + us[:, None], t2 + us[:, None]
        vals = _row_values(
            _Rows(
                row_id=d["row_id"].to_numpy(), type_idx=tix[:, 0], n=d["n"].to_numpy(float),
                median=d["median_months"].to_numpy(float), se=d["se_months"].to_numpy(float),
                control=ctrl.astype(bool), line=d["line"].to_numpy(),
                study=d["study"].to_numpy(), followup=d["followup_months"].to_numpy(float),
            ),
            placeholder=1.0,
        )  # fmt: skip
        med_v = np.where(vals["w_median"] > 0, vals["median"], thr + 1.0)
        med = pm.Data(f"median_studies_{name}", med_v)
        m = med[:, None, None]  # (R, 1, 1)
        lam1 = pt.exp(ll1)[..., None]  # (R, J, 1)
        lse = pt.logsumexp
        if name == "first_line":
            log_sl = fam.logsf(thr[:, None, None], k1, lam1)
            comp_s = fam.logsf(m, k1, lam1) - log_sl
            comp_d = fam.logpdf(m, k1, lam1) - log_sl
            node_w = logw[..., None]
        else:
            G = self.n_grid
            x = fam.truncated_quantile_pt(_midpoints(G), k1, lam1, thr[:, None, None])  # (R,J,G)
            gq = d["cumulative_gbq"].to_numpy(float)
            lam2 = pt.exp(t2[..., None] + beta_x * pt.log(x / X_REF) + gbq_term(gq)[:, None, None])
            comp_s = fam.logsf(m, k2, lam2)
            comp_d = fam.logpdf(m, k2, lam2)
            node_w = logw[..., None] - math.log(G)
        log_s = lse(comp_s + node_w, axis=(1, 2))
        log_d = lse(comp_d + node_w, axis=(1, 2))
        log_f = pt.log1mexp(pt.minimum(log_s, -1e-12))
        n = d["n"].to_numpy(float)
        if self.censoring == "followup":
            self._study_censored(pm, pt, fam, name, v, d, med, med_v, vals, thr, lam1, t2)
            return
        r = np.ceil(n / 2)
        comb = pt.gammaln(n + 1) - pt.gammaln(r) - pt.gammaln(n - r + 1)
        pm.Potential(
            f"study_medians_{name}",
            pt.sum(
                pt.switch(vals["w_median"], comb + (r - 1) * log_f + (n - r) * log_s + log_d, 0)
            ),
        )
        pm.Potential(
            f"study_se_{name}",
            pt.sum(pt.switch(vals["w_se"], _se_logp(vals["se"], log_d, kappa_se, n), 0)),
        )

    def _study_censored(
        self, pm: Any, pt: Any, fam: Any, name: str, v: dict[str, Any], d: pd.DataFrame,
        med: Any, med_v: np.ndarray, vals: dict[str, np.ndarray], thr: np.ndarray, lam1: Any,
        t2: Any,
    ) -> None:  # fmt: skip
        """The censoring-aware terms of one block of added rows (see :meth:`_study_block`):
        the same laws evaluated at the Greenwood nodes (:func:`_censored_terms`)."""
        k1, k2, beta_x, gbq_term = v["k1"], v["k2"], v["beta_x"], v["gbq_term"]
        w = d[[f"mix_{t}" for t in vocab.TUMOUR_TYPES]].to_numpy(float)
        J = max(int((row > 0).sum()) for row in w)
        logw = np.array(
            [np.r_[np.log(row[row > 0]), np.full(J - int((row > 0).sum()), -np.inf)] for row in w]
        )  # (R, J), the same order as _study_block's components
        lam1_q = lam1[:, None]  # (R, 1, J, 1)
        if name == "first_line":
            log_sl = fam.logsf(thr[:, None, None, None], k1, lam1_q)
            node_w = logw[:, None, :, None]

            def comp(f: Any, t: Any) -> Any:
                return f(t[:, :, None, None], k1, lam1_q) - log_sl
        else:
            G = self.n_grid
            x = fam.truncated_quantile_pt(_midpoints(G), k1, lam1, thr[:, None, None])
            gq = d["cumulative_gbq"].to_numpy(float)
            lam2 = pt.exp(t2[..., None] + beta_x * pt.log(x / X_REF) + gbq_term(gq)[:, None, None])
            lam2_q = lam2[:, None]  # (R, 1, J, G)
            node_w = logw[:, None, :, None] - math.log(G)

            def comp(f: Any, t: Any) -> Any:
                return f(t[:, :, None, None], k2, lam2_q)

        def law(t: Any) -> tuple[Any, Any, Any]:
            log_s = pt.logsumexp(comp(fam.logsf, t) + node_w, axis=(2, 3))
            log_d = pt.logsumexp(comp(fam.logpdf, t) + node_w, axis=(2, 3))
            log_s = pt.minimum(log_s, 0.0)
            return log_s, pt.log1mexp(pt.minimum(log_s, _TINY)), log_d

        rows = _Rows(
            row_id=d["row_id"].to_numpy(), type_idx=np.zeros(len(d), np.int64),
            n=d["n"].to_numpy(float), median=d["median_months"].to_numpy(float),
            se=d["se_months"].to_numpy(float), control=np.zeros(len(d), bool),
            line=d["line"].to_numpy(), study=d["study"].to_numpy(),
            followup=d["followup_months"].to_numpy(float),
        )  # fmt: skip
        lower = thr if name == "first_line" else 0.0
        values = _censoring_values(rows, med_v, lower, self.accrual)
        n_eff, med_lp, log_d = _censored_terms(pm, f"studies_{name}", law, med, rows.n, values)
        pm.Potential(f"study_medians_{name}", pt.sum(pt.switch(vals["w_median"], med_lp, 0)))
        pm.Potential(
            f"study_se_{name}",
            pt.sum(pt.switch(vals["w_se"], _se_logp(vals["se"], log_d, v["kappa_se"], rows.n,
                                                     n_eff), 0)),
        )  # fmt: skip

    @staticmethod
    def _add_individual(pm, pt, fam, name, t, event, w, lp, k):
        """Censored Weibull log-likelihood mixed over tumour types with weights ``w``.

        Rows of one known tumour type (weight 1 on a single type) use that type's linear
        predictor directly; only rows of a coarse type (e.g. ``gi_non_pancreatic``) pay for the
        mixture over types. Both give the same value; the gather is what makes 10^5 user rows
        affordable (every row against all six types cost 6x the work and memory).
        """
        n, n_types = w.shape
        lp = pt.broadcast_to(lp, (n, n_types))
        single = (w > 0).sum(axis=1) == 1
        terms = []
        if single.any():
            rows = np.flatnonzero(single)
            cols = w[rows].argmax(axis=1)
            terms.append(
                pt.sum(fam.censored_loglik(t[rows], event[rows], k, pt.exp(lp[rows, cols])))
            )
        if (~single).any():
            rows = np.flatnonzero(~single)
            ll = fam.censored_loglik(t[rows, None], event[rows, None], k, pt.exp(lp[rows]))
            with np.errstate(divide="ignore"):
                logw = np.log(w[rows])
            terms.append(pt.sum(pt.logsumexp(ll + logw, axis=1)))
        pm.Potential(name, pt.add(*terms) if len(terms) > 1 else terms[0])

    def _add_patients(
        self, pm, pt, fam, log_lam1, k1, type2, k2, beta_x, gbq_term, g_rr, g_re, us=None
    ):
        d = self.patients
        w = _type_weights(d["tumour_type"])
        line = d["line"].astype(str).to_numpy()
        t, ev = d["time_months"].to_numpy(float), d["event"].to_numpy(float)
        first = line == spec.FIRST_LINE
        if first.any():
            lp1 = pt.broadcast_to(log_lam1[None, :], (int(first.sum()), len(vocab.TUMOUR_TYPES)))
            if us is not None:
                lp1 = lp1 + us[np.flatnonzero(first)][:, None]
            self._add_individual(
                pm, pt, fam, "patients_first_line", t[first], ev[first], w[first], lp1, k1
            )
        sal = ~first
        if sal.any():
            x = d["prior_pfs_months"].to_numpy(float)[sal]
            gb = d["cumulative_gbq"].to_numpy(float)[sal]
            ln = line[sal]
            logx = np.where(np.isnan(x), math.log(X_REF), np.log(np.where(np.isnan(x), 1, x)))
            gb = np.where(np.isnan(gb), GBQ_REF, gb)
            lp = (
                type2[None, :]
                + (beta_x * (logx - math.log(X_REF)))[:, None]
                + gbq_term(gb)[:, None]
            )
            effects = {"gamma_rr": g_rr, "gamma_re188": g_re}
            for name, ls in spec.LINE_SPECS.items():
                if ls.survival_effect is not None:
                    lp = lp + (effects[ls.survival_effect] * (ln == name))[:, None]
            if us is not None:
                lp = lp + us[np.flatnonzero(sal)][:, None]
            self._add_individual(pm, pt, fam, "patients_salvage", t[sal], ev[sal], w[sal], lp, k2)

    def pointwise_loglik(self, draws: dict[str, np.ndarray]) -> np.ndarray:
        """Log-likelihood of each of the user's patients at each posterior draw (NumPy).

        The same terms as the model's ``patients_first_line`` and ``patients_salvage``
        potentials (a coarse tumour type mixes over its fine types), one per patient row, for
        PSIS-LOO (``arviz.loo``) and model comparison on the user's own data. The published
        summary rows are not individual observations and have no pointwise terms.

        Parameters
        ----------
        draws : dict of str to numpy.ndarray
            Posterior draws with the draw axes first (e.g. ``(chain, draw)``): ``alpha1``,
            ``sigma1``, ``z1``, ``k1``, ``alpha2``, ``sigma2``, ``z2``, ``k2``, ``beta_x``,
            ``beta_gbq`` and the line effects.

        Returns
        -------
        numpy.ndarray, shape (*draw axes, patients)

        Raises
        ------
        ValueError
            If the model has no patients.
        """
        if self.patients is None:
            raise ValueError("pointwise_loglik needs a model with patients (there are none)")
        fam, d = self.family, self.patients
        lead = np.shape(draws["k1"])
        th = {
            k: np.asarray(v, float).reshape(-1, *np.shape(v)[len(lead) :]) for k, v in draws.items()
        }
        w = _type_weights(d["tumour_type"])  # (n, 6)
        line = d["line"].astype(str).to_numpy()
        t, ev = d["time_months"].to_numpy(float), d["event"].to_numpy(float)
        x = d["prior_pfs_months"].to_numpy(float)
        gb = d["cumulative_gbq"].to_numpy(float)
        logx = np.where(np.isnan(x), math.log(X_REF), np.log(np.where(np.isnan(x), 1, x)))
        gq = (np.where(np.isnan(gb), GBQ_REF, gb) - GBQ_REF) / GBQ_UNIT
        first = line == spec.FIRST_LINE
        out = np.empty((th["k1"].shape[0], len(d)))
        lam1 = th["alpha1"][:, None] + th["sigma1"][:, None] * th["z1"]  # (S, 6) log scale
        type2 = th["alpha2"][:, None] + th["sigma2"][:, None] * th["z2"]
        u = None
        if self.study_level:
            u = th["u_study"][:, self._study_index(d["study"])]  # (S, n)
        for i in range(len(d)):
            if first[i]:
                loglam, k = lam1, th["k1"]
                if u is not None:
                    loglam = loglam + u[:, i : i + 1]
            else:
                shift = th["beta_x"] * (logx[i] - math.log(X_REF)) + th["beta_gbq"] * gq[i]
                effect = spec.line_spec(line[i]).survival_effect
                if effect is not None:
                    shift = shift + th[effect]
                if u is not None:
                    shift = shift + u[:, i]
                loglam, k = type2 + shift[:, None], th["k2"]
            cols = np.flatnonzero(w[i] > 0)
            ll = fam.censored_loglik_np(t[i], ev[i], k[:, None], np.exp(loglam[:, cols]))
            out[:, i] = np.logaddexp.reduce(ll + np.log(w[i, cols]), axis=1)
        return out.reshape(*lead, len(d))

    def data_values(
        self, summaries: dict[str, pd.DataFrame], spearman: float | None = None
    ) -> dict[str, np.ndarray]:
        """Values of the model's data containers for new summaries of the same design.

        Parameters
        ----------
        summaries : dict of str to pandas.DataFrame
            Rows with the same groups, lines, tumour types and n as those the model was built
            with (only medians, SEs and, with ``censoring="followup"``, a ``followup_months``
            column may differ; NaN drops a term).
        spearman : float, optional
            A new observed rank correlation (its n stays the one built in).

        Returns
        -------
        dict of str to ndarray
            For ``pymc.set_data`` or nutpie's ``compiled.with_data(**values)``.

        Raises
        ------
        ValueError
            If the rows' design differs from the built one (a rebuild is needed instead).
        """
        if not self.include_published:
            raise ValueError("data_values needs include_published=True (nothing to replace)")
        out: dict[str, np.ndarray] = {}
        blocks = [(ep, "_os" if ep == "os" else "") for ep in self.summaries]
        cens = self.censoring == "followup"

        def with_followup(ep: str) -> pd.DataFrame:
            df = summaries[ep]
            if not cens or "followup_months" in df.columns:
                return df
            return df.assign(followup_months=self.calibration.followup_of(ep, df))

        for ep, sfx in blocks:
            old = _summary_block(self.summaries[ep], first_line=True)
            new = _summary_block(with_followup(ep), first_line=True)
            _check_design(old, new, f"summaries[{ep!r}] first-line rows")
            vals = _row_values(new, placeholder=self.threshold_r + 1.0)
            if cens:
                vals.update(_censoring_values(new, vals["median"], self.threshold_r, self.accrual))
            out.update({f"{k}_first_line{sfx}": v for k, v in vals.items()})
        old = _summary_block(self.summaries[self.endpoint], first_line=False)
        new = _summary_block(with_followup(self.endpoint), first_line=False)
        _check_design(old, new, f"summaries[{self.endpoint!r}] salvage rows")
        is_rr = _nested(new.line)
        for mask, name in ((~is_rr, "r"), (is_rr, "rr")):
            if mask.any():
                sub = _Rows(*(getattr(new, f.name)[mask] for f in fields(_Rows)))
                vals = _row_values(sub, placeholder=1.0)
                if cens:
                    vals.update(_censoring_values(sub, vals["median"], 0.0, self.accrual))
                out.update({f"{k}_salvage_{name}": v for k, v in vals.items()})
        if self.endpoint == "pfs":
            rs = self.spearman[0] if spearman is None else float(spearman)
            if not -1.0 < rs < 1.0:
                raise ValueError(f"spearman={rs!r} is not allowed; expected a number in (-1, 1)")
            out["spearman_obs"] = np.asarray(rs)
        return out

    # ------------------------------------------------------------------------------------------
    def fit(self, *, prior_draws: int = 1000, **kwargs: Any) -> Any:
        """Sample the posterior with :func:`netbayes.fitting.sample` (nutpie by default).

        With a user's patients the fit's DataTree also holds, for ArviZ:
        ``log_likelihood`` (``patients``: one pointwise term per patient row, for
        ``arviz.loo`` and ``arviz.compare``), ``log_prior`` (each parameter's log prior
        density at every posterior draw, for ``arviz.psense``'s power-scaling prior
        sensitivity) and ``prior`` (draws of the parameters from their priors, for prior
        versus posterior plots).

        Parameters
        ----------
        prior_draws : int
            Draws of the ``prior`` group (a user's patients only; 0: no ``prior`` group).
        **kwargs
            Passed to :func:`netbayes.fitting.sample` (draws, tune, chains, seed, sampler,
            progress, ...). ``target_accept`` defaults to :data:`TARGET_ACCEPT` here, and
            with nutpie ``adaptation`` to :data:`ADAPTATION`.

        Returns
        -------
        netbayes.fitting.FitResult
        """
        from netbayes.fitting import sample

        if (
            isinstance(prior_draws, (bool, np.bool_))
            or not isinstance(prior_draws, (int, np.integer))
            or prior_draws < 0
        ):
            raise ValueError(
                f"prior_draws={prior_draws!r} is not allowed; expected an integer >= 0"
            )
        kwargs.setdefault("var_names", self.parameter_names())
        kwargs.setdefault("target_accept", TARGET_ACCEPT)
        if kwargs.get("sampler", "nutpie") == "nutpie":
            kwargs.setdefault("adaptation", ADAPTATION)
        model = self.build()
        fit = sample(model, **kwargs)
        fit.model_info = self.model_info()  # what fit.save() records (models.base)
        if self.patients is not None:
            self._attach_log_likelihood(fit)
            self._attach_prior_groups(fit, model, int(prior_draws))
        return fit

    def _attach_log_likelihood(self, fit: Any) -> None:
        """Add the ``log_likelihood`` group (one variable ``patients``) to the fit's DataTree."""
        import xarray as xr

        post = fit.posterior["posterior"].dataset
        draws = {v: post[v].to_numpy() for v in post.data_vars}
        ll = self.pointwise_loglik(draws)
        ds = xr.Dataset(
            {"patients": (("chain", "draw", "patient"), ll)},
            coords={
                "chain": post["chain"].to_numpy(),
                "draw": post["draw"].to_numpy(),
                "patient": np.arange(ll.shape[-1]),
            },
        )
        fit.posterior["log_likelihood"] = xr.DataTree(ds)

    def _attach_prior_groups(self, fit: Any, model: Any, prior_draws: int) -> None:
        """Add ``log_prior`` (PyMC's ``compute_log_prior`` at the posterior draws) and, with
        ``prior_draws`` > 0, ``prior`` (``sample_prior_predictive``, the fit's seed)."""
        import pymc as pm
        import xarray as xr

        names = [v for v in self.parameter_names() if v in {rv.name for rv in model.free_RVs}]
        lp = pm.compute_log_prior(
            fit.posterior, var_names=names, model=model, extend_inferencedata=False,
            progressbar=False,
        )  # fmt: skip
        free = {rv.name for rv in model.free_RVs}
        post = fit.posterior["posterior"].dataset
        fit.posterior["log_prior"] = xr.DataTree(self._type_log_priors(lp, post, free))
        if prior_draws:
            import logging
            import warnings

            seed = fit.settings.get("seed") if isinstance(fit.settings, dict) else None
            log = logging.getLogger("pymc")
            level = log.level
            log.setLevel(logging.WARNING)  # not "Sampling: [...]"
            try:
                with warnings.catch_warnings():
                    # the likelihood's potentials (e.g. the selection truncation) are data
                    # terms, not priors: the prior group is the parameters' priors alone
                    warnings.filterwarnings("ignore", message="The effect of Potentials")
                    pr = pm.sample_prior_predictive(
                        draws=prior_draws, model=model, var_names=self.parameter_names(),
                        random_seed=seed,
                    )  # fmt: skip
            finally:
                log.setLevel(level)
            fit.posterior["prior"] = xr.DataTree(pr["prior"].to_dataset())

    def _type_log_priors(self, lp: Any, post: Any, free: set[str]) -> Any:
        """``lp`` (the free variables' log priors) with the log densities of the intercepts and
        type offsets of the blocks sampled in type-mean coordinates: those of the model as
        written (``<alpha>`` ~ N(mu, sd), or ``<alpha>_anchor`` ~ N(mu + u_0, sd); ``<z>`` ~
        N(0, 1) per type), so that the log prior is the one of the parameters users read."""
        if self.study_level and "z_study" not in free:  # some study effects sampled centred
            lp["z_study"] = _normal_logpdf(post["z_study"], 0.0, 1.0)
        for a_name, z_name, _ in _TYPE_BLOCKS:
            if not {f"{z_name}_contrasts", f"{z_name}_contrasts_centred"} & free:
                continue
            prior = self.priors[a_name]
            name, mu = a_name, prior.mu
            if self.study_level:
                name, mu = f"{a_name}_anchor", prior.mu + post["u_study"].isel(study=0, drop=True)
            lp[name] = _normal_logpdf(post[name], mu, prior.sigma)
            lp[z_name] = _normal_logpdf(post[z_name], 0.0, 1.0)
        return lp

    def parameter_names(self) -> list[str]:
        """Names of the model's top-level parameters as it is written (some are sampled in
        other coordinates and recorded as deterministic: "Sampling coordinates" in the module
        docstring)."""
        names = [*spec.SURVIVAL_PARAMS, "delta_control", "kappa_se"]
        if self.study_level:
            names += ["tau", "z_study", "u_study", "alpha1_anchor", "alpha2_anchor"]
            if self.endpoint == "os" and self.include_published:
                names.append("alpha1_os_anchor")
        if self._has_spearman():
            names.append("spearman_attenuation")
        if self.endpoint == "os" and self.include_published:
            names += [p for p in spec.SURVIVAL_PARAMS_OS if p not in spec.SURVIVAL_PARAMS]
        return names
