r"""Ordinal CTCAE model of grade III/IV cytopenia risk from administered activity (issue 4).

Model
-----
For a treatment *block* :math:`b` (a PRRT phase, a 188Re-HEDP cycle, or a user-recorded
cycle) given to patient :math:`i`, the CTCAE grade :math:`G_{ibl} \in \{0,\dots,IV\}` of cell
line :math:`l` (leucocytes, platelets, haemoglobin) is the worst grade after that block, with a
cumulative-probit link (:mod:`netbayes.likelihoods.ordinal`):

.. math::

    P(G_{ibl} \le g \mid u_i) = \Phi(c_{l,g+1} - \eta_{ib} - u_i),
    \qquad u_i \sim \mathcal N(0, \sigma_u^2),

    \eta_{ib} = \beta_A\,\frac{A_{ib} - 29.9}{10} + \beta_P\,\frac{P_{ib}}{10} + \delta_{c(b)},

* :math:`A` = activity given in the block, in GBq of 177Lu-octreotate (a 188Re-HEDP activity is
  multiplied by the equivalence factor :math:`\theta`); centred at the I-PRRT median 29.9 GBq so
  that the cutpoints :math:`c_l` describe a standard 4 x 7.4 GBq first course, which the data
  pin down, and scaled per 10 GBq.
* :math:`P` = prior cumulative (177Lu-equivalent) activity (marrow reserve), per 10 GBq.
* :math:`\delta_{c}` = cohort/phase (selection) effect: 0 for I-PRRT in the retreatment group
  (reference), :math:`\delta_{control}` for the Rotterdam safety control group (F12: partly
  patients who failed the haematological criteria for retreatment),
  :math:`\delta_{retreated}` shared by R-PRRT and RR-PRRT (patients selected for having
  tolerated earlier PRRT), :math:`\delta_{re188}` for the 188Re-HEDP pilot (different centre,
  bone-metastatic, pre-existing cytopenia: ``re188_baseline_grades``) and
  :math:`\delta_{user}` for a user's own cohort.
* :math:`u_i` is shared by the three lines, so "any line" risks are coherent with per-line
  risks; it is integrated out by quadrature for aggregate counts and sampled (non-centred,
  :math:`u_i = \sigma_u z_i`) for individual user records.
* Cutpoints are parametrised around grade III:
  :math:`c_{l3}` free, :math:`c_{l2} = c_{l3} - e^{d_{l2}}`, :math:`c_{l1} = c_{l2} - e^{d_{l1}}`,
  :math:`c_{l4} = c_{l3} + e^{d_{l3}}` (built with
  :func:`~netbayes.likelihoods.ordinal.ordered_cutpoints_from_increments`).

Link
----
Probit rather than logit, for one reason: with a normal propensity the per-line marginal is
exact and closed form, :math:`\bar P(G \le g) = \Phi((c_{g+1} - \eta)/\sqrt{1 + \sigma_u^2})`,
so only the "any line" term needs quadrature. This cut the gradient cost (and the default
fit's wall time) several-fold; with ordinal data this sparse the two links are not
distinguishable. All scales below are probit units (1 probit ~ 1.7 logit).

Parameterisation (what the sampler sees)
----------------------------------------
The parameters *mean* what is written above (conditional on :math:`u`, probit scale) and
their priors in :data:`DEFAULT_PRIORS` are priors on those quantities; the fitted posterior
holds them under these names (``c3``, ``log_gap``, ``beta_activity``, ..., as Deterministics).
The sampler, however, moves in different coordinates, because the published counts are mostly
*population-averaged*: integrating :math:`u` out of one line gives
:math:`\Phi((c - \eta)/s)` with :math:`s = \sqrt{1 + \sigma_u^2}`, so the per-line and 188Re
terms fix only :math:`c/s` and :math:`\eta/s`, and only the weak "any" term tells
:math:`\sigma_u`. In conditional coordinates the posterior is a curved ridge along which every
cutpoint and effect grows with :math:`s` as :math:`\sigma_u` grows. The coverage benchmark
showed it: divergent transitions sat at the upper end of :math:`\sigma_u` with all cutpoints
and effects scaled up together (e.g. replicate 46: 113 divergences, the divergent draws at
:math:`\sigma_u \approx 0.9` against a posterior median of 0.26, :math:`c_{l3}` and
:math:`\delta_{control}` about 1.25 times their medians).

So every location parameter :math:`x` (``c3``, ``beta_activity``, ``beta_prior``,
``delta_control``, ``delta_retreated``, ``delta_re188``) is sampled on the marginal
(population-averaged) scale :math:`x_m = x/s` as ``<name>_marg``, and the log gaps as
:math:`d_m = d - \log s` (``log_gap_marg``). The prior of :math:`x_m` given :math:`\sigma_u`
is the conditional prior pushed through :math:`x \mapsto x/s`: Normal(:math:`\mu/s,
\tau/s`) for a Normal(:math:`\mu, \tau`) prior (LogNormal(:math:`\mu - \log s, \tau`) and
HalfNormal(:math:`\tau/s`) if overridden to those families), Normal(:math:`\mu - \log s,
\tau`) for the log gaps (which must stay normal). That density includes the Jacobian, so the
prior on the reported parameters is *exactly* the documented one (tested by prior draws). The
per-line and 188Re terms then depend on :math:`x_m` only, the ridge is straight, and
:math:`\sigma_u`, ``theta`` and ``delta_user`` are sampled as before (log scale for the first
two). The user records and the "any" term use :math:`x = s\,x_m`.

A second, rarer geometry remains: when the simulated 188Re cycles are mostly grade IV, the
data fix :math:`\beta_A \theta` (activity effect of 188Re) but not its factors, a hyperbola
whose bend at small :math:`\beta_A` and large :math:`\theta` (upper 5-10% of the
:math:`\theta` posterior) produced the last few divergences (3 of 11 previously divergent
replicates, 1-8 divergences each). Sampling :math:`\beta_A\theta` directly instead would put
a funnel in the prior (its prior SD is proportional to :math:`\theta`) for the usual data,
where the 188Re cycles say little; instead the fits use a higher target acceptance than
nutpie's 0.8: 0.9 removed them in those replicates (over the full 50-replicate benchmark 1
divergent transition in 1 replicate; before: 17 of 50 replicates, up to 113 divergences,
max R-hat 1.128; after: max R-hat 1.016 with 2 chains of 1000 draws). With the study level
the default fit needs 0.98 (:data:`TARGET_ACCEPT`), with nutpie's low-rank mass matrix
(:data:`ADAPTATION`).

All priors live in :class:`ToxicityPriors` (:data:`DEFAULT_PRIORS` is its default instance;
overridable per name, in the same style as the survival model's, :mod:`netbayes.priors`);
:meth:`ToxicityModel.prior_table` shows them next to the posterior so that what the data do and
do not inform is visible.

What the data can and cannot separate
-------------------------------------
Rotterdam Table 6 has one dose level per phase: control I-PRRT (29.8 GBq, prior 0), I-PRRT
(29.9, 0), R-PRRT (14.9, prior 29.9), RR-PRRT (15.0, prior 44.7). Four phases cannot separate
:math:`\beta_A`, :math:`\beta_P` and :math:`\delta_{retreated}`: the data fix roughly
:math:`-1.5\beta_A + 3\beta_P + \delta_{retreated}` (R-PRRT vs I-PRRT) and, weakly (13
patients), :math:`1.5\beta_P` more for RR-PRRT. The 188Re cycles (~3 GBq of 188Re, i.e.
:math:`\theta \times 3` GBq-equivalent, on 30-97 GBq of prior 177Lu) add one more, confounded
with :math:`\delta_{re188}` and :math:`\theta`. Hence the priors are sceptical and informative
(radiobiology: more marrow dose, more toxicity; selection effects centred on 0), and
:meth:`ToxicityModel.prior_table` reports the posterior/prior SD ratio of each parameter. In
the default fit (``benchmarks/results/toxicity_fit.md``) it is ~0.25 for the grade III
cutpoints and :math:`\delta_{control}`, 0.3 for the grade IV gaps, ~0.5 for :math:`\sigma_u`,
0.4 for :math:`\beta_P` (the RR-PRRT and 188Re patients carry 45-97 GBq of prior activity),
but 0.7-0.9 for :math:`\beta_A`, :math:`\theta`, :math:`\delta_{retreated}` and
:math:`\delta_{re188}`: those are essentially their priors, and predictions that lean on them
(small activities, 188Re-HEDP) carry the prior's uncertainty in their bands. A model that saw only
cumulative GBq would be forced to explain R-PRRT's lower rate (6.6% vs 10.5%) with a negative
dose slope; here it is explained by the smaller activity per phase and/or selection, and the
posterior says honestly that it cannot tell which.

Inputs the published data cannot inform are left out: tumour type and prior PFS (part of the
survival model's patient record) are accepted by :meth:`ToxicityModel.risk_table` and the user
data validator but have no parameter (no published toxicity data by tumour type or PFS); the
risk for a patient does not depend on them.

188Re-HEDP equivalence :math:`\theta`
-------------------------------------
1 GBq of 188Re-HEDP is taken to give the marrow the dose of :math:`\theta` GBq of
177Lu-octreotate. Prior: :math:`\log\theta \sim \mathcal N(\log 8, 0.7)` (median 8, 95% prior
range about 2-32). Reasoning from physics and what the papers document (no dosimetry numbers are
invented here):

* per GBq injected, the number of decays is proportional to the effective half-life: 188Re has
  a 17 h physical half-life versus 6.7 d for 177Lu (factor ~0.1 against 188Re);
* the mean beta energy of 188Re (~0.76 MeV, E_max 2.1 MeV, range in tissue up to ~1 cm) is
  ~5-6 times that of 177Lu (~0.13 MeV, range < 2 mm): per GBq, 188Re emits roughly half the
  total beta energy of 177Lu;
* but HEDP is bone-seeking: a large fraction of the activity sits on bone surfaces next to the
  red marrow, and the pilot paper chose 188Re for its "higher energy and thus longer penetration
  range" and states that "myelosuppression may be the dose-limiting factor for 188Re-HEDP".
  177Lu-octreotate reaches the marrow mainly via blood and is largely excreted renally; only a
  small fraction of its energy is absorbed in marrow. The fraction absorbed in marrow is
  plausibly 10-60 times larger for 188Re-HEDP;
* clinically, ~3 GBq of 188Re-HEDP per cycle is a "dose-intensified" activity close to the
  haematological limit, while a 7.4 GBq 177Lu cycle rarely is, consistent with
  :math:`\theta` well above 2.5 (7.4/3).

Together: :math:`\theta` of order 5-30; the log-normal prior is centred at 8 with a factor-2
(1 SD) uncertainty.

Likelihood (and why these terms)
--------------------------------
* **Rotterdam Table 6** (``margins="exact"``, the default; ``docs/toxicity_margins.md``).
  Per phase of n patients (control I-PRRT 230, I-PRRT 181, R-PRRT 181, RR-PRRT 13) the paper
  prints, per cell line, the grade III and IV counts, and grade III/IV counts for "any line"
  that overlap the per-line ones (AUDIT F11). Each patient has a pattern of lines at grade
  >= III whose probabilities follow from the shared propensity :math:`u` (quadrature); the
  three per-line counts and the any-line count are linear margins of the multinomial pattern
  table, and their exact joint probability is the sum over every consistent table
  (enumerated once per data set; for I-PRRT, whose any-line count is 19 or 20, the sum over
  both readings). Each line's grade IV count among its grade >= III patients is binomial with
  P(IV)/P(>= III). Left out, conservatively: the dependence of those three binomials through
  :math:`u` and the any-line grade IV count (0-6 patients). Creatinine is not a cell line and
  is not used.
* **188Re-HEDP per-cycle table** (11 cycles, 6 patients, full grades 0-IV per line,
  :func:`netbayes.cohorts.re188_cycle_grade_counts`; cycle :math:`k` of patient :math:`i`:
  activity cumulative/n_cycles, prior activity = 177Lu cumulative + :math:`\theta` x earlier
  188Re cycles). Which cycle's grade is which is not published, but each patient's cycles are:
  the patient's propensity :math:`u_i = \sigma_u z_i` (``z_re188``) is shared by their cycles
  and lines, and given it each line's per-cycle count vector is Poisson-multinomial (exact
  dynamic programme). The per-patient column (F18) overlaps it and is not used.
* ``margins="composite"`` keeps the v0.1 likelihood: the per-line terms (on the marginal
  per-line probabilities), the worst-grade multinomial of "any line" (weight ``any_weight``)
  as if independent of them, and the 188Re cycles as a multinomial with the average of the
  cycles' probabilities. Per-line and any-line margins of the same patients then count their
  common information twice; in the simulation study (``benchmarks/toxicity_coverage.py``,
  50 paired replicates) the cohort effects common to all lines (:math:`\delta_{control}`,
  :math:`\delta_{retreated}`, :math:`\delta_{re188}`) covered 83% at nominal 90% with it
  (:math:`\delta_{control}` 78%) and 87% with the exact likelihood (86%; figures in
  ``docs/toxicity_margins.md``).
* **Baseline grades** (``re188_baseline_grades``: all six patients had anaemia grade >= I before
  188Re) are not a likelihood term (they are not a treatment outcome); they motivate the
  :math:`\delta_{re188}` cohort effect.
* **User records** (patient, cycle, cell line, grade, activity, prior activity):
  :func:`~netbayes.likelihoods.ordinal.individual_grades_loglik` with the patient propensity
  :math:`u_i = \sigma_u z_i`, :math:`z_i \sim \mathcal N(0,1)` (non-centred).

Predictions
-----------
:meth:`ToxicityModel.risk_table` gives, for each posterior draw, the *marginal* risk for a new
patient, :math:`P(G_l \ge III) = E_u[1 - F(c_{l3} - \eta - u)]` and
:math:`P(\max_l G_l \ge III) = 1 - E_u[\prod_l F(c_{l3} - \eta - u)]`, and summarises them as
posterior mean, median and a credible band (default 95% equal-tailed,
:data:`netbayes.intervals.DEFAULT_INTERVAL`; column names such as ``eti95_lower`` carry the
convention). The formulas live in :mod:`netbayes.formulas.toxicity` (NumPy only, no PyMC on the
prediction path), which also documents the treatment-line semantics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from netbayes import fields, spec, vocab
from netbayes.calibration import calibrated_ranges, re188, rotterdam
from netbayes.calibration.toxicity import TOXICITY_PHASES, ToxicityData
from netbayes.fitting import FitResult, sample
from netbayes.formulas import toxicity as ftox
from netbayes.formulas.toxicity import A_REF_GBQ, DOSE_SCALE_GBQ
from netbayes.formulas.toxicity_ppc import toxicity_params, toxicity_ppc_table
from netbayes.intervals import Interval, as_interval
from netbayes.likelihoods import ordinal as lik
from netbayes.models.base import ToxicityInfo, study_column
from netbayes.models.toxicity_priors import DEFAULT_PRIORS, ToxicityPriors
from netbayes.priors import Prior

__all__ = [
    "ADAPTATION",
    "A_REF_GBQ",
    "DEFAULT_PRIORS",
    "DOSE_SCALE_GBQ",
    "MARGINS",
    "PHASES",
    "TARGET_ACCEPT",
    "USER_COLUMNS",
    "ToxicityData",
    "ToxicityModel",
    "ToxicityPriors",
    "draw_prior_params",
    "exact_data_arrays",
    "simulate_data",
    "validate_user_data",
]

CELL_LINES: tuple[str, ...] = ftox.CELL_LINES
LINK = "probit"
"""Link of the cumulative model (see "Link" in the module docstring)."""
TARGET_ACCEPT = 0.98
"""Default NUTS target acceptance of :meth:`ToxicityModel.fit` (and the coverage benchmark);
see "Parameterisation" in the module docstring for why not nutpie's 0.8. With the study level
(``tau_tox``) the default fit at 0.9 had 4 divergent transitions in 4000 draws (shipped seed),
at 0.95 one, at 0.98 none; with :data:`ADAPTATION` 5-11 at 0.9, 2 at 0.95, none at 0.98."""
ADAPTATION = "low_rank"
"""Default mass-matrix adaptation of :meth:`ToxicityModel.fit` with nutpie: the diagonal plus
a low-rank estimate of the posterior's strongest correlations (the study effects, the
cutpoints and the selection effects share the Rotterdam margins). At :data:`TARGET_ACCEPT`
it halves the leapfrog steps per draw against the diagonal estimate (30 against 54, shipped
seed) and raises the smallest bulk ESS (1335 against 645); ``benchmarks/README.md``, "Where
the time goes"."""
MARGINS: tuple[str, ...] = ("exact", "composite")
"""Likelihoods of the published margins (:class:`ToxicityModel`'s ``margins``)."""
PHASES: tuple[str, ...] = TOXICITY_PHASES
"""Rows of Rotterdam Table 6 used as likelihood, in model order."""


# ----------------------------------------------------------------------------------------------
# priors
# ----------------------------------------------------------------------------------------------

_SCALAR_PARAMS = (
    "beta_activity", "beta_prior", "delta_control", "delta_retreated", "delta_re188", "theta",
    "sigma_u",
)  # fmt: skip
_LOCATION_PARAMS = ("beta_activity", "beta_prior", "delta_control", "delta_retreated",
                    "delta_re188")  # fmt: skip
"""Scalar parameters sampled on the marginal scale (``<name>_marg``), see the docstring."""


def _toxicity_rows(studies: Any, packaged: Sequence[str]) -> pd.DataFrame | None:
    """The added studies' grade-count rows (``docs/published_cohorts.md``), checked."""
    from netbayes.calibration.published import frames_of

    df = frames_of(studies, "toxicity")
    if df is None:
        return None
    need = ["study", "row_id", "line", "cell_line", "grade", "count", "n", "planned_gbq",
            "prior_gbq"]  # fmt: skip
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"studies is missing column(s) {missing}; required: {need}")
    out = df[need].copy()
    for c in ("study", "row_id", "line", "cell_line", "grade"):
        out[c] = out[c].astype(str)
    for c in ("count", "n", "planned_gbq", "prior_gbq"):
        out[c] = pd.to_numeric(out[c]).astype(float)
    clash = sorted(set(out["study"]) & set(packaged))
    if clash:
        raise ValueError(
            f"studies: study id(s) {clash} are packaged studies; added studies never replace "
            "them (use another id)"
        )
    for _, r in out.iterrows():
        where = f"studies: row {r['study']}:{r['row_id']}"
        if r["line"] not in vocab.LINES:
            raise ValueError(f"{where} line={r['line']!r}; allowed: {', '.join(vocab.LINES)}")
        if r["cell_line"] not in (*CELL_LINES, "any"):
            raise ValueError(f"{where} cell_line={r['cell_line']!r}; allowed: "
                             f"{', '.join((*CELL_LINES, 'any'))}")  # fmt: skip
        if r["grade"] not in ("3", "4", "3+"):
            raise ValueError(f"{where} grade={r['grade']!r}; allowed: 3, 4, 3+")
        if not (r["n"] >= 1 and 0 <= r["count"] <= r["n"]):
            raise ValueError(f"{where} count={r['count']:g} of n={r['n']:g}; expected "
                             "0 <= count <= n, n >= 1")  # fmt: skip
        if not (r["planned_gbq"] >= 0 and r["prior_gbq"] >= 0):
            raise ValueError(f"{where} activities must be >= 0 GBq")
    if out.duplicated(["study", "row_id"]).any():
        raise ValueError("studies: a (study, row_id) pair appears twice")
    return out.reset_index(drop=True)


def _as_priors(priors: ToxicityPriors | Mapping[str, Any] | None) -> ToxicityPriors:
    return priors if isinstance(priors, ToxicityPriors) else ToxicityPriors(priors)


def _scaled_prior_rv(pm: Any, name: str, spec: Prior, scale: Any, log_scale: Any, **kw: Any) -> Any:
    """``x / scale`` where ``x`` has the prior ``spec``: the same family, rescaled.

    If :math:`x \\sim` Normal(mu, sigma), :math:`x/s \\sim` Normal(mu/s, sigma/s); if
    LogNormal(mu, sigma), LogNormal(mu - log s, sigma); if HalfNormal(sigma), HalfNormal(sigma/s).
    The density includes the Jacobian of :math:`x \\mapsto x/s`, so the implied prior of
    :math:`x` is exactly ``spec`` for every value of ``scale``.
    """
    if spec.dist == "normal":
        return pm.Normal(name, mu=spec.mu / scale, sigma=spec.sigma / scale, **kw)
    if spec.dist == "lognormal":
        return pm.LogNormal(name, mu=spec.mu - log_scale, sigma=spec.sigma, **kw)
    if spec.dist == "halfnormal":
        return pm.HalfNormal(name, sigma=spec.sigma / scale, **kw)
    raise ValueError(f"priors[{name!r}]: a {spec.dist} prior cannot be rescaled")


def _shifted_prior_rv(pm: Any, name: str, spec: Prior, shift: Any, **kw: Any) -> Any:
    """``x - shift`` where ``x ~ Normal(mu, sigma)`` (``spec``): Normal(mu - shift, sigma)."""
    return pm.Normal(name, mu=spec.mu - shift, sigma=spec.sigma, **kw)


# ----------------------------------------------------------------------------------------------
# user data
# ----------------------------------------------------------------------------------------------
USER_STUDY = "user"
"""Study label of a user's records without a ``study`` column."""
USER_COLUMNS: dict[str, str] = {
    "patient": "patient identifier (text or integer, not missing; one type per table)",
    "cycle": "treatment block number within the patient (integer 1-100)",
    "cell_line": f"one of {', '.join(CELL_LINES)}",
    "grade": "worst CTCAE grade after the block, integer 0-4",
    "activity_gbq": "177Lu-octreotate activity given in the block, GBq >= 0 and <= 60",
    "prior_gbq": "cumulative 177Lu activity given before the block, GBq >= 0 and <= 200",
}
"""Required columns of a user's individual observations (``tumour_type`` and
``prior_pfs_months`` may be present; they are validated against the survival vocabulary and
limits but not used, see the module docstring; ``study`` labels the centre)."""

OPTIONAL_USER_COLUMNS: tuple[str, ...] = ("study", "tumour_type", "prior_pfs_months")
"""Optional columns of a user's observations (any other column is refused)."""


def _bad(field: str, value: Any, allowed: str, row: Any) -> ValueError:
    return fields.bad(field, value, allowed, row)


def validate_user_data(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a user's individually graded observations and return a typed copy.

    Every value is checked as prediction input is (:mod:`netbayes.fields`): numbers are real
    numbers (not booleans, strings, dates or durations), finite and inside the plausibility
    limits of their column, with the likely unit mistake named (an activity of 7,400 "looks
    like MBq"); an unknown or misspelled column is refused with the closest known name:

    ================  ==================================  ===================================
    column            allowed                             note
    ================  ==================================  ===================================
    patient           text or integer, not missing        ``1`` and ``"1"`` in one table are
                                                          refused (never merged)
    cycle             integer 1-100                       ``2.0`` is 2; ``2.5``, ``True`` refused
    cell_line         leucocytes, platelets, haemoglobin  case-insensitive
    grade             integer 0-4                         ``True`` is refused (not grade 1)
    activity_gbq      >= 0 and <= 60 GBq                  published 3.7-30.7 per phase
    prior_gbq         >= 0 and <= 200 GBq                 published 0-96.7
    study             a non-empty label                   optional (default ``"user"``)
    tumour_type       a patient tumour type               optional, not used
    prior_pfs_months  >= 1 day and <= 600 months          optional (may be missing), not used
    ================  ==================================  ===================================

    Parameters
    ----------
    df : pandas.DataFrame
        One row per patient, cycle and cell line, with the columns of :data:`USER_COLUMNS`.

    Returns
    -------
    pandas.DataFrame
        Columns ``patient`` (str), ``cycle`` (int), ``cell_line`` (categorical in
        :data:`netbayes.vocab.CELL_LINES` order), ``grade`` (int), ``activity_gbq`` and
        ``prior_gbq`` (float).

    Raises
    ------
    TypeError
        ``df`` is not a DataFrame.
    ValueError
        Naming the field, the offending value and row, and what is allowed (missing or
        unknown column, missing value, grade outside 0-IV, an activity outside its limits or
        not finite, unknown cell line, ambiguous patient ids, duplicated patient/cycle/cell
        line).
    """
    fields.check_columns(
        df, "user_data", list(USER_COLUMNS), OPTIONAL_USER_COLUMNS,
        "netbayes.models.toxicity.USER_COLUMNS",
    )  # fmt: skip
    for col, allowed in USER_COLUMNS.items():
        na = df[col].isna()
        if na.any():
            i = na[na].index[0]
            raise _bad(col, df.loc[i, col], f"{allowed} (not missing)", i)
    out = pd.DataFrame(index=df.index)
    out["patient"] = fields.label_column(df, "patient")
    for col in ("cycle", "grade"):
        out[col] = fields.integer_column(df, col)
    raw = df["cell_line"]
    line = raw.map(lambda v: v.strip().lower() if isinstance(v, str) else None)
    bad = ~line.isin(CELL_LINES)
    if bad.any():
        i = bad[bad].index[0]
        v = raw[i]
        allowed = USER_COLUMNS["cell_line"] + fields.suggest(v, CELL_LINES)
        raise _bad("cell_line", v, allowed, i)
    out["cell_line"] = pd.Categorical(line, categories=list(CELL_LINES))
    for col in ("activity_gbq", "prior_gbq"):
        out[col] = fields.number_column(df, col)
    if "prior_pfs_months" in df.columns:
        fields.number_column(df, "prior_pfs_months")  # checked; not used (may be missing)
    out["study"] = study_column(df, USER_STUDY, _bad)
    if "tumour_type" in df.columns:
        tt = df["tumour_type"].map(lambda v: v.strip() if isinstance(v, str) else v)
        bad = tt.notna() & ~tt.isin(vocab.PATIENT_TUMOUR_TYPES)
        if bad.any():
            i = bad[bad].index[0]
            v = df.loc[i, "tumour_type"]
            raise _bad(
                "tumour_type", v,
                f"one of {', '.join(vocab.PATIENT_TUMOUR_TYPES)} (not used by this model)"
                + fields.suggest(v, vocab.PATIENT_TUMOUR_TYPES), i,
            )  # fmt: skip
    dup = out.duplicated(["patient", "cycle", "cell_line"])
    if dup.any():
        i = dup[dup].index[0]
        raise _bad(
            "(patient, cycle, cell_line)",
            (out.loc[i, "patient"], int(out.loc[i, "cycle"]), str(out.loc[i, "cell_line"])),
            "one row per patient, cycle and cell line",
            i,
        )
    return out


def exact_data_arrays(data: ToxicityData) -> dict[str, np.ndarray]:
    """The data containers of the exact likelihood (``margins="exact"``) for some counts.

    A compiled model is re-used on other counts of the same design by passing these to
    ``with_data`` (the simulation benchmark): the Table 6 per-line counts, every table of
    pattern counts consistent with each phase's margins (:func:`netbayes.formulas.
    toxicity_margins.margin_tables`; both readings of a phase whose any-line count is
    ambiguous, F11) and the state space of the 188Re-HEDP per-cycle counts
    (:func:`~netbayes.formulas.toxicity_margins.count_lattice`).

    Parameters
    ----------
    data : ToxicityData

    Returns
    -------
    dict of str to ndarray
        ``line_counts``, ``t6_tables``, ``t6_log_coef``, ``t6_group``, ``re_prev``,
        ``re_row``, ``re_init``, ``re_final``.
    """
    from netbayes.formulas import toxicity_margins as tmar

    k3 = data.line_counts[..., 0] + data.line_counts[..., 1]
    tabs, coefs, groups = [], [], []
    for p in range(len(data.n)):
        ws = sorted({round(float(data.worst_counts[v, p, 1] + data.worst_counts[v, p, 2]))
                     for v in range(data.worst_counts.shape[0])})  # fmt: skip
        for w in ws:
            t, c = tmar.margin_tables(int(data.n[p]), k3[p], w)
            tabs.append(t)
            coefs.append(c)
            groups.append(np.full(len(t), p, dtype=np.int64))
    lat = tmar.count_lattice(data.re_counts)
    return {
        "line_counts": np.asarray(data.line_counts, float),
        "t6_tables": np.concatenate(tabs).astype(float),
        "t6_log_coef": np.concatenate(coefs),
        "t6_group": np.concatenate(groups),
        "re_prev": lat["prev"],
        "re_row": lat["row"],
        "re_init": lat["init"],
        "re_final": lat["final"],
    }


# ----------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------
class ToxicityModel(ToxicityInfo):
    """Ordinal CTCAE model of grade III/IV cytopenia (see the module docstring).

    Parameters
    ----------
    user_data : pandas.DataFrame, optional
        The user's individually graded observations (:data:`USER_COLUMNS`); validated.
    priors : ToxicityPriors or mapping, optional
        The priors (default :class:`ToxicityPriors`); a mapping overrides some of them
        (parameter name to a :class:`~netbayes.priors.Prior` or to the fields to change),
        e.g. ``{"theta": {"mu": 1.0, "sigma": 0.5}}``.
    data : ToxicityData, optional
        Aggregate data (default: the packaged published tables).
    any_weight : float
        Weight of the "any line" worst-grade term of the composite likelihood
        (``margins="composite"`` only).
    margins : {"exact", "composite"}
        ``"exact"`` (default): the exact likelihood of Table 6's overlapping per-line and
        any-line margins and the per-patient 188Re-HEDP likelihood
        (``docs/toxicity_margins.md``); ``"composite"``: the v0.1 composite likelihood (the
        margins as if independent, 188Re cycles as if independent).
    n_nodes : int
        Quadrature nodes for the patient propensity.
    exclude_studies : sequence of str
        Studies whose data are left out (for leave-one-study-out checks).
    studies : DataFrame, list of DataFrame or PublishedStudies, optional
        Published studies' grade counts to add (``docs/published_cohorts.md``, toxicity rows;
        :func:`netbayes.calibration.load_published`): per row the study, line, cell line (or
        ``any``), grade (``3``, ``4`` or ``3+``), count of n patients, and the activities. Each
        count is binomial with the model's probability for a patient on that line at that
        study's centre (the line's own effect, as in prediction). A packaged id is refused.
    study_level : bool
        Give each study (centre) an effect on the patient propensity, ``v_s`` (reported on the
        latent scale; ``tau_tox`` is its SD on the marginal probit scale, with an external
        prior), shared by the cell lines and phases of the study (default True). The user's
        records then get their study's effect instead of ``delta_user``. False: the v0.1 model.
    """

    def __init__(
        self,
        user_data: pd.DataFrame | None = None,
        priors: ToxicityPriors | Mapping[str, Any] | None = None,
        *,
        data: ToxicityData | None = None,
        any_weight: float = 1.0,
        n_nodes: int = 64,
        study_level: bool = True,
        exclude_studies: Sequence[str] = (),
        studies: Any = None,
        margins: str = "exact",
    ) -> None:
        if margins not in MARGINS:
            raise ValueError(f"margins={margins!r}; allowed: {', '.join(MARGINS)}")
        self.margins = margins
        if not (0.0 <= any_weight <= 1.0):
            raise ValueError(f"any_weight={any_weight!r}; expected a number in [0, 1]")
        self.data = data if data is not None else ToxicityData.packaged()
        self.priors = _as_priors(priors)
        self.any_weight = float(any_weight)
        self.n_nodes = int(n_nodes)
        self.user = None if user_data is None else validate_user_data(user_data)
        self.study_level = bool(study_level)
        self.exclude_studies: tuple[str, ...] = ()
        self.model: Any = None
        self.added = _toxicity_rows(studies, [rotterdam.STUDY_ID, re188.STUDY_ID])
        names = tuple(str(x) for x in exclude_studies)
        bad = [x for x in names if x not in self.studies]
        if bad:
            raise ValueError(
                f"exclude_studies: {bad} are not studies of this model; allowed: "
                f"{', '.join(self.studies)}"
            )
        if self.user is not None and names:
            keep = ~self.user["study"].isin(names)
            self.user = self.user[keep] if keep.any() else None
        if self.added is not None and names:
            keep = ~self.added["study"].isin(names)
            self.added = self.added[keep].reset_index(drop=True) if keep.any() else None
        self.exclude_studies = names
        if not self.studies:
            raise ValueError(f"exclude_studies={list(names)} leaves nothing to fit")

    @property
    def studies(self) -> list[str]:
        """The studies (centres) of the model's data: the two papers, then the user's
        (``study`` column of the user data; default ``"user"``)."""
        out = [rotterdam.STUDY_ID, re188.STUDY_ID]
        if getattr(self, "added", None) is not None:
            out += list(self.added["study"])
        if self.user is not None:
            out += list(self.user["study"])
        return [x for x in dict.fromkeys(out) if x not in self.exclude_studies]

    # -- building --------------------------------------------------------------------------------
    def build(
        self,
        user_data: pd.DataFrame | None = None,
        priors: ToxicityPriors | Mapping[str, Any] | None = None,
    ) -> Any:
        """Build (and keep) the PyMC model.

        Parameters
        ----------
        user_data : pandas.DataFrame, optional
            Replaces the user data given to the constructor.
        priors : ToxicityPriors or mapping, optional
            Replaces the priors given to the constructor (as its ``priors``).

        Returns
        -------
        pymc.Model
        """
        import pymc as pm
        import pytensor.tensor as pt

        if user_data is not None:
            self.user = validate_user_data(user_data)
        if priors is not None:
            self.priors = _as_priors(priors)
        P, d = self.priors, self.data
        coords: dict[str, Any] = {
            "line": list(CELL_LINES),
            "gap": ["c2-c1", "c3-c2", "c4-c3"],
            "cut": ["c1", "c2", "c3", "c4"],
            "phase": list(PHASES),
        }
        user = self.user
        if user is not None:
            pats = pd.unique(user["patient"])
            coords["patient"] = list(pats)
        studies = self.studies
        if self.study_level:
            coords["study"] = studies
        with pm.Model(coords=coords) as model:
            # sigma_u and theta are sampled as before (log scale); every location parameter is
            # sampled on the population-averaged scale x / sqrt(1 + sigma_u^2) with the prior
            # its conditional-scale prior implies ("Parameterisation" in the module docstring)
            sig = P["sigma_u"].rv(pm, "sigma_u")
            theta = P["theta"].rv(pm, "theta")
            scale = pt.sqrt(1.0 + sig**2)
            log_scale = 0.5 * pt.log1p(sig**2)
            c3_m = _scaled_prior_rv(pm, "c3_marg", P["c3"], scale, log_scale, dims="line")
            log_gap_m = _shifted_prior_rv(
                pm, "log_gap_marg", P["log_gap"], log_scale, dims=("line", "gap")
            )
            m = {
                k: _scaled_prior_rv(pm, f"{k}_marg", P[k], scale, log_scale)
                for k in _LOCATION_PARAMS
            }
            pm.Deterministic("c3", scale * c3_m, dims="line")
            pm.Deterministic("log_gap", log_gap_m + log_scale, dims=("line", "gap"))
            rv = {k: pm.Deterministic(k, scale * m[k]) for k in _LOCATION_PARAMS}
            v_m = None  # study effects, marginal scale
            if self.study_level:
                tau_m = P["tau_tox"].rv(pm, "tau_tox")
                z_st = pm.Normal("z_study_tox", 0.0, 1.0, dims="study")
                v_m = tau_m * z_st
                v = pm.Deterministic("v_study", scale * v_m, dims="study")
            use_rot = rotterdam.STUDY_ID in studies
            use_re = re188.STUDY_ID in studies
            gaps_m = pt.exp(log_gap_m)
            cut_m = lik.ordered_cutpoints_from_increments(
                c3_m - gaps_m[:, 1] - gaps_m[:, 0], log_gap_m
            )  # (line, cut), marginal scale
            cut = pm.Deterministic("cutpoints", scale * cut_m, dims=("line", "cut"))
            delta_m = pt.stack(
                [m["delta_control"], pt.zeros(()), m["delta_retreated"], m["delta_retreated"]]
            )
            eta_m = (
                m["beta_activity"] * (d.phase_activity - A_REF_GBQ) / DOSE_SCALE_GBQ
                + m["beta_prior"] * d.phase_prior / DOSE_SCALE_GBQ
                + delta_m
            )
            if v_m is not None and use_rot:
                eta_m = eta_m + v_m[studies.index(rotterdam.STUDY_ID)]
            if self.margins == "exact":
                self._add_exact_terms(pm, pt, m, cut_m, cut, sig, scale, eta_m, v_m, studies,
                                      theta, use_rot, use_re)  # fmt: skip
            else:
                self._add_composite_terms(pm, pt, m, cut_m, cut, sig, scale, eta_m, v_m,
                                          studies, theta, use_rot, use_re)  # fmt: skip
            if self.added is not None:
                self._add_study_counts(pm, pt, m, cut_m, sig, scale, v_m, studies, theta)
            if user is not None:
                if v_m is None:
                    d_user = P["delta_user"].rv(pm, "delta_user")
                else:  # the user's centres: their study effects (latent scale)
                    d_user = v[np.array([studies.index(x) for x in user["study"]])]
                z = pm.Normal("z_patient", 0.0, 1.0, dims="patient")
                pidx = pd.Categorical(user["patient"], categories=coords["patient"]).codes
                lidx = user["cell_line"].cat.codes.to_numpy()
                eta_u = (
                    rv["beta_activity"]
                    * (user["activity_gbq"].to_numpy() - A_REF_GBQ)
                    / DOSE_SCALE_GBQ
                    + rv["beta_prior"] * user["prior_gbq"].to_numpy() / DOSE_SCALE_GBQ
                    + d_user
                    + sig * z[pidx]
                )
                pm.Potential(
                    "ll_user",
                    lik.individual_grades_loglik(user["grade"].to_numpy(), eta_u, cut[lidx], LINK),
                )
        self.model = model
        return model

    def _add_composite_terms(self, pm, pt, m, cut_m, cut, sig, scale, eta_m, v_m, studies, theta,
                             use_rot, use_re):  # fmt: skip
        """The v0.1 composite likelihood (``margins="composite"``): per-line and worst-grade
        terms of Table 6 as if independent, 188Re cycles at their mean probabilities."""
        d, nodes = self.data, self.n_nodes
        eta_pl_m = pt.shape_padright(eta_m) * pt.ones((1, 3))  # (phase, line)
        # counts as pm.Data: a compiled model can be re-used on simulated data (benchmark)
        line_counts = pm.Data("line_counts", d.line_counts)
        worst_counts = pm.Data("worst_counts", d.worst_counts)
        re_counts = pm.Data("re_counts", d.re_counts)
        # probit: integrating u ~ N(0, sigma_u^2) out of one line is exact rescaling, so
        # the per-line margins depend on the marginal-scale parameters only
        ll_lines = lik.coarsened_counts_loglik(
            d.n[:, None], line_counts[..., 0], line_counts[..., 1], eta_pl_m, cut_m, LINK
        )
        if use_rot:
            pm.Potential("ll_table6_lines", ll_lines.sum())
        logp_any = lik.any_line_probs(scale * eta_pl_m, cut, sig, LINK, n_nodes=nodes, log=True)
        ll_a = lik.multinomial_loglik(worst_counts[0], logp_any)
        ll_b = lik.multinomial_loglik(worst_counts[1], logp_any)
        ll_any = pt.logsumexp(pt.stack([ll_a, ll_b]), axis=0) - math.log(2.0)
        if use_rot:
            pm.Potential("ll_table6_any", self.any_weight * ll_any.sum())
        # 188Re-HEDP cycles: marginal per-cycle probabilities, averaged over the 11 cycles
        re_eq = theta * d.re_activity
        eta_re_m = (
            m["beta_activity"] * (re_eq - A_REF_GBQ) / DOSE_SCALE_GBQ
            + m["beta_prior"] * (d.re_prior_lu + re_eq * d.re_cycle) / DOSE_SCALE_GBQ
            + m["delta_re188"]
        )
        if v_m is not None and use_re:
            eta_re_m = eta_re_m + v_m[studies.index(re188.STUDY_ID)]
        eta_re_l = pt.shape_padright(eta_re_m) * pt.ones((1, 3))
        lp_cyc = lik.ordinal_logprobs(eta_re_l, cut_m, LINK)  # (cycle, line, 5)
        lp_mean = pt.logsumexp(lp_cyc, axis=0) - math.log(len(d.re_activity))
        if use_re:
            pm.Potential("ll_re188_cycles", lik.multinomial_loglik(re_counts, lp_mean).sum())

    def _add_exact_terms(self, pm, pt, m, cut_m, cut, sig, scale, eta_m, v_m, studies, theta,
                         use_rot, use_re):  # fmt: skip
        """The exact likelihood of the published margins (``margins="exact"``,
        ``docs/toxicity_margins.md``).

        Table 6, per phase: the exact joint probability of the three per-line counts of grade
        >= III and the any-line count (a sum of the pattern multinomial over every consistent
        table; the I-PRRT phase sums over its two readings, F11), times, per line, the binomial
        of the grade IV count among that line's grade >= III patients. 188Re-HEDP: each
        patient's propensity ``u = sigma_u z_re188`` is a latent variable shared by the
        patient's cycles and lines; given it, the per-cycle count vector of each line is
        Poisson-multinomial (exact dynamic programme)."""
        d, nodes = self.data, self.n_nodes
        eta_pl_m = pt.shape_padright(eta_m) * pt.ones((1, 3))  # (phase, line)
        arr = {k: pm.Data(k, v) for k, v in exact_data_arrays(d).items()}
        line_counts = arr["line_counts"]
        k3 = line_counts[..., 0] + line_counts[..., 1]  # (phase, line) grade >= III
        tables, log_coef, group = arr["t6_tables"], arr["t6_log_coef"], arr["t6_group"]
        z3 = cut[:, 2] - pt.shape_padright(scale * eta_m)  # (phase, line), conditional scale
        log_pi = lik.pattern_logprobs(z3, sig, LINK, n_nodes=nodes)
        ll_joint = lik.margin_tables_loglik(tables, log_coef, group, log_pi, len(d.n))
        lp = lik.ordinal_logprobs(eta_pl_m, cut_m, LINK)  # (phase, line, 5), marginal
        lp_ge3 = pt.logsumexp(lp[..., 3:], axis=-1)
        lp_iv = lp[..., 4] - lp_ge3  # log P(IV | >= III)
        lp_iii = lp[..., 3] - lp_ge3
        k4 = line_counts[..., 1]
        ll_iv = lik.multinomial_loglik(
            pt.stack([k3 - k4, k4], -1), pt.stack([lp_iii, lp_iv], -1)
        )  # (phase, line)
        if use_rot:
            pm.Potential("ll_table6_margins", ll_joint.sum())
            pm.Potential("ll_table6_grade4", ll_iv.sum())
        if not use_re:
            return
        # 188Re-HEDP: per-patient propensity shared by the patient's cycles and lines
        pats = np.unique(d.re_patient)
        z_re = pm.Normal("z_re188", 0.0, 1.0, shape=len(pats))
        pidx = np.searchsorted(pats, d.re_patient)
        re_eq = theta * d.re_activity
        eta_re_m = (
            m["beta_activity"] * (re_eq - A_REF_GBQ) / DOSE_SCALE_GBQ
            + m["beta_prior"] * (d.re_prior_lu + re_eq * d.re_cycle) / DOSE_SCALE_GBQ
            + m["delta_re188"]
        )
        if v_m is not None:
            eta_re_m = eta_re_m + v_m[studies.index(re188.STUDY_ID)]
        eta_re = scale * eta_re_m + sig * z_re[pidx]  # conditional on the patient's u
        lp_cyc = lik.ordinal_logprobs(pt.shape_padright(eta_re) * pt.ones((1, 3)), cut, LINK)
        ll_re = lik.poisson_multinomial_lattice_loglik(
            arr["re_prev"], arr["re_row"], arr["re_init"], arr["re_final"], lp_cyc
        )  # (line,)
        pm.Potential("ll_re188_cycles", ll_re.sum())

    def _add_study_counts(self, pm, pt, m, cut_m, sig, scale, v_m, studies, theta):
        """Binomial terms of the added studies' grade counts (marginal scale per cell line; the
        any-line worst grade by quadrature over the patient propensity).

        The rows' counts, sizes and activities are data containers (``study_count``,
        ``study_n``, ``study_planned_gbq``, ``study_prior_gbq``), so a compiled model can be
        re-used on other values for the same rows (the simulation benchmarks); the rows' lines,
        cell lines, grades and studies are the model's structure."""
        a = self.added
        k = pm.Data("study_count", a["count"].to_numpy(float))
        n = pm.Data("study_n", a["n"].to_numpy(float))
        planned = pm.Data("study_planned_gbq", a["planned_gbq"].to_numpy(float))
        prior = pm.Data("study_prior_gbq", a["prior_gbq"].to_numpy(float))
        adds = np.array([spec.line_spec(x).adds_lu177 for x in a["line"]])
        act = pt.switch(adds, planned, theta * planned)  # 177Lu-equivalent GBq
        keys = [ftox.LINE_EFFECT[x] for x in a["line"]]
        effect = pt.stack([pt.zeros(()) if key is None else m[key] for key in keys])
        eta_m = (
            m["beta_activity"] * (act - A_REF_GBQ) / DOSE_SCALE_GBQ
            + m["beta_prior"] * prior / DOSE_SCALE_GBQ
            + effect
        )  # (R,) marginal scale
        if v_m is not None:
            eta_m = eta_m + v_m[np.array([studies.index(x) for x in a["study"]])]
        eta_l = pt.shape_padright(eta_m) * pt.ones((1, 3))  # (R, 3)
        lp_line = lik.ordinal_logprobs(eta_l, cut_m, LINK)  # (R, 3, 5): grades 0-IV
        lp_any3 = lik.any_line_probs(
            scale * eta_l, scale * cut_m, sig, LINK, n_nodes=self.n_nodes, log=True
        )  # (R, 3): <= II, III, IV
        rows = np.arange(len(a))
        li = np.array([CELL_LINES.index(c) if c != "any" else 0 for c in a["cell_line"]])
        on_line = lp_line[rows, li]  # (R, 5)
        line_g = pt.stack(
            [on_line[:, 3], on_line[:, 4], pt.logsumexp(on_line[:, 3:], axis=1)], axis=1
        )  # III, IV, >= III
        any_g = pt.stack(
            [lp_any3[:, 1], lp_any3[:, 2], pt.logsumexp(lp_any3[:, 1:], axis=1)], axis=1
        )
        gi = np.array([{"3": 0, "4": 1, "3+": 2}[str(g)] for g in a["grade"]])
        is_any = (a["cell_line"] == "any").to_numpy()
        logp = pt.switch(is_any, any_g[rows, gi], line_g[rows, gi])
        ll = k * logp + (n - k) * pt.log1mexp(pt.minimum(logp, -1e-12))
        pm.Potential("ll_study_counts", ll.sum())

    def parameter_names(self) -> list[str]:
        """Parameters diagnosed after a fit.

        The sampler's own coordinates (``<name>_marg``, the marginal-scale location parameters,
        plus ``theta`` and ``sigma_u``) and the reported conditional-scale parameters (``c3``,
        ``log_gap``, ``beta_*``, ``delta_*``), so that R-hat and ESS hold for both.
        """
        names = ["c3", "log_gap", *_SCALAR_PARAMS, "c3_marg", "log_gap_marg"]
        names += [f"{k}_marg" for k in _LOCATION_PARAMS]
        if self.study_level:
            names += ["tau_tox", "z_study_tox", "v_study"]
        if self.margins == "exact" and re188.STUDY_ID in self.studies:
            names += ["z_re188"]
        if self.user is not None:
            names += ["z_patient"] if self.study_level else ["delta_user", "z_patient"]
        return names

    # -- fitting ---------------------------------------------------------------------------------
    def fit(
        self,
        *,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        seed: int = 20261121,
        sampler: str = "nutpie",
        progress: bool = True,
        target_accept: float = TARGET_ACCEPT,
        cores: int | None = None,
        adaptation: str | None = None,
    ) -> FitResult:
        """Sample the posterior with :func:`netbayes.fitting.sample` (nutpie by default).

        Parameters
        ----------
        draws, tune, chains, seed, sampler, progress, cores
            As in :func:`netbayes.fitting.sample`.
        target_accept : float
            Step-size adaptation target (default :data:`TARGET_ACCEPT`).
        adaptation : {"diag", "low_rank"}, optional
            nutpie's mass-matrix adaptation (default :data:`ADAPTATION`; PyMC's sampler:
            its own diagonal one, and only None or ``"diag"`` are allowed).

        Returns
        -------
        FitResult
            Posterior (``xarray.DataTree``), diagnostics, divergences, compile and sampling
            seconds; ``fit.draws("beta_activity")`` gives plain arrays. A
            :class:`~netbayes.fitting.ConvergenceWarning` is emitted if the targets are missed.
        """
        if self.model is None:
            self.build()
        fit = sample(
            self.model,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            sampler=sampler,  # type: ignore[arg-type]
            progress=progress,
            target_accept=target_accept,
            var_names=self.parameter_names(),
            cores=cores,
            adaptation=(ADAPTATION if sampler == "nutpie" else "diag")
            if adaptation is None
            else adaptation,  # type: ignore[arg-type]
        )
        fit.model_info = self.model_info()  # what fit.save() records (models.base)
        return fit

    # -- reporting -------------------------------------------------------------------------------
    def prior_elements(self) -> list[tuple[str, str, tuple[int, ...]]]:
        """Rows of :meth:`prior_table`: ``(label, prior name, index into its draws)``: the
        cutpoints and log gaps per cell line, then the scalar parameters (``delta_user`` with
        user data)."""
        names: list[tuple[str, str, tuple[int, ...]]] = []
        for i, line in enumerate(CELL_LINES):
            names.append((f"c3[{line}]", "c3", (i,)))
        for i, line in enumerate(CELL_LINES):
            for j, gap in enumerate(("c2-c1", "c3-c2", "c4-c3")):
                names.append((f"log_gap[{line},{gap}]", "log_gap", (i, j)))
        names += [(k, k, ()) for k in _SCALAR_PARAMS]
        if self.study_level:
            names.append(("tau_tox", "tau_tox", ()))
        if self.user is not None and not self.study_level:
            names.append(("delta_user", "delta_user", ()))
        return names

    @staticmethod
    def _params(fit: FitResult, max_draws: int | None, seed: int) -> dict[str, np.ndarray]:
        return toxicity_params(fit, max_draws, seed)

    def ppc_table(
        self,
        fit: FitResult,
        *,
        interval: Interval | float | None = None,
        max_draws: int = 2000,
        seed: int = 7,
    ) -> pd.DataFrame:
        """Posterior predictive check of every Table 6 count and every 188Re per-cycle count.

        Computed by :func:`netbayes.formulas.toxicity_ppc.toxicity_ppc_table` on this model's
        data (NumPy only). For each posterior draw, new patients are simulated *individually*
        (propensity :math:`u_i`, then a grade per line) and aggregated exactly as the papers do:
        per-line grade III and IV counts, the overlapping "any" grade III / grade IV counts as
        printed (F11), and for 188Re the per-cycle grade counts of 11 cycles of the 6 patients
        (cycles of one patient share :math:`u_i`).

        Parameters
        ----------
        fit : FitResult
        interval : Interval or float, optional
            Predictive interval convention (default 95% equal-tailed,
            :data:`netbayes.intervals.DEFAULT_INTERVAL`).
        max_draws, seed
            At most ``max_draws`` random posterior draws; seed of the thinning and simulation.

        Returns
        -------
        pandas.DataFrame
            See :func:`netbayes.formulas.toxicity_ppc.toxicity_ppc_table`.
        """
        return toxicity_ppc_table(fit, self.data, interval=interval, max_draws=max_draws, seed=seed)

    def risk_draws(
        self,
        fit: FitResult,
        planned_gbq: Sequence[float] | float,
        prior_gbq: Sequence[float] | float,
        *,
        line: str | Sequence[str] | None = None,
        max_draws: int | None = 2000,
        seed: int = 11,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior draws of the marginal risk of grade >= III for new patients.

        A thin wrapper of :func:`netbayes.formulas.toxicity.grade3_risk` (the one
        implementation of the formulas) on this fit's draws.

        Parameters
        ----------
        fit : FitResult
        planned_gbq, prior_gbq : float or sequence of float
            Activity planned in the phase (GBq 177Lu-octreotate; GBq 188Re-HEDP on the
            ``188Re-HEDP`` line) and 177Lu activity given before it (GBq >= 0); broadcast
            together.
        line : str or sequence of str, optional
            Treatment line (:data:`netbayes.vocab.LINES`), see
            :func:`~netbayes.formulas.toxicity.grade3_risk`. Default: ``"R-PRRT"`` (a
            retreatment candidate who met the criteria for it, with the selection effect)
            where ``prior_gbq > 0``, else ``"I-PRRT"``.
        max_draws, seed
            Thin the posterior to at most ``max_draws`` random draws.

        Returns
        -------
        per_line : ndarray, shape (draws, points, 3)
            :math:`P(G_l \\ge III)` per cell line.
        any_line : ndarray, shape (draws, points)
            :math:`P(\\max_l G_l \\ge III)`.
        """
        a, p = np.broadcast_arrays(
            np.atleast_1d(np.asarray(planned_gbq, float)),
            np.atleast_1d(np.asarray(prior_gbq, float)),
        )
        a, p = a.ravel(), p.ravel()
        if line is None:
            ln = np.where(p > 0, "R-PRRT", "I-PRRT")
        else:
            ln = np.broadcast_to(np.atleast_1d(np.asarray(line, dtype=object)), a.shape)
        th = self._params(fit, max_draws, seed)
        return ftox.grade3_risk({k: th[k] for k in ftox.PARAMS}, a, p, ln, n_nodes=self.n_nodes)

    def risk_table(
        self,
        fit: FitResult,
        planned_gbq: Sequence[float] | float = (7.4, 14.8, 29.6),
        prior_gbq: Sequence[float] | float = 0.0,
        *,
        line: str | None = None,
        tumour_type: str | None = None,
        prior_pfs_months: float | None = None,
        interval: Interval | float | None = None,
    ) -> pd.DataFrame:
        """P(grade >= III) per cell line and any line, with credible bands.

        Parameters
        ----------
        fit : FitResult
        planned_gbq, prior_gbq : float or sequence of float
            Activities (GBq); every combination of the two is tabulated.
        line : str, optional
            Treatment line, see :meth:`risk_draws` (default by prior activity).
        tumour_type, prior_pfs_months : optional
            The survival model's patient record fields; validated but *not used*: no published
            toxicity data inform them, so the model has no parameter for them.
        interval : Interval or float, optional
            Band convention (default :data:`netbayes.intervals.DEFAULT_INTERVAL`, 95%
            equal-tailed); a float is the probability of an equal-tailed band.

        Returns
        -------
        pandas.DataFrame
            Columns ``planned_gbq``, ``prior_gbq``, ``line``, ``cell_line`` (the three lines
            and ``any``), ``mean``, ``median`` and the band named by the convention, e.g.
            ``eti95_lower``, ``eti95_upper``.
        """
        if tumour_type is not None and tumour_type not in vocab.PATIENT_TUMOUR_TYPES:
            raise ValueError(
                f"tumour_type={tumour_type!r} is not allowed; expected one of "
                f"{', '.join(vocab.PATIENT_TUMOUR_TYPES)}"
            )
        if prior_pfs_months is not None and not (prior_pfs_months > 0):
            raise ValueError(f"prior_pfs_months={prior_pfs_months!r}; expected a number > 0")
        iv = as_interval(interval)
        A, Pr = np.meshgrid(
            np.atleast_1d(np.asarray(planned_gbq, float)),
            np.atleast_1d(np.asarray(prior_gbq, float)),
            indexing="ij",
        )
        a, p = A.ravel(), Pr.ravel()
        ln = np.where(p > 0, "R-PRRT", "I-PRRT") if line is None else np.full(a.shape, line)
        per_line, any_line = self.risk_draws(fit, a, p, line=ln)
        draws = np.concatenate([per_line, any_line[..., None]], axis=-1)  # (S, P, 4)
        summ = iv.describe(draws, axis=0)  # each (P, 4)
        names = [*CELL_LINES, "any"]
        out = pd.DataFrame(
            {
                "planned_gbq": np.repeat(a, len(names)),
                "prior_gbq": np.repeat(p, len(names)),
                "line": np.repeat(ln, len(names)),
                "cell_line": np.tile(names, len(a)),
                "mean": summ["mean"].ravel(),
                "median": summ["median"].ravel(),
                iv.columns[0]: summ[iv.columns[0]].ravel(),
                iv.columns[1]: summ[iv.columns[1]].ravel(),
            }
        )
        return out

    def plot_risk(
        self,
        fit: FitResult,
        path: str | None = None,
        *,
        planned_gbq: Sequence[float] | None = None,
        prior_gbq: Sequence[float] = (0.0, 29.9, 44.7),
        interval: Interval | float | None = None,
        ax: Any = None,
    ) -> pd.DataFrame:
        """Plot P(grade >= III) against planned activity, one panel per line and any line.

        One curve (posterior mean) with a credible band per prior activity (default band:
        95% equal-tailed, named in the legend and axis label, e.g. "95% ETI"). A curve is solid
        over the planned activities its line had in the published data
        (:func:`netbayes.calibration.calibrated_ranges`: I-PRRT 18.6-30.7 GBq for prior 0,
        R-PRRT 3.7-16.2 GBq otherwise) and dashed outside them. Saves a PNG to ``path`` if
        given. ``ax``: four axes to draw into (the three cell lines and any), e.g.
        ``fig.subplots(1, 4)``; default a new figure.

        Returns
        -------
        pandas.DataFrame
            The data behind the plot (:meth:`risk_table` on the grid).
        """
        # a bare Figure: no pyplot state and no backend switch (a notebook's inline backend
        # stays as it is)
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        iv = as_interval(interval)
        lo_col, hi_col = iv.columns
        grid = np.linspace(0.0, 30.0, 31) if planned_gbq is None else np.asarray(planned_gbq)
        tab = self.risk_table(fit, grid, prior_gbq, interval=iv)
        panels = [*CELL_LINES, "any"]
        own = ax is None
        if own:
            fig = Figure(figsize=(15, 3.8))
            axes = fig.subplots(1, 4, sharey=True)
        else:
            axes = list(np.ravel(ax))
            if len(axes) != 4:
                raise ValueError(f"ax has {len(axes)} axes; expected 4 (the three cell lines "
                                 "and any line)")  # fmt: skip
            fig = axes[0].figure
        published = calibrated_ranges()["planned_gbq"]
        for ax, cell in zip(axes, panels, strict=True):
            for pr in prior_gbq:
                t = tab[(tab["cell_line"] == cell) & np.isclose(tab["prior_gbq"], pr)]
                line = "R-PRRT" if pr > 0 else "I-PRRT"
                lo_a, hi_a = published[line]
                lab = f"prior {pr:g} GBq ({line}{', selected' if pr > 0 else ''})"
                x, y = t["planned_gbq"].to_numpy(), 100 * t["mean"].to_numpy()
                # dashed over the whole grid, solid over the line's published activities
                (h,) = ax.plot(x, y, linestyle="--", linewidth=1.0)
                inside = (x >= lo_a) & (x <= hi_a)
                ax.plot(x[inside], y[inside], color=h.get_color(), linewidth=2.0, label=lab)
                ax.fill_between(
                    x, 100 * t[lo_col], 100 * t[hi_col], color=h.get_color(), alpha=0.2,
                )  # fmt: skip
            ax.set_title(f"{cell}: P(grade ≥ III)")
            ax.set_xlabel("planned 177Lu activity in phase (GBq)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(f"% of patients (mean, {iv.text} band)")
        handles, labels = axes[0].get_legend_handles_labels()
        handles.append(Patch(facecolor="grey", alpha=0.3))
        labels.append(f"band: {iv.text}")
        handles.append(Line2D([], [], color="grey", linestyle="--", linewidth=1.0))
        labels.append("dashed: outside the line's published activities")
        axes[0].legend(handles, labels, fontsize=8)
        if own:
            fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return tab


# ----------------------------------------------------------------------------------------------
# simulation (for the coverage benchmark and the tests)
# ----------------------------------------------------------------------------------------------
def simulate_data(
    params: Mapping[str, Any],
    rng: np.random.Generator,
    *,
    template: ToxicityData | None = None,
    n_user_patients: int = 0,
    user_cycles: int = 2,
) -> tuple[ToxicityData, pd.DataFrame | None]:
    """Simulate individual patients and aggregate them like the published tables.

    Parameters
    ----------
    params : mapping
        ``c3`` (3,), ``log_gap`` (3, 3) and the scalar parameters of :data:`DEFAULT_PRIORS`
        (``delta_user`` only needed with user patients).
    rng : numpy.random.Generator
    template : ToxicityData, optional
        Design (n per phase, activities, 188Re cycles); default: the packaged data.
    n_user_patients, user_cycles : int
        Size of an optional fully graded individual cohort (random activities 3.7-8 GBq per
        cycle, cumulative prior activity), returned as a user-data DataFrame.

    Returns
    -------
    data : ToxicityData
        Table-6-style counts (per-line III/IV, worst grade, printed overlapping "any") and
        188Re per-cycle counts.
    user : pandas.DataFrame or None
    """
    t = template if template is not None else ToxicityData.packaged()
    cut = ftox.cutpoints(np.asarray(params["c3"]), np.asarray(params["log_gap"]))
    sig = float(params["sigma_u"])
    delta = np.array(
        [params["delta_control"], 0.0, params["delta_retreated"], params["delta_retreated"]]
    )
    line_counts = np.zeros((4, 3, 2))
    worst = np.zeros((4, 3))
    anyp = np.zeros((4, 2))
    for p in range(4):
        n = int(t.n[p])
        eta = ftox.linear_predictor(
            t.phase_activity[p], t.phase_prior[p], params["beta_activity"], params["beta_prior"],
            delta[p],
        )  # fmt: skip
        u = rng.normal(0, sig, n)
        g = ftox.simulate_grades(np.full((n, 3), eta), cut, u[:, None], rng)
        for gr in (3, 4):
            line_counts[p, :, gr - 3] = (g == gr).sum(0)
            anyp[p, gr - 3] = (g == gr).any(1).sum()
        m = g.max(1)
        worst[p] = ((m <= 2).sum(), (m == 3).sum(), (m == 4).sum())
    pats = np.unique(t.re_patient)
    u_p = rng.normal(0, sig, len(pats))
    re_eq = params["theta"] * t.re_activity
    eta = ftox.linear_predictor(
        re_eq, t.re_prior_lu + re_eq * t.re_cycle, params["beta_activity"],
        params["beta_prior"], params["delta_re188"],
    )  # fmt: skip
    g = ftox.simulate_grades(
        eta[:, None] * np.ones(3), cut, u_p[np.searchsorted(pats, t.re_patient)][:, None], rng
    )
    re_counts = np.stack([np.bincount(g[:, li], minlength=5) for li in range(3)]).astype(float)
    data = replace(
        t,
        line_counts=line_counts,
        worst_counts=np.stack([worst, worst]),
        any_printed=anyp,
        re_counts=re_counts,
        user=None,
    )
    user = None
    if n_user_patients:
        rows = []
        for i in range(n_user_patients):
            u_i = rng.normal(0, sig)
            prior = rng.choice([0.0, 29.6])
            for c in range(1, user_cycles + 1):
                act = rng.uniform(3.7, 8.0)
                e = ftox.linear_predictor(
                    act, prior, params["beta_activity"], params["beta_prior"],
                    params.get("delta_user", 0.0),
                )  # fmt: skip
                gr = ftox.simulate_grades(np.full(3, e), cut, np.full(3, u_i), rng)
                for li, line in enumerate(CELL_LINES):
                    rows.append((f"p{i}", c, line, int(gr[li]), act, prior))
                prior += act
        user = pd.DataFrame(rows, columns=list(USER_COLUMNS))
    return data, user


def draw_prior_params(
    rng: np.random.Generator, priors: ToxicityPriors | Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One draw of every parameter from the priors (as the model's ``priors``), for simulation."""
    P = _as_priors(priors)
    out: dict[str, Any] = {
        "c3": P["c3"].sample(rng, 3),
        "log_gap": P["log_gap"].sample(rng, 9).reshape(3, 3),
    }
    for k in (*_SCALAR_PARAMS, "delta_user"):
        out[k] = float(P[k].sample(rng, 1)[0])
    return out
