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

All priors live in :data:`DEFAULT_PRIORS` (overridable per name); :meth:`ToxicityModel.prior_table`
shows them next to the posterior so that what the data do and do not inform is visible.

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
* **Rotterdam Table 6, per line**: grade III and IV counts out of n, grades 0-II lumped, via
  :func:`~netbayes.likelihoods.ordinal.coarsened_counts_loglik` on the *marginal*
  (propensity-integrated) per-line probabilities. Rows: control I-PRRT (230), I-PRRT (181),
  R-PRRT (181), RR-PRRT (13). Creatinine is not a cell line and is not used.
* **Table 6, any line**: the worst-grade multinomial {all <= II, worst = III, worst = IV}
  (AUDIT F11: the printed "any" columns overlap): control (199, 25, 6), R-PRRT (169, 11, 1),
  RR-PRRT (12, 1, 0), and for I-PRRT the overlap of its single grade IV patient is unknown, so
  the likelihood is the equal-weight mixture of (161, 19, 1) and (162, 18, 1).
* **Per-line and any describe the same patients.** The exact likelihood of the three per-line
  margins and the worst-grade margin of one 27-cell joint table is intractable from margins, so
  the model uses a *composite likelihood*: the product of the three per-line terms and the "any"
  term, the latter multiplied by ``any_weight`` (default 1). The per-line terms carry the
  line-specific cutpoints; the "any" term is what identifies :math:`\sigma_u` (how much more
  often lines fail together than independence implies). Because the terms overlap in
  information about the overall level, the composite posterior could be over-confident; this
  was checked by simulation (``benchmarks/toxicity_coverage.py``): patients are simulated from
  prior draws, aggregated exactly as Table 6 is, and the credible-interval coverage of the dose
  effects and cutpoints is reported. Result (50 replicates, same truths for both weights):
  with ``any_weight=1`` the 50%/90% coverage is 45%/89% for the dose effects
  (:math:`\beta_A, \beta_P, \theta`), 52%/89% for the 12 cutpoints, 47%/81% for the
  selection effects and 38%/96% for :math:`\sigma_u` (MC SE 3-7 points); with
  ``any_weight=0.5`` 47%/88%, 54%/90%, 49%/85%, 34%/94%. The two are within MC error of each
  other and of nominal for the dose effects and cutpoints, so the full weight is kept; the
  selection effects are ~1-2 SE low at 90%, in line with a mild double count of the
  control/I-PRRT evidence. Set ``any_weight`` lower to down-weight the overlap if a different
  data set shows under-coverage.
* **188Re-HEDP per-cycle table** (11 cycles, 6 patients, full grades 0-IV per line,
  :func:`netbayes.cohorts.re188_cycle_grade_counts`): per-cycle grades are mutually exclusive
  (the per-patient column is not, F18, and is not used). Which cycle belongs to which patient is
  not published, so the counts are modelled as a multinomial with the *average* of the 11
  cycles' marginal probabilities (cycle :math:`k` of patient :math:`i`: activity
  cumulative/n_cycles, prior activity = 177Lu cumulative + :math:`\theta` x earlier 188Re
  cycles). This ignores the within-patient correlation of cycles (2 patients have >1 cycle of
  the same propensity); the simulation benchmark includes it, and the posterior predictive
  check simulates it.
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
posterior mean and 90% bands. It is computed in NumPy (no PyMC on the prediction path).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import ndtr

from netbayes import vocab
from netbayes.cohorts import re188_cycle_grade_counts
from netbayes.data import load_table
from netbayes.fitting import FitResult, sample
from netbayes.likelihoods import ordinal as lik

__all__ = [
    "A_REF_GBQ",
    "DEFAULT_PRIORS",
    "DOSE_SCALE_GBQ",
    "PHASES",
    "USER_COLUMNS",
    "ToxicityData",
    "ToxicityModel",
    "draw_prior_params",
    "simulate_data",
    "validate_user_data",
]

A_REF_GBQ = 29.9
"""Reference activity in a block (GBq): the I-PRRT median of the retreatment group."""
DOSE_SCALE_GBQ = 10.0
"""Dose coefficients are per this many GBq (177Lu-octreotate equivalent)."""
CELL_LINES: tuple[str, ...] = tuple(vocab.CELL_LINES)
LINK = "probit"
"""Link of the cumulative model (see "Link" in the module docstring)."""
PHASES: tuple[str, ...] = ("control I-PRRT", "I-PRRT", "R-PRRT", "RR-PRRT")
"""Rows of Rotterdam Table 6 used as likelihood, in model order."""
_PHASE_KEYS = (("control", "I-PRRT"), ("retreatment", "I-PRRT"), ("retreatment", "R-PRRT"),
               ("retreatment", "RR-PRRT"))  # fmt: skip
_COHORT_OF_PHASE = ("control", "reference", "retreated", "retreated")
# AUDIT F11: how many of the "any grade IV" patients are also counted in "any grade III".
# control: footnote b (5 of 6); R-PRRT: text "12 patients (6.6%)" = 12 + 1 - 1; RR-PRRT: no
# grade IV; I-PRRT: unknown (0 or 1): the likelihood mixes both with equal weight.
_ANY_OVERLAP: dict[str, tuple[int, ...]] = {
    "control I-PRRT": (5,),
    "I-PRRT": (0, 1),
    "R-PRRT": (1,),
    "RR-PRRT": (0,),
}

# ----------------------------------------------------------------------------------------------
# priors
# ----------------------------------------------------------------------------------------------
DEFAULT_PRIORS: dict[str, dict[str, Any]] = {
    "c3": {
        "dist": "normal", "mu": 1.8, "sigma": 0.9,
        "meaning": "grade III cutpoint per line at 29.9 GBq I-PRRT (probit, conditional on u = 0)",
        "why": "P(grade >= III) after a standard course is a few % per line (Phi(-1.8) = 3.6%); "
        "95% range 0.1%-50%",
    },
    "log_gap": {
        "dist": "normal", "mu": -0.5, "sigma": 0.75,
        "meaning": "log gaps c2-c1, c3-c2, c4-c3 per line",
        "why": "gaps of ~0.6 probit units (0.14-2.6 at 95%): grades roughly evenly spread",
    },
    "beta_activity": {
        "dist": "normal", "mu": 0.2, "sigma": 0.25,
        "meaning": "probit effect of +10 GBq activity in the block",
        "why": "radiobiology: more marrow dose, more toxicity; 21% prior mass below 0",
    },
    "beta_prior": {
        "dist": "normal", "mu": 0.1, "sigma": 0.2,
        "meaning": "probit effect of +10 GBq prior cumulative activity (marrow reserve)",
        "why": "reduced reserve expected but smaller than the acute effect (pilot paper's "
        "discussion disputes a major impact); sceptical",
    },
    "delta_control": {
        "dist": "normal", "mu": 0.0, "sigma": 0.45,
        "meaning": "Rotterdam safety-control cohort vs retreatment group at I-PRRT",
        "why": "selection (F12): sceptical, centred on no difference",
    },
    "delta_retreated": {
        "dist": "normal", "mu": 0.0, "sigma": 0.45,
        "meaning": "selection effect of retreated patients (R-PRRT, RR-PRRT)",
        "why": "selected for tolerance; confounded with dose in aggregate data: sceptical",
    },
    "delta_re188": {
        "dist": "normal", "mu": 0.0, "sigma": 0.45,
        "meaning": "188Re-HEDP pilot cohort effect (baseline cytopenia, other centre)",
        "why": "one small cohort; confounded with theta: sceptical",
    },
    "delta_user": {
        "dist": "normal", "mu": 0.0, "sigma": 0.45,
        "meaning": "cohort effect of the user's own records",
        "why": "another centre and grading practice: sceptical",
    },
    "theta": {
        "dist": "lognormal", "mu": math.log(8.0), "sigma": 0.7,
        "meaning": "GBq 177Lu-octreotate marrow-equivalent to 1 GBq 188Re-HEDP",
        "why": "physics (module docstring): bone-seeking high-energy beta vs renally cleared "
        "low-energy beta; median 8, 95% range ~2-32",
    },
    "sigma_u": {
        "dist": "halfnormal", "sigma": 1.0,
        "meaning": "SD of the patient propensity shared by the three lines (probit scale)",
        "why": "lines co-fail (marrow is one organ); intra-class correlation up to ~0.8",
    },
}  # fmt: skip
_PRIOR_DISTS = {"normal": ("mu", "sigma"), "lognormal": ("mu", "sigma"), "halfnormal": ("sigma",)}
_SCALAR_PARAMS = (
    "beta_activity", "beta_prior", "delta_control", "delta_retreated", "delta_re188", "theta",
    "sigma_u",
)  # fmt: skip


def _merge_priors(priors: Mapping[str, Mapping[str, Any]] | None) -> dict[str, dict[str, Any]]:
    out = {k: dict(v) for k, v in DEFAULT_PRIORS.items()}
    for name, spec in (priors or {}).items():
        if name not in out:
            raise ValueError(
                f"priors: unknown parameter {name!r}; allowed: {', '.join(DEFAULT_PRIORS)}"
            )
        new = {**out[name], **dict(spec)}
        dist = new["dist"]
        if dist not in _PRIOR_DISTS:
            raise ValueError(f"priors[{name!r}]: dist={dist!r}; allowed: {list(_PRIOR_DISTS)}")
        for p in _PRIOR_DISTS[dist]:
            v = new.get(p)
            if v is None or not np.isfinite(v) or (p == "sigma" and v <= 0):
                raise ValueError(
                    f"priors[{name!r}]: {p}={v!r}; expected a finite number"
                    + (" > 0" if p == "sigma" else "")
                )
        out[name] = new
    return out


def _prior_rv(pm: Any, name: str, spec: Mapping[str, Any], **kw: Any) -> Any:
    dist = spec["dist"]
    if dist == "normal":
        return pm.Normal(name, mu=spec["mu"], sigma=spec["sigma"], **kw)
    if dist == "lognormal":
        return pm.LogNormal(name, mu=spec["mu"], sigma=spec["sigma"], **kw)
    return pm.HalfNormal(name, sigma=spec["sigma"], **kw)


def _prior_draws(spec: Mapping[str, Any], size: int, rng: np.random.Generator) -> np.ndarray:
    dist = spec["dist"]
    if dist == "normal":
        return rng.normal(spec["mu"], spec["sigma"], size)
    if dist == "lognormal":
        return np.exp(rng.normal(spec["mu"], spec["sigma"], size))
    return np.abs(rng.normal(0.0, spec["sigma"], size))


# ----------------------------------------------------------------------------------------------
# user data
# ----------------------------------------------------------------------------------------------
USER_COLUMNS: dict[str, str] = {
    "patient": "patient identifier (any non-missing label)",
    "cycle": "treatment block number within the patient (integer >= 1)",
    "cell_line": f"one of {', '.join(CELL_LINES)}",
    "grade": "worst CTCAE grade after the block, integer 0-4",
    "activity_gbq": "177Lu-octreotate activity given in the block, GBq >= 0",
    "prior_gbq": "cumulative 177Lu activity given before the block, GBq >= 0",
}
"""Required columns of a user's individual observations (``tumour_type`` and
``prior_pfs_months`` may be present; they are validated against the survival vocabulary but not
used, see the module docstring)."""


def _bad(field: str, value: Any, allowed: str, row: Any) -> ValueError:
    return ValueError(f"{field}={value!r} (row {row!r}) is not allowed; expected {allowed}")


def validate_user_data(df: pd.DataFrame) -> pd.DataFrame:
    """Validate a user's individually graded observations and return a typed copy.

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
    ValueError
        Naming the field, the offending value and row, and what is allowed (missing column,
        missing value, grade outside 0-IV, negative or non-finite activity, unknown cell line,
        duplicated patient/cycle/cell line).
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"user_data must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in USER_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"user_data is missing column(s) {missing}; required: {list(USER_COLUMNS)}"
        )
    if len(df) == 0:
        raise ValueError("user_data has no rows; expected at least one graded observation")
    for col, allowed in USER_COLUMNS.items():
        na = df[col].isna()
        if na.any():
            i = na[na].index[0]
            raise _bad(col, df.loc[i, col], f"{allowed} (not missing)", i)
    out = pd.DataFrame(index=df.index)
    out["patient"] = df["patient"].astype(str)
    for col, lo, allowed in (
        ("cycle", 1, USER_COLUMNS["cycle"]),
        ("grade", 0, USER_COLUMNS["grade"]),
    ):
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = vals.isna() | (vals != np.round(vals)) | (vals < lo)
        if col == "grade":
            bad |= vals > lik.N_GRADES - 1
        if bad.any():
            i = bad[bad].index[0]
            raise _bad(col, df.loc[i, col], allowed, i)
        out[col] = vals.astype(int)
    line = df["cell_line"].astype("string").str.strip().str.lower()
    bad = ~line.isin(CELL_LINES)
    if bad.any():
        i = bad[bad].index[0]
        raise _bad("cell_line", df.loc[i, "cell_line"], USER_COLUMNS["cell_line"], i)
    out["cell_line"] = pd.Categorical(line, categories=list(CELL_LINES))
    for col in ("activity_gbq", "prior_gbq"):
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = vals.isna() | ~np.isfinite(vals) | (vals < 0)
        if bad.any():
            i = bad[bad].index[0]
            raise _bad(col, df.loc[i, col], USER_COLUMNS[col], i)
        out[col] = vals.astype(float)
    if "tumour_type" in df.columns:
        tt = df["tumour_type"].astype("string").str.strip()
        bad = tt.notna() & ~tt.isin(vocab.PATIENT_TUMOUR_TYPES)
        if bad.any():
            i = bad[bad].index[0]
            raise _bad(
                "tumour_type", df.loc[i, "tumour_type"],
                f"one of {', '.join(vocab.PATIENT_TUMOUR_TYPES)} (not used by this model)", i,
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


# ----------------------------------------------------------------------------------------------
# data container
# ----------------------------------------------------------------------------------------------
@dataclass
class ToxicityData:
    """Everything the likelihood sees, as plain arrays (packaged data or a simulation).

    Attributes
    ----------
    n : ndarray, shape (4,)
        Patients per Table 6 phase (:data:`PHASES` order).
    line_counts : ndarray, shape (4, 3, 2)
        Grade III and IV counts per phase and cell line.
    worst_counts : ndarray, shape (2, 4, 3)
        Worst-grade counts (<= II, III, IV) per phase; two versions for the unknown I-PRRT
        overlap (identical for the other phases).
    any_printed : ndarray, shape (4, 2)
        Printed "any" grade III and grade IV counts (overlapping; PPC only).
    phase_activity, phase_prior : ndarray, shape (4,)
        GBq given in the phase and before it.
    re_activity, re_prior_lu, re_cycle, re_patient : ndarray, shape (n_cycles,)
        188Re-HEDP cycles: GBq 188Re in the cycle, prior 177Lu GBq of the patient, cycle index
        within the patient (0-based: earlier 188Re cycles add to the prior activity), patient.
    re_counts : ndarray, shape (3, 5)
        Per-cycle grade counts per line.
    user : pandas.DataFrame or None
        Validated user records.
    """

    n: np.ndarray
    line_counts: np.ndarray
    worst_counts: np.ndarray
    any_printed: np.ndarray
    phase_activity: np.ndarray
    phase_prior: np.ndarray
    re_activity: np.ndarray
    re_prior_lu: np.ndarray
    re_cycle: np.ndarray
    re_patient: np.ndarray
    re_counts: np.ndarray
    user: pd.DataFrame | None = field(default=None)

    @classmethod
    def packaged(cls) -> ToxicityData:
        """Build from the packaged tables (Rotterdam Table 6 + doses, 188Re per-cycle table)."""
        tox = load_table("rotterdam_toxicity")
        doses = load_table("rotterdam_doses")
        n = np.zeros(4)
        line_counts = np.zeros((4, 3, 2))
        any_printed = np.zeros((4, 2))
        for p, (grp, ph) in enumerate(_PHASE_KEYS):
            rows = tox[(tox["group"] == grp) & (tox["phase"] == ph)]
            n[p] = rows["n"].iloc[0]
            for _, r in rows.iterrows():
                g = int(r["grade"]) - 3
                if r["cell_line"] == "any":
                    any_printed[p, g] = r["count"]
                elif r["cell_line"] in CELL_LINES:
                    line_counts[p, CELL_LINES.index(r["cell_line"]), g] = r["count"]
        worst = np.zeros((2, 4, 3))
        for p, ph in enumerate(PHASES):
            ov = _ANY_OVERLAP[ph]
            for v in range(2):
                o = ov[min(v, len(ov) - 1)]
                w4 = any_printed[p, 1]
                w3 = any_printed[p, 0] - o
                worst[v, p] = (n[p] - w3 - w4, w3, w4)

        def dose(grp: str, ph: str, q: str) -> float:
            sel = (doses["group"] == grp) & (doses["phase"] == ph) & (doses["quantity"] == q)
            return float(doses.loc[sel, "median_gbq"].iloc[0])

        act = np.array([dose(g, p, "activity_in_phase") for g, p in _PHASE_KEYS])
        prior = np.array(
            [
                0.0,
                0.0,
                dose("retreatment", "I-PRRT", "activity_in_phase"),
                dose("retreatment", "R-PRRT", "cumulative_after_phase"),
            ]
        )
        pts = load_table("re188_patients")
        re_act, re_prior, re_cyc, re_pat = [], [], [], []
        for _, r in pts.iterrows():
            k = int(r["n_cycles"])
            for c in range(k):
                re_act.append(float(r["re188_cumulative_gbq"]) / k)
                re_prior.append(float(r["lu177_cumulative_gbq"]))
                re_cyc.append(c)
                re_pat.append(int(r["patient"]))
        counts = re188_cycle_grade_counts()
        re_counts = counts[[f"grade_{g}" for g in range(5)]].to_numpy(float)
        if int(counts["n_cycles"].iloc[0]) != len(re_act):  # pragma: no cover - audited data
            raise ValueError("188Re cycles per patient do not add up to the per-cycle table")
        return cls(
            n=n,
            line_counts=line_counts,
            worst_counts=worst,
            any_printed=any_printed,
            phase_activity=act,
            phase_prior=prior,
            re_activity=np.array(re_act),
            re_prior_lu=np.array(re_prior),
            re_cycle=np.array(re_cyc),
            re_patient=np.array(re_pat),
            re_counts=re_counts,
        )


# ----------------------------------------------------------------------------------------------
# numpy helpers (prediction / simulation; no PyMC)
# ----------------------------------------------------------------------------------------------
def _cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal distribution function (the probit link's F)."""
    return ndtr(x)


def _cutpoints_np(c3: np.ndarray, log_gap: np.ndarray) -> np.ndarray:
    """(..., L) c3 and (..., L, 3) log gaps -> (..., L, 4) cutpoints."""
    g = np.exp(log_gap)
    c2 = c3 - g[..., 1]
    c1 = c2 - g[..., 0]
    return np.stack([c1, c2, c3, c3 + g[..., 2]], axis=-1)


def _eta_np(activity: Any, prior: Any, beta_a: Any, beta_p: Any, delta: Any) -> np.ndarray:
    return (
        beta_a * (np.asarray(activity) - A_REF_GBQ) / DOSE_SCALE_GBQ
        + beta_p * np.asarray(prior) / DOSE_SCALE_GBQ
        + delta
    )


def _sample_grades(
    eta: np.ndarray, cut: np.ndarray, u: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Grades for latent eta (...,) + u (...,) with cutpoints (..., 4) via the latent variable."""
    y = eta + u + rng.normal(size=np.shape(eta + u))
    return (y[..., None] > cut).sum(-1)


# ----------------------------------------------------------------------------------------------
# the model
# ----------------------------------------------------------------------------------------------
class ToxicityModel:
    """Ordinal CTCAE model of grade III/IV cytopenia (see the module docstring).

    Parameters
    ----------
    user_data : pandas.DataFrame, optional
        The user's individually graded observations (:data:`USER_COLUMNS`); validated.
    priors : mapping, optional
        Overrides of :data:`DEFAULT_PRIORS`, e.g. ``{"theta": {"mu": 1.0, "sigma": 0.5}}``.
    data : ToxicityData, optional
        Aggregate data (default: the packaged published tables).
    any_weight : float
        Weight of the "any line" worst-grade term in the composite likelihood.
    n_nodes : int
        Quadrature nodes for the patient propensity.
    """

    def __init__(
        self,
        user_data: pd.DataFrame | None = None,
        priors: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        data: ToxicityData | None = None,
        any_weight: float = 1.0,
        n_nodes: int = 64,
    ) -> None:
        if not (0.0 <= any_weight <= 1.0):
            raise ValueError(f"any_weight={any_weight!r}; expected a number in [0, 1]")
        self.data = data if data is not None else ToxicityData.packaged()
        self.priors = _merge_priors(priors)
        self.any_weight = float(any_weight)
        self.n_nodes = int(n_nodes)
        self.user = None if user_data is None else validate_user_data(user_data)
        self.model: Any = None

    # -- building --------------------------------------------------------------------------------
    def build(
        self,
        user_data: pd.DataFrame | None = None,
        priors: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> Any:
        """Build (and keep) the PyMC model.

        Parameters
        ----------
        user_data : pandas.DataFrame, optional
            Replaces the user data given to the constructor.
        priors : mapping, optional
            Replaces the prior overrides given to the constructor.

        Returns
        -------
        pymc.Model
        """
        import pymc as pm
        import pytensor.tensor as pt

        if user_data is not None:
            self.user = validate_user_data(user_data)
        if priors is not None:
            self.priors = _merge_priors(priors)
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
        nodes = self.n_nodes
        with pm.Model(coords=coords) as model:
            c3 = _prior_rv(pm, "c3", P["c3"], dims="line")
            log_gap = _prior_rv(pm, "log_gap", P["log_gap"], dims=("line", "gap"))
            rv = {k: _prior_rv(pm, k, P[k]) for k in _SCALAR_PARAMS}
            gaps = pt.exp(log_gap)
            c1 = c3 - gaps[:, 1] - gaps[:, 0]
            cut = pm.Deterministic(
                "cutpoints",
                lik.ordered_cutpoints_from_increments(c1, pt.stack(
                    [log_gap[:, 0], log_gap[:, 1], log_gap[:, 2]], axis=-1)),
                dims=("line", "cut"),
            )  # fmt: skip
            b_a, b_p, sig = rv["beta_activity"], rv["beta_prior"], rv["sigma_u"]
            delta = pt.stack(
                [rv["delta_control"], pt.zeros(()), rv["delta_retreated"], rv["delta_retreated"]]
            )
            eta_ph = (
                b_a * (d.phase_activity - A_REF_GBQ) / DOSE_SCALE_GBQ
                + b_p * d.phase_prior / DOSE_SCALE_GBQ
                + delta
            )
            eta_pl = pt.shape_padright(eta_ph) * pt.ones((1, 3))  # (phase, line)
            # probit: integrating u ~ N(0, sigma_u^2) out of one line is exact rescaling
            scale = pt.sqrt(1.0 + sig**2)
            # counts as pm.Data: a compiled model can be re-used on simulated data (benchmark)
            line_counts = pm.Data("line_counts", d.line_counts)
            worst_counts = pm.Data("worst_counts", d.worst_counts)
            re_counts = pm.Data("re_counts", d.re_counts)
            ll_lines = lik.coarsened_counts_loglik(
                d.n[:, None], line_counts[..., 0], line_counts[..., 1], eta_pl / scale,
                cut / scale, LINK,
            )  # fmt: skip
            pm.Potential("ll_table6_lines", ll_lines.sum())
            logp_any = lik.any_line_probs(eta_pl, cut, sig, LINK, n_nodes=nodes, log=True)
            ll_a = lik.multinomial_loglik(worst_counts[0], logp_any)
            ll_b = lik.multinomial_loglik(worst_counts[1], logp_any)
            ll_any = pt.logsumexp(pt.stack([ll_a, ll_b]), axis=0) - math.log(2.0)
            pm.Potential("ll_table6_any", self.any_weight * ll_any.sum())
            # 188Re-HEDP cycles: marginal per-cycle probabilities, averaged over the 11 cycles
            theta = rv["theta"]
            re_eq = theta * d.re_activity
            eta_re = (
                b_a * (re_eq - A_REF_GBQ) / DOSE_SCALE_GBQ
                + b_p * (d.re_prior_lu + re_eq * d.re_cycle) / DOSE_SCALE_GBQ
                + rv["delta_re188"]
            )
            eta_re_l = pt.shape_padright(eta_re) * pt.ones((1, 3))
            lp_cyc = lik.ordinal_logprobs(eta_re_l / scale, cut / scale, LINK)  # (cycle, line, 5)
            lp_mean = pt.logsumexp(lp_cyc, axis=0) - math.log(len(d.re_activity))
            pm.Potential("ll_re188_cycles", lik.multinomial_loglik(re_counts, lp_mean).sum())
            if user is not None:
                d_user = _prior_rv(pm, "delta_user", P["delta_user"])
                z = pm.Normal("z_patient", 0.0, 1.0, dims="patient")
                pidx = pd.Categorical(user["patient"], categories=coords["patient"]).codes
                lidx = user["cell_line"].cat.codes.to_numpy()
                eta_u = (
                    b_a * (user["activity_gbq"].to_numpy() - A_REF_GBQ) / DOSE_SCALE_GBQ
                    + b_p * user["prior_gbq"].to_numpy() / DOSE_SCALE_GBQ
                    + d_user
                    + sig * z[pidx]
                )
                pm.Potential(
                    "ll_user",
                    lik.individual_grades_loglik(user["grade"].to_numpy(), eta_u, cut[lidx], LINK),
                )
        self.model = model
        return model

    def parameter_names(self) -> list[str]:
        """Free parameter names (the ones diagnosed and reported)."""
        names = ["c3", "log_gap", *_SCALAR_PARAMS]
        if self.user is not None:
            names += ["delta_user", "z_patient"]
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
    ) -> FitResult:
        """Sample the posterior with :func:`netbayes.fitting.sample` (nutpie by default).

        Returns
        -------
        FitResult
            Posterior (``xarray.DataTree``), diagnostics, divergences, compile and sampling
            seconds; ``fit.draws("beta_activity")`` gives plain arrays. A
            :class:`~netbayes.fitting.ConvergenceWarning` is emitted if the targets are missed.
        """
        if self.model is None:
            self.build()
        return sample(
            self.model,
            draws=draws,
            tune=tune,
            chains=chains,
            seed=seed,
            sampler=sampler,  # type: ignore[arg-type]
            progress=progress,
            var_names=self.parameter_names(),
        )

    # -- reporting -------------------------------------------------------------------------------
    def prior_table(self, fit: FitResult | None = None, *, seed: int = 1) -> pd.DataFrame:
        """Priors (and, given a fit, the posterior next to them).

        Returns
        -------
        pandas.DataFrame
            One row per scalar parameter: distribution, its arguments, meaning, rationale, prior
            mean/SD and 5/95% quantiles (by Monte Carlo, 20 000 draws); with ``fit`` also
            posterior mean/SD/5%/95% and ``sd_ratio`` = posterior SD / prior SD (near 1: the
            data do not inform the parameter; its posterior is its prior).
        """
        rng = np.random.default_rng(seed)
        rows = []
        names: list[tuple[str, str, tuple]] = []
        for i, line in enumerate(CELL_LINES):
            names.append((f"c3[{line}]", "c3", (i,)))
        for i, line in enumerate(CELL_LINES):
            for j, gap in enumerate(("c2-c1", "c3-c2", "c4-c3")):
                names.append((f"log_gap[{line},{gap}]", "log_gap", (i, j)))
        names += [(k, k, ()) for k in _SCALAR_PARAMS]
        if self.user is not None:
            names.append(("delta_user", "delta_user", ()))
        for label, key, idx in names:
            spec = self.priors[key]
            x = _prior_draws(spec, 20000, rng)
            row = {
                "parameter": label,
                "dist": spec["dist"],
                "args": ", ".join(f"{p}={spec[p]:.3g}" for p in _PRIOR_DISTS[spec["dist"]]),
                "meaning": spec["meaning"],
                "why": spec["why"],
                "prior_mean": x.mean(),
                "prior_sd": x.std(),
                "prior_q05": np.quantile(x, 0.05),
                "prior_q95": np.quantile(x, 0.95),
            }
            if fit is not None:
                y = fit.draws(key)[(slice(None), *idx)]
                row.update(
                    post_mean=y.mean(),
                    post_sd=y.std(),
                    post_q05=np.quantile(y, 0.05),
                    post_q95=np.quantile(y, 0.95),
                    sd_ratio=y.std() / x.std(),
                )
            rows.append(row)
        return pd.DataFrame(rows).set_index("parameter")

    @staticmethod
    def _params(fit: FitResult, max_draws: int | None, seed: int) -> dict[str, np.ndarray]:
        keys = ["c3", "log_gap", *_SCALAR_PARAMS]
        out = {k: fit.draws(k) for k in keys}
        n = len(out["theta"])
        if max_draws is not None and n > max_draws:
            idx = np.random.default_rng(seed).choice(n, max_draws, replace=False)
            out = {k: v[idx] for k, v in out.items()}
        out["cutpoints"] = _cutpoints_np(out["c3"], out["log_gap"])
        return out

    def ppc_table(
        self, fit: FitResult, *, max_draws: int = 2000, seed: int = 7, prob: float = 0.95
    ) -> pd.DataFrame:
        """Posterior predictive check of every Table 6 count and every 188Re per-cycle count.

        For each posterior draw, new patients are simulated *individually* (propensity
        :math:`u_i`, then a grade per line) and aggregated exactly as the papers do: per-line
        grade III and IV counts, the overlapping "any" grade III / grade IV counts as printed
        (F11), and for 188Re the per-cycle grade counts of 11 cycles of the 6 patients (cycles of
        one patient share :math:`u_i`).

        Returns
        -------
        pandas.DataFrame
            Columns ``source``, ``phase``, ``cell_line``, ``grade``, ``observed``, ``pred_mean``,
            ``lo``, ``hi`` (central ``prob`` predictive interval) and ``inside``.
        """
        th = self._params(fit, max_draws, seed)
        rng = np.random.default_rng(seed)
        d = self.data
        S = len(th["theta"])
        cut = th["cutpoints"]  # (S, 3, 4)
        rows = []
        lo_q, hi_q = (1 - prob) / 2, 1 - (1 - prob) / 2
        deltas = np.stack(
            [th["delta_control"], np.zeros(S), th["delta_retreated"], th["delta_retreated"]], 1
        )
        for p, ph in enumerate(PHASES):
            n = int(d.n[p])
            eta = _eta_np(
                d.phase_activity[p], d.phase_prior[p], th["beta_activity"], th["beta_prior"],
                deltas[:, p],
            )  # fmt: skip
            u = rng.normal(size=(S, n)) * th["sigma_u"][:, None]
            g = _sample_grades(
                (eta[:, None, None] * np.ones((1, n, 3))), cut[:, None], u[..., None], rng
            )  # (S, n, 3)
            sims = {}
            for li, line in enumerate(CELL_LINES):
                for gr in (3, 4):
                    sims[(line, gr)] = (g[..., li] == gr).sum(1)
            sims[("any", 3)] = (g == 3).any(-1).sum(1)
            sims[("any", 4)] = (g == 4).any(-1).sum(1)
            for (line, gr), sim in sims.items():
                obs = (
                    d.any_printed[p, gr - 3]
                    if line == "any"
                    else d.line_counts[p, CELL_LINES.index(line), gr - 3]
                )
                rows.append(("Rotterdam Table 6", ph, line, gr, obs, sim))
        # 188Re per-cycle
        pats = np.unique(d.re_patient)
        u_p = rng.normal(size=(S, len(pats))) * th["sigma_u"][:, None]
        u_c = u_p[:, np.searchsorted(pats, d.re_patient)]  # (S, cycles)
        re_eq = th["theta"][:, None] * d.re_activity
        eta = _eta_np(
            re_eq, d.re_prior_lu + re_eq * d.re_cycle, th["beta_activity"][:, None],
            th["beta_prior"][:, None], th["delta_re188"][:, None],
        )  # fmt: skip
        g = _sample_grades(
            eta[..., None] * np.ones(3), cut[:, None], u_c[..., None], rng
        )  # (S, cycles, 3)
        for li, line in enumerate(CELL_LINES):
            for gr in range(5):
                sim = (g[..., li] == gr).sum(1)
                rows.append(("188Re per cycle", "188Re-HEDP", line, gr, d.re_counts[li, gr], sim))
        out = []
        for src, ph, line, gr, obs, sim in rows:
            lo, hi = np.quantile(sim, [lo_q, hi_q])
            out.append(
                {
                    "source": src,
                    "phase": ph,
                    "cell_line": line,
                    "grade": gr,
                    "observed": int(obs),
                    "pred_mean": float(sim.mean()),
                    "lo": int(lo),
                    "hi": int(hi),
                    "inside": bool(lo <= obs <= hi),
                }
            )
        return pd.DataFrame(out)

    def risk_draws(
        self,
        fit: FitResult,
        planned_gbq: Sequence[float] | float,
        prior_gbq: Sequence[float] | float,
        *,
        selected: bool | None = None,
        max_draws: int | None = 2000,
        seed: int = 11,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior draws of the marginal risk of grade >= III for new patients.

        Parameters
        ----------
        fit : FitResult
        planned_gbq, prior_gbq : float or sequence of float
            177Lu-octreotate activity planned in the phase, and given before it (GBq >= 0);
            broadcast together.
        selected : bool, optional
            Apply the retreatment selection effect (:math:`\\delta_{retreated}`). Default: yes
            when ``prior_gbq > 0`` (a retreatment candidate who met the criteria for it).
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
        for name, v in (("planned_gbq", a), ("prior_gbq", p)):
            if not np.all(np.isfinite(v)) or np.any(v < 0):
                bad = float(v[~np.isfinite(v) | (v < 0)][0])
                raise ValueError(f"{name}={bad!r} is not allowed; expected an activity >= 0 GBq")
        sel = (p > 0) if selected is None else np.full(a.shape, bool(selected))
        th = self._params(fit, max_draws, seed)
        eta = _eta_np(
            a[None], p[None], th["beta_activity"][:, None], th["beta_prior"][:, None],
            th["delta_retreated"][:, None] * sel[None],
        )  # (S, P)  # fmt: skip
        x, w = lik.normal_quadrature(self.n_nodes)
        sig = th["sigma_u"]
        c3 = th["cutpoints"][:, :, 2]  # (S, 3)
        # per line, exact: P(G >= III) = 1 - Phi((c3 - eta) / sqrt(1 + sigma_u^2))
        per_line = _cdf(-(c3[:, None, :] - eta[:, :, None]) / np.sqrt(1.0 + sig**2)[:, None, None])
        # any line: 1 - E_u[prod_l Phi(c3_l - eta - u)] by quadrature
        u = sig[:, None, None, None] * x  # (S, 1, 1, K)
        f = _cdf(c3[:, None, :, None] - eta[:, :, None, None] - u)  # (S, P, 3, K)
        any_line = 1.0 - (np.prod(f, axis=2) * w).sum(-1)
        return per_line, any_line

    def risk_table(
        self,
        fit: FitResult,
        planned_gbq: Sequence[float] | float = (7.4, 14.8, 29.6),
        prior_gbq: Sequence[float] | float = 0.0,
        *,
        selected: bool | None = None,
        tumour_type: str | None = None,
        prior_pfs_months: float | None = None,
        prob: float = 0.9,
    ) -> pd.DataFrame:
        """P(grade >= III) per cell line and any line, with central ``prob`` bands.

        Parameters
        ----------
        fit : FitResult
        planned_gbq, prior_gbq : float or sequence of float
            Activities (GBq 177Lu-octreotate); every combination of the two is tabulated.
        selected : bool, optional
            See :meth:`risk_draws`.
        tumour_type, prior_pfs_months : optional
            The survival model's patient record fields; validated but *not used*: no published
            toxicity data inform them, so the model has no parameter for them.
        prob : float
            Band probability.

        Returns
        -------
        pandas.DataFrame
            Columns ``planned_gbq``, ``prior_gbq``, ``cell_line`` (the three lines and
            ``any``), ``mean``, ``lo``, ``hi``.
        """
        if tumour_type is not None and tumour_type not in vocab.PATIENT_TUMOUR_TYPES:
            raise ValueError(
                f"tumour_type={tumour_type!r} is not allowed; expected one of "
                f"{', '.join(vocab.PATIENT_TUMOUR_TYPES)}"
            )
        if prior_pfs_months is not None and not (prior_pfs_months > 0):
            raise ValueError(f"prior_pfs_months={prior_pfs_months!r}; expected a number > 0")
        A, Pr = np.meshgrid(
            np.atleast_1d(np.asarray(planned_gbq, float)),
            np.atleast_1d(np.asarray(prior_gbq, float)),
            indexing="ij",
        )
        a, p = A.ravel(), Pr.ravel()
        per_line, any_line = self.risk_draws(fit, a, p, selected=selected)
        q = ((1 - prob) / 2, 1 - (1 - prob) / 2)
        rows = []
        for j in range(len(a)):
            for name, x in (
                *((line, per_line[:, j, i]) for i, line in enumerate(CELL_LINES)),
                ("any", any_line[:, j]),
            ):
                lo, hi = np.quantile(x, q)
                rows.append(
                    {
                        "planned_gbq": a[j],
                        "prior_gbq": p[j],
                        "cell_line": name,
                        "mean": x.mean(),
                        "lo": lo,
                        "hi": hi,
                    }
                )
        return pd.DataFrame(rows)

    def plot_risk(
        self,
        fit: FitResult,
        path: str | None = None,
        *,
        planned_gbq: Sequence[float] | None = None,
        prior_gbq: Sequence[float] = (0.0, 29.9, 44.7),
        prob: float = 0.9,
    ) -> pd.DataFrame:
        """Plot P(grade >= III) against planned activity, one panel per line and any line.

        One curve (posterior mean) with a ``prob`` band per prior activity. Saves a PNG to
        ``path`` if given.

        Returns
        -------
        pandas.DataFrame
            The data behind the plot (:meth:`risk_table` on the grid).
        """
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        grid = np.linspace(0.0, 30.0, 31) if planned_gbq is None else np.asarray(planned_gbq)
        tab = self.risk_table(fit, grid, prior_gbq, prob=prob)
        panels = [*CELL_LINES, "any"]
        fig, axes = plt.subplots(1, 4, figsize=(15, 3.8), sharey=True)
        for ax, line in zip(axes, panels, strict=True):
            for pr in prior_gbq:
                t = tab[(tab["cell_line"] == line) & np.isclose(tab["prior_gbq"], pr)]
                lab = f"prior {pr:g} GBq" + (" (selected)" if pr > 0 else "")
                (h,) = ax.plot(t["planned_gbq"], 100 * t["mean"], label=lab)
                ax.fill_between(
                    t["planned_gbq"], 100 * t["lo"], 100 * t["hi"], color=h.get_color(), alpha=0.2
                )
            ax.set_title(f"{line}: P(grade ≥ III)")
            ax.set_xlabel("planned 177Lu activity in phase (GBq)")
            ax.grid(alpha=0.3)
        axes[0].set_ylabel(f"% of patients (mean, {int(prob * 100)}% band)")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        plt.close(fig)
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
    cut = _cutpoints_np(np.asarray(params["c3"]), np.asarray(params["log_gap"]))
    sig = float(params["sigma_u"])
    delta = np.array(
        [params["delta_control"], 0.0, params["delta_retreated"], params["delta_retreated"]]
    )
    line_counts = np.zeros((4, 3, 2))
    worst = np.zeros((4, 3))
    anyp = np.zeros((4, 2))
    for p in range(4):
        n = int(t.n[p])
        eta = _eta_np(
            t.phase_activity[p], t.phase_prior[p], params["beta_activity"], params["beta_prior"],
            delta[p],
        )  # fmt: skip
        u = rng.normal(0, sig, n)
        g = _sample_grades(np.full((n, 3), eta), cut, u[:, None], rng)
        for gr in (3, 4):
            line_counts[p, :, gr - 3] = (g == gr).sum(0)
            anyp[p, gr - 3] = (g == gr).any(1).sum()
        m = g.max(1)
        worst[p] = ((m <= 2).sum(), (m == 3).sum(), (m == 4).sum())
    pats = np.unique(t.re_patient)
    u_p = rng.normal(0, sig, len(pats))
    re_eq = params["theta"] * t.re_activity
    eta = _eta_np(
        re_eq, t.re_prior_lu + re_eq * t.re_cycle, params["beta_activity"],
        params["beta_prior"], params["delta_re188"],
    )  # fmt: skip
    g = _sample_grades(
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
                e = _eta_np(
                    act, prior, params["beta_activity"], params["beta_prior"],
                    params.get("delta_user", 0.0),
                )  # fmt: skip
                gr = _sample_grades(np.full(3, e), cut, np.full(3, u_i), rng)
                for li, line in enumerate(CELL_LINES):
                    rows.append((f"p{i}", c, line, int(gr[li]), act, prior))
                prior += act
        user = pd.DataFrame(rows, columns=list(USER_COLUMNS))
    return data, user


def draw_prior_params(
    rng: np.random.Generator, priors: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """One draw of every parameter from the (merged) priors, for simulation."""
    P = _merge_priors(priors)
    out: dict[str, Any] = {
        "c3": _prior_draws(P["c3"], 3, rng),
        "log_gap": _prior_draws(P["log_gap"], 9, rng).reshape(3, 3),
    }
    for k in (*_SCALAR_PARAMS, "delta_user"):
        out[k] = float(_prior_draws(P[k], 1, rng)[0])
    return out
