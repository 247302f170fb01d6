r"""Patient and cohort predictions from stored posteriors (NumPy, pandas and xarray only).

Importing this module imports neither PyMC, PyTensor, ArviZ nor nutpie: predictions are closed
forms evaluated on plain posterior draws (:mod:`netbayes.formulas.survival` and the toxicity
formulas), loaded from the posterior store (:mod:`netbayes.store`).

Quick start
-----------
>>> from netbayes.predict import Predictor
>>> pred = Predictor.load()                     # the shipped posteriors  # doctest: +SKIP
>>> p = pred.patient(tumour_type="midgut", prior_pfs_months=30, prior_gbq=29.9,
...                  planned_gbq=14.9, line="R-PRRT")                     # doctest: +SKIP
>>> p.summary            # tidy table: median PFS, P(PFS > t), P(grade >= III), 95% ETI
>>> p.curve              # S(t) with its credible band on the time grid
>>> p.draws              # the same quantities as raw posterior draws (xarray.Dataset)
>>> p.sentence()         # "median PFS after R-PRRT 14.2 months (95% ETI 11.0-17.9)"
>>> pred.summaries(df)   # many patients (a table): one row of summaries each  # doctest: +SKIP

A patient record
----------------
:data:`FIELDS` lists the fields. ``prior_gbq`` is the cumulative 177Lu-octreotate activity given
*before* the planned line, ``planned_gbq`` the activity planned in it (GBq of 188Re for
188Re-HEDP). The survival model's cumulative activity is their sum for a 177Lu line.

Inputs are validated field by field: a wrong type, unit, range or vocabulary raises a
``ValueError`` naming the field, the value and what is allowed. Inputs the published data do not
cover (prior PFS below the selection threshold of the line, activities outside the calibrated
ranges, PFS after 188Re-HEDP) give an :class:`ExtrapolationWarning`: the prediction
extrapolates the model beyond its data. Outputs are checked to be finite.

Tumour types
------------
A fine type of :data:`netbayes.vocab.TUMOUR_TYPES` uses its fitted effect; the coarse
``gi_non_pancreatic`` is a mixture over foregut/midgut/hindgut with the Rotterdam mix as weights.
Any other label is refused unless ``new_type="population"``: the patient's type effect is then
a new draw from the population distribution, :math:`N(0, \sigma^2)`, per posterior draw.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, cached_property
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy.special import ndtr

from netbayes import calibration, spec, vocab
from netbayes.calibration import calibrated_ranges, check_calibration
from netbayes.families import DEFAULT_FAMILY, get_family
from netbayes.families.weibull import WeibullFamily
from netbayes.formulas import survival as F
from netbayes.formulas import toxicity as T
from netbayes.intervals import Interval, _show, as_interval

if TYPE_CHECKING:  # pragma: no cover
    import xarray as xr

    from netbayes.fitting import FitResult
    from netbayes.store import StoredPosterior

__all__ = [
    "DEFAULT_TIMES",
    "FIELDS",
    "LIMITS",
    "MIN_PRIOR_PFS_MONTHS",
    "CohortPrediction",
    "ExtrapolationWarning",
    "Prediction",
    "Predictor",
    "calibrated_ranges",
    "default_activities",
    "predict",
    "validate_patient",
]


class ExtrapolationWarning(UserWarning):
    """The inputs lie outside what the calibration data cover: the prediction extrapolates."""


MIN_PRIOR_PFS_MONTHS = 1.0 / 30.4
"""The smallest plausible prior PFS: one day (30.4 days a month). Anything shorter is an input
error (most likely a wrong unit), and the formulas cannot represent a PFS near zero."""

FIELDS: dict[str, str] = {
    "tumour_type": f"tumour type, one of {', '.join(vocab.PATIENT_TUMOUR_TYPES)} "
    "(others only with new_type='population')",
    "prior_pfs_months": "PFS after the previous line, months (at least one day, "
    f"{MIN_PRIOR_PFS_MONTHS:.3g}); required for R-PRRT and RR-PRRT, optional for 188Re-HEDP "
    "(default: the 36-month reference), ignored for I-PRRT",
    "prior_gbq": "cumulative 177Lu-octreotate activity before the planned line, GBq (>= 0; 0 for "
    "I-PRRT, > 0 for R-PRRT and RR-PRRT)",
    "planned_gbq": "activity planned in the line, GBq (> 0; 188Re activity for 188Re-HEDP)",
    "line": f"treatment line, one of {', '.join(vocab.LINES)}",
}
"""The fields of a patient record and what each accepts."""

LIMITS: dict[str, tuple[float, float]] = {
    "prior_pfs_months": (MIN_PRIOR_PFS_MONTHS, 600.0),
    "prior_gbq": (0.0, 200.0),
    "planned_gbq": (0.0, 60.0),
}
"""Plausibility limits, inclusive except the lower limit of the planned activity (> 0): outside
is an input error, most likely a wrong unit (days or years instead of months, MBq or mCi instead
of GBq)."""

_STRICT_LOWER = frozenset({"planned_gbq"})
"""Fields whose lower limit is excluded (see :data:`LIMITS`)."""

_UNIT_HINT = {
    "prior_pfs_months": "months (not days or years)",
    "prior_gbq": "GBq (1 GBq = 1000 MBq = 27 mCi)",
    "planned_gbq": "GBq (1 GBq = 1000 MBq = 27 mCi)",
}

DEFAULT_TIMES = np.arange(0.0, 61.0, 1.0)
"""Default time grid of the survival curve: 0 to 60 months, monthly."""
DEFAULT_T_PROBS = (12.0, 24.0)
"""Default times t of P(PFS > t), months."""

_LINES_CI = {ln.lower(): ln for ln in vocab.LINES}


# ----------------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Patient:
    tumour_type: str
    line: str
    prior_pfs_months: float | None
    prior_gbq: float
    planned_gbq: float
    new_type: bool
    extrapolation: tuple[str, ...]
    extrapolation_kinds: tuple[str, ...] = ()


def _bad(name: str, value: Any, allowed: str) -> ValueError:
    if isinstance(value, np.generic):
        value = value.item()
    return ValueError(f"{name}={_show(value)} is not allowed; expected {allowed}")


def _number(name: str, value: Any, *, optional: bool = False) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if optional:
            return None
        raise _bad(name, value, f"a number: {FIELDS[name]}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise _bad(name, value, f"a number, not {type(value).__name__}: {FIELDS[name]}")
    lo, hi = LIMITS[name]
    strict_lo = name in _STRICT_LOWER
    try:
        x = float(value)
    except OverflowError:  # an integer beyond the float range
        x = math.inf
    if not math.isfinite(x) or x > hi or (x <= lo if strict_lo else x < lo):
        low = f"{'>' if strict_lo else '>='} {lo:.3g}"
        if name == "prior_pfs_months":
            low += " (one day)"
        raise _bad(name, value, f"a finite number {low} and <= {hi:g}, in {_UNIT_HINT[name]}")
    return x


def _check_seed(seed: Any) -> int | None:
    """A seed of :func:`numpy.random.default_rng`: None or an integer >= 0."""
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise _bad("seed", seed, "an integer >= 0 or None")
    return int(seed)


def validate_patient(
    *,
    tumour_type: Any,
    line: Any,
    planned_gbq: Any,
    prior_gbq: Any = 0.0,
    prior_pfs_months: Any = None,
    new_type: Literal["error", "population"] = "error",
    endpoint: str = "pfs",
    ranges: Mapping[str, Any] | None = None,
) -> _Patient:
    """Validate one patient record; return it typed, with its extrapolation notes.

    Parameters
    ----------
    tumour_type, line, planned_gbq, prior_gbq, prior_pfs_months
        See :data:`FIELDS`.
    new_type : {"error", "population"}
        What to do with a tumour type outside the vocabulary (see the module docstring).
    endpoint : {"pfs", "os"}
        The survival endpoint predicted (PFS after 188Re-HEDP is an extrapolation).
    ranges : mapping, optional
        The calibrated ranges (default :func:`calibrated_ranges`).

    Returns
    -------
    _Patient
        Typed fields; ``extrapolation`` lists why the prediction extrapolates (empty if not).

    Raises
    ------
    ValueError
        Naming the field, the value and what is allowed.
    """
    if new_type not in ("error", "population"):
        raise _bad("new_type", new_type, "'error' or 'population'")
    if not isinstance(line, str) or line.strip().lower() not in _LINES_CI:
        raise _bad("line", line, f"one of {', '.join(vocab.LINES)}")
    ln = _LINES_CI[line.strip().lower()]
    if not isinstance(tumour_type, str) or not tumour_type.strip():
        raise _bad("tumour_type", tumour_type, f"a string: {FIELDS['tumour_type']}")
    tt = tumour_type.strip().lower()
    is_new = tt not in vocab.PATIENT_TUMOUR_TYPES
    if is_new and new_type == "error":
        raise _bad(
            "tumour_type",
            tumour_type,
            f"one of {', '.join(vocab.PATIENT_TUMOUR_TYPES)}; for a type the model has not seen, "
            "pass new_type='population' (its effect is drawn from the population distribution)",
        )
    x = _number("prior_pfs_months", prior_pfs_months, optional=True)
    pg = _number("prior_gbq", prior_gbq)
    pl = _number("planned_gbq", planned_gbq)
    assert pg is not None and pl is not None
    if ln == "I-PRRT" and pg > 0:
        raise _bad(
            "prior_gbq",
            prior_gbq,
            "0 for I-PRRT (the initial course); a patient with earlier PRRT is on line R-PRRT or "
            "RR-PRRT",
        )
    if ln in ("R-PRRT", "RR-PRRT"):
        if pg == 0:
            raise _bad("prior_gbq", prior_gbq, f"> 0 GBq for {ln} (a retreatment follows PRRT)")
        if x is None:
            raise _bad(
                "prior_pfs_months",
                prior_pfs_months,
                f"a number of months >= {MIN_PRIOR_PFS_MONTHS:.3g} (one day; required for {ln})",
            )
    rng = calibrated_ranges() if ranges is None else ranges
    notes: list[str] = []
    kinds: list[str] = []  # one key per note, for aggregated warnings
    thr = rng["prior_pfs_min"].get(ln)
    if thr is not None and x is not None and x < thr:
        kinds.append(f"prior_pfs_below_threshold:{ln}")
        notes.append(
            f"prior_pfs_months={x:g} is below the {thr:g}-month selection threshold for {ln}: "
            "the calibration cohort had no such patients"
        )
    lo, hi = rng["planned_gbq"][ln]
    if not (lo <= pl <= hi):
        kinds.append(f"planned_gbq_outside_range:{ln}")
        notes.append(
            f"planned_gbq={pl:g} is outside the calibrated {ln} activity range {lo:g}-{hi:g} GBq"
        )
    if ln in ("R-PRRT", "RR-PRRT"):
        clo, chi = rng["cumulative_gbq"]
        cum = pg + pl
        if not (clo <= cum <= chi):
            kinds.append(f"cumulative_gbq_outside_range:{ln}")
            notes.append(
                f"cumulative 177Lu activity prior_gbq + planned_gbq = {cum:g} GBq is outside "
                f"the calibrated range {clo:g}-{chi:g} GBq"
            )
    if ln == "188Re-HEDP":
        rlo, rhi = rng["re188_prior_gbq"]
        if not (rlo <= pg <= rhi):
            kinds.append(f"re188_prior_gbq_outside_range:{ln}")
            notes.append(
                f"prior_gbq={pg:g} is outside the 188Re-HEDP pilot's prior 177Lu range "
                f"{rlo:g}-{rhi:g} GBq"
            )
        if endpoint == "pfs":
            kinds.append(f"re188_pfs_no_data:{ln}")
            notes.append(
                "no PFS data inform 188Re-HEDP (the pilot reports OS only): its PFS line effect "
                "is its prior"
            )
    if is_new:
        kinds.append("new_tumour_type")
        notes.append(
            f"tumour_type={tumour_type!r} is not a calibrated type: its effect is drawn from the "
            "population distribution"
        )
    return _Patient(
        tumour_type=tt if not is_new else tumour_type.strip(),
        line=ln,
        prior_pfs_months=None if ln == "I-PRRT" else x,
        prior_gbq=pg,
        planned_gbq=pl,
        new_type=is_new,
        extrapolation=tuple(notes),
        extrapolation_kinds=tuple(kinds),
    )


def _ranges_from_json(cal: Mapping[str, Any]) -> dict[str, Any]:
    """A model card's ``calibration`` entry, checked, with its pairs back as tuples.

    Raises
    ------
    ValueError
        The entry lacks a range prediction needs or holds a malformed one.
    """
    check_calibration(cal)
    out = dict(cal)
    out["planned_gbq"] = {k: tuple(v) for k, v in cal["planned_gbq"].items()}
    for k in ("cumulative_gbq", "re188_prior_gbq"):
        out[k] = tuple(cal[k])
    return out


def _tumour_weights(p: _Patient, ranges: Mapping[str, Any]) -> np.ndarray | None:
    """Weights over the fine types (None for a new type)."""
    if p.new_type:
        return None
    w = np.zeros(len(vocab.TUMOUR_TYPES))
    if p.tumour_type in vocab.TUMOUR_TYPES:
        w[vocab.TUMOUR_TYPES.index(p.tumour_type)] = 1.0
    else:
        for m, v in ranges["type_weights"][p.tumour_type].items():
            w[vocab.TUMOUR_TYPES.index(m)] = v
    return w


def _check_frame(df: Any) -> None:
    """Refuse a patient table that is not a DataFrame, lacks or has unknown columns, is empty
    or has a non-unique index (the index labels the patients)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    required = ["tumour_type", "line", "planned_gbq"]
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"df is missing column(s) {missing}; required {required}, optional prior_gbq, "
            "prior_pfs_months (see netbayes.predict.FIELDS)"
        )
    unknown = sorted(set(df.columns) - set(FIELDS))
    if unknown:
        raise ValueError(f"df has unknown column(s) {unknown}; allowed: {list(FIELDS)}")
    if len(df) == 0:
        raise ValueError("df has no rows; expected at least one patient")
    if not df.index.is_unique:
        raise ValueError("df's index labels the patients and must be unique")


def _missing(v: Any) -> bool:
    """A missing table cell: None, NaN, pd.NA or NaT (not a string or a container)."""
    if v is None:
        return True
    if isinstance(v, float):  # also numpy.float64
        return math.isnan(v)
    if isinstance(v, (int, str)):
        return False
    return bool(pd.api.types.is_scalar(v) and pd.isna(v))


def _normalise_record(rec: dict[str, Any]) -> dict[str, Any]:
    """One table row as :func:`validate_patient` keywords: a missing cell (None, NaN, pd.NA,
    NaT) of a number field becomes NaN, refused or defaulted as in :meth:`Predictor.patient`
    (a missing ``prior_gbq`` is 0 except on a retreatment line); a list or other container is
    left for validation to refuse by name."""
    for k in ("prior_gbq", "prior_pfs_months", "planned_gbq"):
        if k in rec and _missing(rec[k]):
            rec[k] = math.nan
    line = rec.get("line")
    retreatment = isinstance(line, str) and _LINES_CI.get(line.strip().lower()) in (
        "R-PRRT",
        "RR-PRRT",
    )
    pg = rec.get("prior_gbq", math.nan)
    if isinstance(pg, float) and math.isnan(pg) and not retreatment:
        rec["prior_gbq"] = 0.0  # not given: the default of `patient`
    return rec


def _check_times(name: str, t: Any) -> np.ndarray:
    if isinstance(t, (str, bytes)):
        raise _bad(name, t, "a sequence of times in months (>= 0), not a string")
    try:
        a = np.atleast_1d(np.asarray(t, dtype=float))
    except (TypeError, ValueError):
        raise _bad(name, t, "a sequence of times in months (>= 0)") from None
    if a.ndim != 1 or a.size == 0 or not np.all(np.isfinite(a)) or np.any(a < 0):
        raise _bad(name, t, "a non-empty sequence of finite times in months (>= 0)")
    return np.unique(a)


def _finite(name: str, a: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(a)):
        raise ValueError(
            f"the prediction of {name} is not finite for some posterior draws; the posterior or "
            "the inputs are outside what the formulas can represent (please report this)"
        )
    return a


def _describe(interval: Interval, draws: np.ndarray) -> dict[str, float]:
    return {k: float(v) for k, v in interval.describe(np.asarray(draws, float)).items()}


# ----------------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """One predicted quantity of one patient: posterior median, mean and interval.

    Attributes
    ----------
    quantity : str
        What it is (``median_pfs``, ``p_pfs_gt``, ``p_grade3plus``, ...).
    median, mean, lower, upper : float
        Posterior median and mean, and the interval bounds.
    interval : netbayes.intervals.Interval
        The interval convention of ``lower`` and ``upper``.
    unit : str
        ``"months"`` or ``"probability"``.
    """

    quantity: str
    median: float
    mean: float
    lower: float
    upper: float
    interval: Interval
    unit: str

    def to_dict(self) -> dict[str, float]:
        """``median``, ``mean`` and the bounds under the interval's column names."""
        lo, hi = self.interval.columns
        return {"median": self.median, "mean": self.mean, lo: self.lower, hi: self.upper}


@dataclass
class Prediction:
    """Posterior predictions for one or more patients: summaries and raw draws of one call.

    Attributes
    ----------
    patients : pandas.DataFrame
        The validated inputs, one row per patient (index = patient label), plus
        ``extrapolation`` (why the prediction extrapolates; empty if it does not).
    summary : pandas.DataFrame
        Tidy table, one row per patient and quantity: ``patient``, ``quantity``
        (``median_pfs``, ``p_pfs_gt``, ``p_grade3plus``; ``os`` instead of ``pfs`` for OS),
        ``t_months`` (for ``p_*_gt``), ``cell_line`` (for ``p_grade3plus``: the three cell lines
        and ``any``), ``unit``, posterior ``median`` and ``mean``, and the interval bounds named
        by the interval (``eti95_lower``, ``eti95_upper`` by default).
    curve : pandas.DataFrame
        :math:`S(t)` on the time grid: ``patient``, ``t_months``, ``median``, ``mean`` and the
        interval bounds.
    interval : netbayes.intervals.Interval
        The interval convention of the columns.
    endpoint : str
        ``"pfs"`` or ``"os"``.
    arrays : dict of str to numpy.ndarray
        The draws behind the tables (see :attr:`draws`).
    """

    patients: pd.DataFrame
    summary: pd.DataFrame
    curve: pd.DataFrame
    interval: Interval
    endpoint: str
    arrays: dict[str, np.ndarray] = field(repr=False)
    coords: dict[str, Any] = field(repr=False)

    @cached_property
    def draws(self) -> xr.Dataset:
        """The raw posterior draws as an ``xarray.Dataset``.

        Variables: ``survival`` (patient, draw, t_months), ``median_<endpoint>_months``
        (patient, draw), ``p_<endpoint>_gt`` (patient, draw, t_prob) and, with a toxicity
        posterior, ``p_grade3plus`` (patient, tox_draw, cell_line). The survival and toxicity
        posteriors are separate fits, hence separate draw dimensions.
        """
        import xarray as xr

        e = self.endpoint
        dims = {
            "survival": ("patient", "draw", "t_months"),
            f"median_{e}_months": ("patient", "draw"),
            f"p_{e}_gt": ("patient", "draw", "t_prob"),
            "p_grade3plus": ("patient", "tox_draw", "cell_line"),
        }
        return xr.Dataset(
            {k: (dims[k], v) for k, v in self.arrays.items()},
            coords={k: v for k, v in self.coords.items() if k in _used_dims(dims, self.arrays)},
            attrs={"endpoint": e, "interval": self.interval.text},
        )

    def _patient_id(self, patient: Any) -> Any:
        pid = self.patients.index[0] if patient is None else patient
        if pid not in self.patients.index:
            raise KeyError(f"patient {pid!r} not found; patients: {list(self.patients.index)}")
        return pid

    def _estimates(self, quantity: str, patient: Any) -> pd.DataFrame:
        s = self.summary
        return s[(s["patient"] == self._patient_id(patient)) & (s["quantity"] == quantity)]

    def _estimate(self, row: pd.Series) -> Estimate:
        lo, hi = self.interval.columns
        return Estimate(
            str(row["quantity"]),
            float(row["median"]),
            float(row["mean"]),
            float(row[lo]),
            float(row[hi]),
            self.interval,
            str(row["unit"]),
        )

    def median(self, patient: Any = None) -> Estimate:
        """The median PFS (or OS) in months of ``patient`` (default: the first patient)."""
        return self._estimate(self._estimates(f"median_{self.endpoint}", patient).iloc[0])

    def event_free_times(self, patient: Any = None) -> tuple[float, ...]:
        """The times (months) at which :meth:`p_event_free` was predicted."""
        rows = self._estimates(f"p_{self.endpoint}_gt", patient)
        return tuple(float(t) for t in rows["t_months"])

    def p_event_free(self, t: float, patient: Any = None) -> Estimate:
        """P(PFS > t) (or OS > t) of ``patient`` at a predicted time ``t`` (months).

        Raises
        ------
        KeyError
            If ``t`` is not one of :meth:`event_free_times` (ask for it with ``times=``).
        """
        rows = self._estimates(f"p_{self.endpoint}_gt", patient)
        hit = rows[np.isclose(rows["t_months"].to_numpy(float), float(t))]
        if hit.empty:
            raise KeyError(
                f"t={t!r} was not predicted; predicted times: "
                f"{', '.join(f'{x:g}' for x in rows['t_months'])} (pass times=[...])"
            )
        return self._estimate(hit.iloc[0])

    def cell_lines(self, patient: Any = None) -> tuple[str, ...]:
        """The cell lines with a grade >= III risk (empty without a toxicity posterior)."""
        return tuple(str(c) for c in self._estimates("p_grade3plus", patient)["cell_line"])

    def p_grade3plus(self, cell_line: str = "any", patient: Any = None) -> Estimate:
        """P(grade >= III) of ``cell_line`` (``"any"``: any of the three) for ``patient``.

        Raises
        ------
        ValueError
            If the prediction has no toxicity posterior, or ``cell_line`` is not a cell line.
        """
        rows = self._estimates("p_grade3plus", patient)
        if rows.empty:
            raise ValueError("this prediction has no toxicity posterior (no grade >= III risks)")
        hit = rows[rows["cell_line"].astype(str) == cell_line]
        if hit.empty:
            raise ValueError(
                f"cell_line={cell_line!r} is not allowed; expected one of "
                f"{', '.join(map(str, rows['cell_line']))}"
            )
        return self._estimate(hit.iloc[0])

    def sentence(self, patient: Any = None, digits: int = 1) -> str:
        """A results sentence for the median, e.g. ``"median PFS after R-PRRT 14.2 months
        (95% ETI 11.0-17.9)"``.

        Parameters
        ----------
        patient : label, optional
            Patient label (default: the first patient).
        digits : int
            Decimals.
        """
        pid = self._patient_id(patient)
        med = self.median(pid)
        line = self.patients.loc[pid, "line"]
        what = f"median {self.endpoint.upper()} after {line}"
        return self.interval.sentence(
            what, med.median, med.lower, med.upper, unit="months", digits=digits
        )

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain JSON-compatible data (the ``netbayes predict --json`` layout)."""
        out: dict[str, Any] = {
            "endpoint": self.endpoint,
            "interval": {"kind": self.interval.kind, "prob": self.interval.prob},
            "patients": [],
        }
        for pid, prow in self.patients.iterrows():
            out["patients"].append(
                {
                    "patient": pid if isinstance(pid, (int, str)) else str(pid),
                    "input": {
                        k: (None if pd.isna(prow[k]) else prow[k])
                        for k in ("tumour_type", "line", "prior_pfs_months", "prior_gbq")
                    }
                    | {"planned_gbq": float(prow["planned_gbq"])},
                    "extrapolation": list(prow["extrapolation_notes"]),
                    f"median_{self.endpoint}_months": self.median(pid).to_dict(),
                    f"p_{self.endpoint}_gt": [
                        {"t_months": t, **self.p_event_free(t, pid).to_dict()}
                        for t in self.event_free_times(pid)
                    ],
                    "p_grade3plus": (
                        {c: self.p_grade3plus(c, pid).to_dict() for c in self.cell_lines(pid)}
                        or None
                    ),
                }
            )
        return out


def _used_dims(dims: Mapping[str, tuple[str, ...]], arrays: Mapping[str, Any]) -> set[str]:
    return {d for k in arrays for d in dims[k]}


@dataclass
class CohortPrediction:
    """Predicted Kaplan-Meier median of a cohort of n patients, with its predictive interval.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row: ``line``, ``n``, ``quantity`` (``km_median_<endpoint>``), ``unit``, ``median``,
        ``mean`` and the interval bounds (a *predictive* interval: posterior uncertainty plus
        the sampling variation of a cohort of n).
    km_medians : numpy.ndarray
        The simulated cohorts' KM medians, one per posterior draw used.
    type_counts : dict of str to int
        Patients per fine tumour type (or new type) in the simulated cohort.
    interval : netbayes.intervals.Interval
    """

    summary: pd.DataFrame
    km_medians: np.ndarray
    type_counts: dict[str, int]
    interval: Interval

    def sentence(self, digits: int = 1) -> str:
        """E.g. ``"predicted KM median PFS of 168 patients after R-PRRT 14.0 months (95% ETI
        11.1-17.2)"``."""
        r = self.summary.iloc[0]
        lo, hi = self.interval.columns
        what = (
            f"predicted KM median {r['quantity'].split('_')[-1].upper()} of {r['n']} patients "
            f"after {r['line']}"
        )
        return self.interval.sentence(what, r["median"], r[lo], r[hi], "months", digits)


# ----------------------------------------------------------------------------------------------
# batch summaries (Predictor.summaries)
# ----------------------------------------------------------------------------------------------
DEFAULT_CHUNK_SIZE = 64
"""Distinct patients evaluated together by :meth:`Predictor.summaries`."""
_NEW_TYPE_BASE = 1000  # type numbers of new tumour types in a batch (fine < 6 <= coarse < 1000)
_NEWTON_TOL = 1e-11
_ANY_LINE_TOLERANCE = 1e-7  # the any-line table must be at least this accurate
_NEWTON_MAX_ITER = 100


@dataclass
class _Batch:
    """A validated patient table as arrays (see :meth:`Predictor._validate_batch`)."""

    line: np.ndarray  # index into vocab.LINES
    type: np.ndarray  # fine index, 6 + coarse index, or _NEW_TYPE_BASE + new-label index
    lx: np.ndarray  # log(prior PFS / X_REF), 0 for the first line
    gq: np.ndarray  # (cumulative GBq - GBQ_REF) / GBQ_UNIT, 0 for the first line
    planned: np.ndarray
    prior: np.ndarray
    new_labels: list[str]
    coarse: list[str]
    notes: list[str]


def _time_label(t: float) -> str:
    """A time in a column name: the shortest decimal that round-trips (12.0 -> "12")."""
    return np.format_float_positional(float(t), trim="-")


def _summarise(iv: Interval, draws: np.ndarray, what: Sequence[str]) -> np.ndarray:
    """Posterior median, mean and interval bounds over the last axis, as ``Interval.describe``.

    Parameters
    ----------
    iv : Interval
    draws : numpy.ndarray, shape (P, Q, S)
        Quantity ``q`` of patient ``p`` per draw; reordered in place (partitioned).
    what : sequence of str
        Names of the Q quantities for the error on non-finite draws.

    Returns
    -------
    numpy.ndarray, shape (P, Q, 4)
        Median, mean, lower and upper bound. An equal-tailed interval combines the order
        statistics ``numpy.median`` and ``numpy.quantile`` use with their arithmetic (the
        order statistics by :func:`_order_statistics`); an HDI is :meth:`Interval.describe`'s.
    """
    P, Q, S = draws.shape
    x = draws.reshape(P * Q, S)
    mean = x.mean(axis=1)
    by_quantity = mean.reshape(P, Q)
    for q in range(Q):  # a non-finite draw makes the mean non-finite
        _finite(what[q], by_quantity[:, q])
    if iv.kind != "eti":
        d = iv.describe(x, axis=1)
        lo, hi = iv.columns
        res = np.stack([d["median"], mean, d[lo], d[hi]], axis=-1)
        return res.reshape(P, Q, 4)
    # numpy.quantile's "linear" method: virtual index (n - 1) q, lerp of its two neighbours
    q = np.asarray(((1.0 - iv.prob) / 2.0, (1.0 + iv.prob) / 2.0))
    virtual = (S - 1) * q
    below = np.floor(virtual).astype(np.intp)
    above = np.minimum(below + 1, S - 1)
    gamma = virtual - below
    half = S // 2
    mid = [half - 1, half] if S % 2 == 0 else [half]
    kth = np.unique(np.concatenate([mid, below, above]))
    stats = np.empty((P, Q, len(kth)))
    for j in range(Q):
        stats[:, j] = _order_statistics(draws[:, j], kth)
    order = stats.reshape(P * Q, len(kth))
    pos = {int(k): i for i, k in enumerate(kth)}
    res = np.empty((P * Q, 4))
    if S % 2 == 0:  # numpy.median: the mean of the two central order statistics
        np.add(order[:, pos[half - 1]], order[:, pos[half]], out=res[:, 0])
        res[:, 0] /= 2.0
    else:
        res[:, 0] = order[:, pos[half]]
    res[:, 1] = mean
    for i in range(2):
        a, b, g = order[:, pos[int(below[i])]], order[:, pos[int(above[i])]], gamma[i]
        diff = b - a
        res[:, 2 + i] = b - diff * (1.0 - g) if g >= 0.5 else a + diff * g
    return res.reshape(P, Q, 4)


_CLUSTER_GAP = 8  # ranks this close share one candidate bracket
_CANDIDATE_SHARE = 0.6  # above this share of the draws, partition whole rows


def _order_statistics(x: np.ndarray, kth: np.ndarray) -> np.ndarray:
    """Exact order statistics ``kth`` (sorted ranks) of each row of ``x``, shape (P, S)
    (rows may be strided; ``x`` may be reordered in place).

    Rows of one chunk are similar patients, so most draws can be placed below or above a
    rank for every row at once: with :math:`l_s = \\min_p x_{ps}` and :math:`u_s = \\max_p
    x_{ps}`, the r-th order statistic of every row lies in :math:`[L, U]`, L the r-th smallest
    :math:`l_s` and U the r-th smallest :math:`u_s` (order statistics are monotone in the
    values). Draws with :math:`u_s < L` are below it in every row and draws with
    :math:`l_s > U` above, so it is the (r - #below)-th order statistic of the remaining
    columns, which alone are partitioned (whole rows when they are most of them).
    Non-negative values are partitioned as their IEEE bit patterns, which order the same
    and compare faster.
    """
    P, S = x.shape
    lo, hi = x.min(axis=0), x.max(axis=0)
    clusters: list[list[int]] = []
    for r in kth.tolist():
        if clusters and r - clusters[-1][-1] <= _CLUSTER_GAP:
            clusters[-1].append(r)
        else:
            clusters.append([r])
    keep = np.zeros(S, dtype=bool)
    below = []
    lo_sorted = np.partition(lo, [c[0] for c in clusters])
    hi_sorted = np.partition(hi, [c[-1] for c in clusters])
    for c in clusters:
        under = hi < lo_sorted[c[0]]  # below rank c[0] in every row
        keep |= ~(under | (lo > hi_sorted[c[-1]]))
        below.append(under)
    cols = np.flatnonzero(keep)
    if P == 1 or len(cols) > _CANDIDATE_SHARE * S:
        sub, ranks = x, kth  # partitioned in place
    else:
        sub = x[:, cols]
        ranks = np.array(
            [
                r - int(np.count_nonzero(u & ~keep))
                for c, u in zip(clusters, below, strict=True)
                for r in c
            ]
        )
    bits = sub.view(np.int64)
    if np.any(bits < 0):  # a negative number (or -0.0): select on the floats
        sub.partition(ranks, axis=1)
        return sub[:, ranks]
    bits.partition(ranks, axis=1)  # non-negative floats order as their bit patterns
    return bits[:, ranks].view(np.float64)


def _units(keys: np.ndarray, n_group: int) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``keys`` and each row's unit, ordered by group (the first
    ``n_group`` columns) and, within a group, along a Z-order curve of the last two columns
    (the continuous covariates), so that a chunk of consecutive units holds similar patients
    (see :func:`_order_statistics`)."""
    units, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    code = np.zeros(len(units), dtype=np.int64)
    groups = units[:, :n_group]
    for a, z in _runs(groups):
        for j, col in enumerate((units[a:z, -2], units[a:z, -1])):
            span = col.max() - col.min()
            q = np.zeros(z - a, dtype=np.int64)
            if span > 0:
                q = ((col - col.min()) / span * 1023.0).astype(np.int64)
            for bit in range(10):
                code[a:z] |= ((q >> bit) & 1) << (2 * bit + j)
    order = np.lexsort((code, *groups.T[::-1]))
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return units[order], rank[inverse]


def _runs(keys: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of equal rows of ``keys`` (sorted rows: the groups)."""
    change = np.any(keys[1:] != keys[:-1], axis=1)
    starts = np.flatnonzero(np.r_[True, change])
    return list(zip(starts.tolist(), [*starts[1:].tolist(), len(keys)], strict=True))


def _weibull_sf_into(t: float, k: np.ndarray, lam: np.ndarray, out: np.ndarray) -> np.ndarray:
    """:func:`netbayes.formulas.survival.weibull_sf`, :math:`\\exp(-(t/\\lambda)^k)` with the same
    operations, written into ``out`` (no temporaries)."""
    np.power(np.divide(t, lam, out=out), k, out=out)
    return np.exp(np.negative(out, out=out), out=out)


def _mixture_median(
    k: np.ndarray, loglam: Sequence[np.ndarray], w: np.ndarray, log2_root: np.ndarray
) -> np.ndarray:
    r"""Median of a Weibull mixture per patient and draw: the root of
    :math:`\sum_j w_j \exp(-e^{k(u - \log\lambda_j)}) = 1/2` in :math:`u = \log t`.

    Safeguarded Newton (a bisection step whenever Newton leaves the bracket of the component
    medians, which always holds the root; :math:`\log t` makes the function smooth and
    Newton's steps good), to the root :func:`netbayes.formulas.survival.mixture_median` finds
    by bisection: the iteration stops once a Newton step is below 1e-11 (relative), after
    which the error is of its square.

    Parameters
    ----------
    k : numpy.ndarray, shape (S,)
        Weibull shape per draw.
    loglam : sequence of numpy.ndarray, each (P, S)
        Log scale per component.
    w : numpy.ndarray, shape (J,)
        Component weights (> 0, sum 1).
    log2_root : numpy.ndarray, shape (S,)
        :math:`(\log 2)^{1/k}` (the component medians are :math:`\lambda_j (\log 2)^{1/k}`).

    Returns
    -------
    numpy.ndarray, shape (P, S)
    """
    log_root = np.log(log2_root)
    logmed = [L + log_root for L in loglam]  # log of the component medians
    shape = logmed[0].shape
    lo = np.minimum.reduce(logmed).ravel()
    hi = np.maximum.reduce(logmed).ravel()
    u = np.zeros(lo.size)
    for v, m in zip(w, logmed, strict=True):
        u += v * m.ravel()
    kk = np.ascontiguousarray(np.broadcast_to(k, shape)).ravel()
    comps = [np.ascontiguousarray(np.broadcast_to(x, shape)).ravel() for x in loglam]
    out = u.copy()
    pos = np.arange(u.size)  # where the working elements go in ``out``
    for _ in range(_NEWTON_MAX_ITER):
        f = np.full(u.size, -0.5)
        fp = np.zeros(u.size)
        for Lj, wj in zip(comps, w, strict=True):
            e = np.subtract(u, Lj)
            e *= kk
            np.exp(e, out=e)  # (t / lambda_j)^k
            sj = np.exp(-e)
            sj *= wj
            f += sj
            sj *= e
            fp -= sj
        fp *= kk  # d/du of S(e^u) - 1/2
        np.copyto(lo, u, where=f > 0)  # S > 1/2: the median is later
        np.copyto(hi, u, where=f < 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            new = u - f / fp
        outside = ~np.isfinite(new) | (new < lo) | (new > hi)
        np.copyto(new, 0.5 * (lo + hi), where=outside)
        np.copyto(new, u, where=f == 0)
        going = outside | (np.abs(new - u) > _NEWTON_TOL * (1.0 + np.abs(u)))
        u = new
        out[pos] = u
        n_going = int(np.count_nonzero(going))
        if n_going == 0:
            break
        if n_going < u.size // 2:  # work on the unconverged ones only
            u, lo, hi, kk, pos = u[going], lo[going], hi[going], kk[going], pos[going]
            comps = [Lj[going] for Lj in comps]
    return np.exp(out).reshape(shape)


# ----------------------------------------------------------------------------------------------
# the predictor
# ----------------------------------------------------------------------------------------------
def _datatree_draws(src: Any, what: str) -> dict[str, np.ndarray] | None:
    """Draws of an ``xarray.DataTree`` (its ``posterior`` group) or ``xarray.Dataset`` with
    ``chain`` and ``draw`` dimensions, chains stacked first; None for anything else. xarray is
    not imported here: an object of it means it is loaded already."""
    import sys

    xr = sys.modules.get("xarray")
    if xr is None or not isinstance(src, (xr.DataTree, xr.Dataset)):
        return None
    if isinstance(src, xr.DataTree):
        if "posterior" not in src.children:
            raise ValueError(
                f"the {what} DataTree has no 'posterior' group (groups: "
                f"{', '.join(src.children) or 'none'}); expected an ArviZ-style tree, e.g. "
                "arviz.from_netcdf(path) or fit.posterior"
            )
        src = src["posterior"].to_dataset()
    out = {}
    for v in src.data_vars:
        da = src[v]
        if "chain" not in da.dims or "draw" not in da.dims:
            raise ValueError(
                f"the {what} posterior variable {v!r} has dimensions {list(da.dims)}; expected "
                "'chain' and 'draw' among them"
            )
        a = da.transpose("chain", "draw", ...).to_numpy()
        out[str(v)] = a.reshape((-1, *a.shape[2:]))
    return out


def _as_draws(src: Any, needed: Sequence[str], what: str) -> dict[str, np.ndarray]:
    draws = _datatree_draws(src, what)
    if draws is None:
        if hasattr(src, "all_draws"):
            draws = src.all_draws()
        elif isinstance(src, Mapping):
            draws = dict(src)
        else:
            raise TypeError(
                f"the {what} posterior is a {type(src).__name__}; expected a StoredPosterior "
                "(netbayes.load_posterior), a FitResult, an xarray.DataTree with a 'posterior' "
                "group, or a mapping of variable names to draws"
            )
    missing = [v for v in needed if v not in draws]
    if missing:
        raise ValueError(
            f"the {what} posterior lacks variable(s) {missing} needed for prediction; "
            "run `netbayes fit` to regenerate the stored posteriors (a fit of your own: fit "
            f"the {what} model, whose posterior holds them)"
        )
    out = {v: np.asarray(draws[v], dtype=float) for v in needed}
    n = {a.shape[0] for a in out.values()}
    if len(n) != 1:
        raise ValueError(f"the {what} posterior's variables have different numbers of draws: {n}")
    for v, a in out.items():
        if not np.all(np.isfinite(a)):
            raise ValueError(f"the {what} posterior variable {v!r} has non-finite draws")
    return out


def _family_of(src: Any) -> str:
    """The survival family recorded with a fit or a stored posterior (default Weibull)."""
    card, info = getattr(src, "card", None), getattr(src, "model_info", None)
    for holder, key in ((card, "model_config"), (info, "config")):
        config = holder.get(key) if isinstance(holder, Mapping) else None
        if isinstance(config, Mapping) and config.get("family") is not None:
            return str(config["family"])
    return DEFAULT_FAMILY


def _warn_not_converged(src: Any, card: Mapping[str, Any] | None, what: str) -> None:
    """A :class:`~netbayes.fitting.ConvergenceWarning` for a posterior whose fit missed the
    convergence targets (its card says ``converged: false``, or a fit's ``converged``)."""
    diag = (card or {}).get("diagnostics")
    card_says = isinstance(diag, Mapping) and diag.get("converged") is False
    if not (card_says or getattr(src, "converged", True) is False):
        return
    from netbayes.fitting import ConvergenceWarning  # imported only here (it loads xarray)

    problems = (diag or {}).get("problems") if isinstance(diag, Mapping) else None
    problems = problems or getattr(src, "problems", None) or []
    detail = "; ".join(map(str, problems)) if isinstance(problems, list) else ""
    warnings.warn(
        f"the {what} posterior comes from a fit that did not converge (converged: false"
        f"{': ' + detail if detail else ''}); its predictions may be unreliable: refit with "
        "more tuning and draws before using them",
        ConvergenceWarning,
        stacklevel=3,
    )


class Predictor:
    """Predictions for patients and cohorts from posterior draws.

    Parameters
    ----------
    survival : StoredPosterior, FitResult, xarray.DataTree or mapping of str to numpy.ndarray
        Survival posterior holding :func:`netbayes.formulas.survival.params_for`
        ``(endpoint)``: a loaded store entry, a fresh fit, an ArviZ-style DataTree (its
        ``posterior`` group, e.g. ``arviz.from_netcdf(path)``), or draws with the draw axis
        first.
    toxicity : StoredPosterior, FitResult, xarray.DataTree or mapping, optional
        Toxicity posterior; without it the predictions have no ``p_grade3plus``.
    endpoint : {"pfs", "os"}
        What the survival posterior describes.
    family : str, optional
        The survival family of the posterior (:data:`netbayes.families.FAMILIES`). Default:
        the family recorded with the fit or in the model card, else ``"weibull"``.

    Warns
    -----
    netbayes.fitting.ConvergenceWarning
        A posterior comes from a fit that did not converge (its card or the fit says so).

    See Also
    --------
    Predictor.load : the shipped (or any stored) posteriors.
    """

    def __init__(
        self,
        survival: StoredPosterior | FitResult | xr.DataTree | Mapping[str, np.ndarray],
        toxicity: StoredPosterior
        | FitResult
        | xr.DataTree
        | Mapping[str, np.ndarray]
        | None = None,
        *,
        endpoint: Literal["pfs", "os"] = "pfs",
        family: str | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.family = get_family(family if family is not None else _family_of(survival))
        self.survival = _as_draws(survival, F.params_for(endpoint), f"survival-{endpoint}")
        for z in ("z1", "z2", *(("z1_os",) if endpoint == "os" else ())):
            if self.survival[z].ndim != 2 or self.survival[z].shape[1] != len(vocab.TUMOUR_TYPES):
                raise ValueError(
                    f"survival posterior variable {z!r} must have shape (draws, "
                    f"{len(vocab.TUMOUR_TYPES)}), got {self.survival[z].shape}"
                )
        self.cards = {
            "survival": getattr(survival, "card", None),
            "toxicity": getattr(toxicity, "card", None),
        }
        cal = (self.cards["survival"] or {}).get("calibration")
        self._ranges = _ranges_from_json(cal) if cal is not None else None
        self.toxicity: dict[str, np.ndarray] | None = None
        if toxicity is not None:
            self.toxicity = _as_draws(toxicity, tuple(T.PARAMS), "toxicity")
        _warn_not_converged(survival, self.cards["survival"], f"survival-{endpoint}")
        if toxicity is not None:
            _warn_not_converged(toxicity, self.cards["toxicity"], "toxicity")

    @classmethod
    def load(
        cls,
        endpoint: Literal["pfs", "os"] | str | PathLike[str] = "pfs",
        folder: str | PathLike[str] | None = None,
        *,
        toxicity: bool | None = None,
    ) -> Predictor:
        """Load stored posteriors (default: the shipped ones) and verify them.

        ``Predictor.load()`` loads the shipped posteriors; ``Predictor.load(path)`` a folder
        written by ``fit.save(path)`` (a survival fit, optionally with a toxicity fit);
        ``Predictor.load("os", path)`` the OS posterior of a folder.

        Parameters
        ----------
        endpoint : {"pfs", "os"} or path
            The survival endpoint; or, as the only argument, a models folder (its endpoint is
            that of the survival fit it holds: PFS if it holds both).
        folder : str or path-like, optional
            Models folder (default :func:`netbayes.store.models_dir`).
        toxicity : bool, optional
            Load the toxicity posterior (True: required; False: skipped). Default: required for
            ``Predictor.load()`` and ``Predictor.load(endpoint, folder)``; loaded when present
            for ``Predictor.load(path)``.

        Raises
        ------
        netbayes.store.StoreError
            A posterior is missing, corrupt or does not match; the message says how to
            regenerate it.

        Warns
        -----
        netbayes.fitting.ConvergenceWarning
            A posterior's card says its fit did not converge.
        """
        from netbayes.store import StoreError, load_posterior

        path_first = not (isinstance(endpoint, str) and endpoint in ("pfs", "os"))
        if path_first:
            if (
                folder is not None
                or not isinstance(endpoint, (str, PathLike))
                or endpoint == ""
                or not Path(endpoint).is_dir()
            ):
                allowed = "'pfs' or 'os', or an existing models folder as the only argument"
                raise _bad("endpoint", endpoint, allowed)
            base = Path(endpoint)
            folder = base
            have = [ep for ep in ("pfs", "os") if (base / f"survival-{ep}.json").is_file()]
            if not have:
                raise StoreError(
                    f"no survival posterior in {base}: expected survival-pfs.json or "
                    "survival-os.json there (save a fit with fit.save(folder), or run "
                    f"`netbayes fit --out {base}`)"
                )
            endpoint = have[0]
            if toxicity is None:
                toxicity = (base / "toxicity.json").is_file()
        elif toxicity is None:
            toxicity = True
        # prediction reads the checked draws files only: the DataTree files are not read here
        surv = load_posterior(f"survival-{endpoint}", folder, verify_datatree=False)
        tox = load_posterior("toxicity", folder, verify_datatree=False) if toxicity else None
        return cls(surv, tox, endpoint=endpoint)  # type: ignore[arg-type]

    @property
    def ranges(self) -> dict[str, Any]:
        """The calibrated input ranges: from the survival model card (recorded at fit time
        from the same data, see the card's data hash), else :func:`calibrated_ranges`."""
        return self._ranges if self._ranges is not None else calibrated_ranges()

    @property
    def n_draws(self) -> int:
        """Number of survival posterior draws."""
        return int(self.survival["k2"].shape[0])

    # -- one or many patients -------------------------------------------------------------------
    def patient(
        self,
        *,
        tumour_type: str,
        line: str,
        planned_gbq: float,
        prior_gbq: float = 0.0,
        prior_pfs_months: float | None = None,
        times: Sequence[float] | None = None,
        t_probs: Sequence[float] = DEFAULT_T_PROBS,
        interval: Interval | float | None = None,
        new_type: Literal["error", "population"] = "error",
        seed: int | None = 0,
    ) -> Prediction:
        """Predict one patient.

        Parameters
        ----------
        tumour_type, line, planned_gbq, prior_gbq, prior_pfs_months
            The patient record (:data:`FIELDS`).
        times : sequence of float, optional
            Time grid of the survival curve, months (default :data:`DEFAULT_TIMES`).
        t_probs : sequence of float
            Times t of P(PFS > t), months (default 12 and 24).
        interval : Interval or float, optional
            Interval convention (default 95% equal-tailed).
        new_type : {"error", "population"}
            A tumour type outside the vocabulary: refuse (default) or draw its effect from the
            population distribution.
        seed : int or None
            Seed of the population draws of a new tumour type (an integer >= 0; None: fresh
            entropy).

        Returns
        -------
        Prediction

        Warns
        -----
        ExtrapolationWarning
            The inputs lie outside the calibration data (see the module docstring).
        """
        rec = {
            "tumour_type": tumour_type,
            "line": line,
            "planned_gbq": planned_gbq,
            "prior_gbq": prior_gbq,
            "prior_pfs_months": prior_pfs_months,
        }
        return self._predict([rec], [0], times, t_probs, interval, new_type, seed)

    def patients(
        self,
        df: pd.DataFrame,
        *,
        times: Sequence[float] | None = None,
        t_probs: Sequence[float] = DEFAULT_T_PROBS,
        interval: Interval | float | None = None,
        new_type: Literal["error", "population"] = "error",
        seed: int | None = 0,
    ) -> Prediction:
        """Predict many patients, one per row of ``df`` (the index labels the patients).

        Parameters
        ----------
        df : pandas.DataFrame
            Columns ``tumour_type``, ``line``, ``planned_gbq`` and, as needed, ``prior_gbq``
            and ``prior_pfs_months`` (see :data:`FIELDS`). Every cell holds one value. A
            missing cell (NaN, None) means "not given": ``prior_pfs_months`` is then absent,
            ``prior_gbq`` is 0 on the lines that allow it (I-PRRT, 188Re-HEDP) and refused as
            given on a retreatment (R-PRRT, RR-PRRT), as :meth:`patient` refuses it.
        times, t_probs, interval, new_type, seed
            As in :meth:`patient`. Patients with the same new tumour-type label share its
            drawn effect.

        Returns
        -------
        Prediction

        See Also
        --------
        summaries : the same summaries for large tables, vectorised and memory-bounded (this
            method keeps every draw of every patient, ~0.25 MB each).
        """
        _check_frame(df)
        recs = []
        for _, r in df.iterrows():
            recs.append(_normalise_record({k: r[k] for k in FIELDS if k in df.columns}))
        return self._predict(recs, list(df.index), times, t_probs, interval, new_type, seed)

    def summaries(
        self,
        df: pd.DataFrame,
        *,
        t_probs: Sequence[float] = DEFAULT_T_PROBS,
        interval: Interval | float | None = None,
        new_type: Literal["error", "population"] = "error",
        seed: int | None = 0,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> pd.DataFrame:
        """Summaries only, one row per patient: vectorised and memory-bounded, for large batches.

        The same numbers as the ``summary`` of :meth:`patients` (and of :meth:`patient` for a
        one-row table), laid out wide: no survival curve and no draws are kept. With the
        shipped posteriors (4000 draws each), 100,000 patients take a minute or so on one
        core (about 0.6 ms each on a contended 2-core machine; a mix of every line and
        tumour type costs a little more) and 100-200 MB above the loaded posteriors.

        Parameters
        ----------
        df : pandas.DataFrame
            The patients, as for :meth:`patients` (same columns, missing cells and checks).
        t_probs : sequence of float
            Times t of P(PFS > t), months (default 12 and 24).
        interval : Interval or float, optional
            Interval convention (default 95% equal-tailed).
        new_type : {"error", "population"}
            A tumour type outside the vocabulary: refuse (default) or draw its effect from the
            population distribution.
        seed : int or None
            Seed of the new tumour types' population draws: one vector of standard normals
            (one per posterior draw) per distinct new label, drawn from
            ``numpy.random.default_rng(seed)`` in the order in which the labels first appear
            in ``df``, exactly as :meth:`patients` draws them. Rows with the same new label
            share the effect; a row's draws depend on the new labels above it, not on its
            position otherwise.
        chunk_size : int
            Distinct patients evaluated together (>= 1; the default 64 keeps the work arrays
            small enough to be reused rather than re-mapped). Peak memory: the work arrays,
            about ``chunk_size * 8 B * (2 * Q * S + 6 * S_tox)`` (Q = 1 + ``len(t_probs)``
            survival quantities, S survival and S_tox toxicity draws: ~20 MB at the default
            with 4000 draws), plus the any-line risk table (32 B per toxicity draw and grid
            point: a few MB for patients on one line with calibrated activities, at most
            ~110 MB with the shipped posterior for a batch spanning every line and
            activity), plus about 0.5 kB per patient (inputs, validation, result). None of
            it grows with the number of draws times patients.

        Returns
        -------
        pandas.DataFrame
            Index: ``df``'s index (named ``patient``). Per quantity, four columns
            ``<quantity>_median``, ``<quantity>_mean``, ``<quantity>_<lower>``,
            ``<quantity>_<upper>`` (posterior median, mean and the interval bounds, named
            by the interval as in every netbayes table, e.g. ``eti95_lower``), for the
            quantities ``median_pfs`` (months), ``p_pfs_gt_<t>`` per time of ``t_probs``
            (``12`` for 12.0, ``6.5`` for 6.5), and, with a toxicity posterior,
            ``p_grade3plus_<cell line>`` for :data:`netbayes.vocab.CELL_LINES` and ``any``
            (``os`` instead of ``pfs`` for an OS predictor). Then ``extrapolation``: the
            patient's extrapolation notes joined by "; " (empty if none).

        Raises
        ------
        ValueError
            A row fails validation: the same error as :meth:`patient` gives, prefixed by
            ``patient <label>:`` when ``df`` has more than one row.

        Warns
        -----
        ExtrapolationWarning
            One per kind of extrapolation (e.g. planned activity outside the calibrated
            range of a line), with the number of patients concerned and the first one's
            note; each patient's notes are in the ``extrapolation`` column.

        Notes
        -----
        Patients with equal inputs are evaluated once; the others are ordered so that a
        chunk holds similar patients (same line and tumour type, nearby covariates). Per
        chunk, the formulas are evaluated on arrays of patients x posterior draws and
        summarised at once; the order statistics of an equal-tailed interval are selected
        exactly, among the draws that can hold them for some patient of the chunk.

        Agreement with :meth:`patient`: the survival quantities and the per-line toxicity
        risks use the same formulas and operations (differences are rounding, about 1e-15
        relative; the median of a coarse tumour type is solved by safeguarded Newton instead
        of bisection, to the same root); the any-line risk, a quadrature over the patient
        propensity for each draw, is interpolated from a table per draw
        (:func:`netbayes.formulas.toxicity.any_line_risk_table`) within its proven error
        bound (5.3e-8 with the default quadrature; a table whose bound exceeds 1e-7 is
        refused), and so are its summaries (the mean and the order statistics move by at
        most the largest change of a draw; an HDI's bounds, though, can switch between
        windows of nearly equal width).
        """
        iv = as_interval(interval)
        tp = _check_times("t_probs", t_probs)
        seed = _check_seed(seed)
        if (
            isinstance(chunk_size, (bool, np.bool_))
            or not isinstance(chunk_size, (int, np.integer))
            or chunk_size < 1
        ):
            raise _bad("chunk_size", chunk_size, "an integer >= 1 (patients evaluated together)")
        chunk = int(chunk_size)
        if new_type not in ("error", "population"):
            raise _bad("new_type", new_type, "'error' or 'population'")
        _check_frame(df)
        batch = self._validate_batch(df, new_type)
        e = self.endpoint
        lo_c, hi_c = iv.columns
        stats = ("median", "mean", lo_c, hi_c)
        names = [f"median_{e}", *(f"p_{e}_gt_{_time_label(t)}" for t in tp)]
        surv = self._survival_summaries(batch, tp, iv, seed, chunk)  # (P, Q, 4)
        blocks = [surv]
        if self.toxicity is not None:
            names += [f"p_grade3plus_{cl}" for cl in (*vocab.CELL_LINES, "any")]
            blocks.append(self._toxicity_summaries(batch, iv, chunk))
        values = np.concatenate(blocks, axis=1)
        cols: dict[str, Any] = {
            f"{q}_{st}": values[:, i, j] for i, q in enumerate(names) for j, st in enumerate(stats)
        }
        cols["extrapolation"] = batch.notes
        out = pd.DataFrame(cols, index=df.index.copy())
        out.index.name = "patient"
        return out

    def _validate_batch(self, df: pd.DataFrame, new_type: Literal["error", "population"]) -> _Batch:
        """Validate every row (as :meth:`patient`) into arrays; warn once per kind of note."""
        labels = list(df.index)
        n = len(labels)
        columns = {k: df[k].tolist() for k in FIELDS if k in df.columns}
        ranges = self.ranges
        coarse = list(ranges["type_weights"])
        line_no = np.empty(n, dtype=np.int64)
        type_no = np.empty(n, dtype=np.int64)
        lx = np.zeros(n)
        gq = np.zeros(n)
        planned = np.empty(n)
        prior = np.empty(n)
        notes = [""] * n
        new_labels: dict[str, int] = {}
        seen: dict[str, list[Any]] = {}  # kind -> [count, first label, first note]
        n_fine = len(vocab.TUMOUR_TYPES)
        line_index = {ln: i for i, ln in enumerate(vocab.LINES)}
        for i in range(n):
            rec = _normalise_record({k: v[i] for k, v in columns.items()})
            try:
                p = validate_patient(
                    **rec, new_type=new_type, endpoint=self.endpoint, ranges=ranges
                )
            except ValueError as err:
                if n > 1:
                    raise ValueError(f"patient {labels[i]!r}: {err}") from None
                raise
            line_no[i] = line_index[p.line]
            if p.new_type:
                type_no[i] = _NEW_TYPE_BASE + new_labels.setdefault(p.tumour_type, len(new_labels))
            elif p.tumour_type in vocab.TUMOUR_TYPES:
                type_no[i] = vocab.TUMOUR_TYPES.index(p.tumour_type)
            else:
                type_no[i] = n_fine + coarse.index(p.tumour_type)
            planned[i] = p.planned_gbq
            prior[i] = p.prior_gbq
            if not spec.line_spec(p.line).is_first:  # the first line ignores x and activity
                x = F.X_REF if p.prior_pfs_months is None else p.prior_pfs_months
                lx[i] = math.log(x / F.X_REF)
                cum = F.cumulative_gbq(p.prior_gbq, p.planned_gbq, p.line)
                gq[i] = (cum - F.GBQ_REF) / F.GBQ_UNIT
            if p.extrapolation:
                notes[i] = "; ".join(p.extrapolation)
                for kind, note in zip(p.extrapolation_kinds, p.extrapolation, strict=True):
                    if kind in seen:
                        seen[kind][0] += 1
                    else:
                        seen[kind] = [1, labels[i], note]
        for count, lab, note in seen.values():
            who = (
                f"{count} of {n} patients extrapolate, e.g. patient {lab!r}"
                if count > 1
                else f"patient {lab!r}"
                if n > 1
                else "the prediction extrapolates"
            )
            more = "; each patient's notes are in the 'extrapolation' column" if n > 1 else ""
            warnings.warn(f"{who}: {note}{more}", ExtrapolationWarning, stacklevel=3)
        return _Batch(
            line=line_no,
            type=type_no,
            lx=lx,
            gq=gq,
            planned=planned,
            prior=prior,
            new_labels=list(new_labels),
            coarse=coarse,
            notes=notes,
        )

    def _survival_summaries(
        self, b: _Batch, tp: np.ndarray, iv: Interval, seed: int | None, chunk: int
    ) -> np.ndarray:
        """(P, 1 + len(tp), 4): median, mean, interval bounds of the median and P(T > t)."""
        th, e = self.survival, self.endpoint
        S = self.n_draws
        rng = np.random.default_rng(seed)
        z_new = [rng.standard_normal(S) for _ in b.new_labels]
        keys = np.column_stack([b.line, b.type, b.lx, b.gq]).astype(float)
        units, inverse = _units(keys, 2)
        U, Q = len(units), 1 + len(tp)
        out = np.empty((U, Q, 4))
        fam = self.family
        fast = isinstance(fam, WeibullFamily)  # the Weibull closed forms, operation by operation
        cl2 = (
            np.power(math.log(2.0), 1.0 / np.stack([F.shape(th, ln, e) for ln in vocab.LINES]))
            if fast
            else None
        )
        what = ["the median", *(["P(event-free)"] * len(tp))]

        def components(line: str, ty: int) -> list[tuple[np.ndarray, float]]:
            """Standardised type effects and weights of a tumour type (mixture components)."""
            zt = F.type_intercepts(th, line, e)[2]
            if ty >= _NEW_TYPE_BASE:
                return [(z_new[ty - _NEW_TYPE_BASE], 1.0)]
            if ty < len(vocab.TUMOUR_TYPES):
                return [(zt[:, ty], 1.0)]
            wts = self.ranges["type_weights"][b.coarse[ty - len(vocab.TUMOUR_TYPES)]]
            return [(zt[:, vocab.TUMOUR_TYPES.index(m)], v) for m, v in wts.items() if v > 0]

        work = np.empty((min(chunk, U), Q, S))  # reused by every chunk

        def run(c0: int) -> None:
            part = units[c0 : c0 + chunk]
            buf = work[: len(part)]
            for a, z in _runs(part[:, :2]):  # one line and tumour type
                li, ty = int(part[a, 0]), int(part[a, 1])
                line = vocab.LINES[li]
                k = F.shape(th, line, e)
                alpha, sigma, _ = F.type_intercepts(th, line, e)
                comps = components(line, ty)
                shift = None
                ls = spec.line_spec(line)
                if not ls.is_first:  # as formulas.survival.log_scale, operation by operation
                    shift = np.multiply.outer(part[a:z, 2], th["beta_x"])
                    shift += np.multiply.outer(part[a:z, 3], th["beta_gbq"])
                    if ls.survival_effect is not None:
                        shift += th[ls.survival_effect]
                loglam = []
                for zc, _ in comps:
                    base = alpha + sigma * zc
                    loglam.append(
                        np.broadcast_to(base, (z - a, S)) if shift is None else base + shift
                    )
                lam = [np.exp(x) for x in loglam]
                tmp = np.empty((z - a, S))
                if not fast:  # any family: its own median, mixture median and survival
                    lam_s = np.stack(lam, axis=-1)  # (rows, S, J)
                    w = np.array([v for _, v in comps])
                    for r in range(z - a):
                        if len(comps) == 1:
                            buf[a + r, 0] = fam.median(k, lam_s[r, :, 0])
                        else:
                            buf[a + r, 0] = fam.mixture_median(k, lam_s[r], w)
                        for i, t in enumerate(tp):
                            buf[a + r, 1 + i] = fam.sf(t, k[:, None], lam_s[r]) @ w
                elif len(comps) == 1:  # formulas.survival.weibull_median and weibull_sf
                    np.multiply(lam[0], cl2[li], out=buf[a:z, 0])
                    for i, t in enumerate(tp):
                        _weibull_sf_into(t, k, lam[0], buf[a:z, 1 + i])
                else:  # mixture_median (same root, by Newton) and mixture_sf
                    w = np.array([v for _, v in comps])
                    buf[a:z, 0] = _mixture_median(k, loglam, w, cl2[li])
                    for i, t in enumerate(tp):
                        acc = buf[a:z, 1 + i]
                        acc[...] = 0.0
                        for lm, v in zip(lam, w, strict=True):
                            acc += np.multiply(v, _weibull_sf_into(t, k, lm, tmp), out=tmp)
            out[c0 : c0 + len(part)] = _summarise(iv, buf, what)

        for c0 in range(0, U, chunk):
            run(c0)
        return out[inverse]

    def _toxicity_summaries(self, b: _Batch, iv: Interval, chunk: int) -> np.ndarray:
        """(P, 4, 4): median, mean, interval bounds of P(grade >= III) per cell line and any."""
        assert self.toxicity is not None
        th = self.toxicity
        keys = np.column_stack([b.line, b.planned, b.prior])
        units, inverse = _units(keys, 1)
        U = len(units)
        S = th["sigma_u"].shape[0]
        scale = np.sqrt(1.0 + th["sigma_u"] ** 2)
        c3 = th["c3"]
        # the any-line risk table covers, per draw, the linear predictor of every unit: eta is
        # linear in (planned, prior) per line, so its range is spanned by the corners
        lo, hi = np.full(S, np.inf), np.full(S, -np.inf)
        for li in np.unique(units[:, 0]).astype(int):
            u = units[units[:, 0] == li]
            a = np.repeat([u[:, 1].min(), u[:, 1].max()], 2)
            p = np.tile([u[:, 2].min(), u[:, 2].max()], 2)
            eta = self._eta(vocab.LINES[li], a, p)
            lo, hi = np.minimum(lo, eta.min(axis=0)), np.maximum(hi, eta.max(axis=0))
        table = T.any_line_risk_table(th, lo, hi)
        if table.max_error > _ANY_LINE_TOLERANCE:  # pragma: no cover - guarded by the bound
            raise RuntimeError(f"any-line risk table error bound {table.max_error:.2g} too large")
        out = np.empty((U, 4, 4))

        work = np.empty((min(chunk, U), 4, S))  # reused by every chunk

        def run(c0: int) -> None:
            part = units[c0 : c0 + chunk]
            buf = work[: len(part)]
            for a, z in _runs(part[:, :1]):  # one treatment line
                eta = self._eta(vocab.LINES[int(part[a, 0])], part[a:z, 1], part[a:z, 2])
                for j in range(c3.shape[1]):  # as formulas.toxicity.grade3_risk:
                    v = buf[a:z, j]  # -(c - eta) is exactly eta - c
                    ndtr(np.divide(np.subtract(eta, c3[:, j], out=v), scale, out=v), out=v)
                buf[a:z, 3] = table(eta)
            out[c0 : c0 + len(part)] = _summarise(iv, buf, ["P(grade >= III)"] * 4)

        for c0 in range(0, U, chunk):
            run(c0)
        return out[inverse]

    def _eta(self, line: str, planned: np.ndarray, prior: np.ndarray) -> np.ndarray:
        """Toxicity linear predictor (patients, draws), as formulas.toxicity's, op by op."""
        assert self.toxicity is not None
        th = self.toxicity
        key = T.LINE_EFFECT[line]
        delta = np.zeros(th["theta"].shape[0]) if key is None else th[key]
        a = planned[:, None]
        act = a if spec.line_spec(line).adds_lu177 else th["theta"] * a  # 188Re: GBq-equivalent
        return T.linear_predictor(act, prior[:, None], th["beta_activity"], th["beta_prior"], delta)

    def _predict(
        self,
        recs: list[dict[str, Any]],
        labels: list[Any],
        times: Sequence[float] | None,
        t_probs: Sequence[float],
        interval: Interval | float | None,
        new_type: Literal["error", "population"],
        seed: int | None,
    ) -> Prediction:
        iv = as_interval(interval)
        tgrid = DEFAULT_TIMES if times is None else _check_times("times", times)
        tp = _check_times("t_probs", t_probs)
        seed = _check_seed(seed)
        pats = []
        for lab, rec in zip(labels, recs, strict=True):
            try:
                pats.append(
                    validate_patient(
                        **rec, new_type=new_type, endpoint=self.endpoint, ranges=self.ranges
                    )
                )
            except ValueError as err:
                if len(recs) > 1:
                    raise ValueError(f"patient {lab!r}: {err}") from None
                raise
        for lab, p in zip(labels, pats, strict=True):
            who = f"patient {lab!r}: " if len(pats) > 1 else ""
            for note in p.extrapolation:
                warnings.warn(
                    f"{who}the prediction extrapolates: {note}", ExtrapolationWarning, stacklevel=3
                )
        e = self.endpoint
        th = self.survival
        fam = self.family
        rng = np.random.default_rng(seed)
        z_new: dict[str, np.ndarray] = {}
        S_all, med_all, gt_all, tox_all = [], [], [], []
        rows: list[dict[str, Any]] = []
        curve_rows: list[pd.DataFrame] = []
        lo_c, hi_c = iv.columns
        for lab, p in zip(labels, pats, strict=True):
            d = F.cumulative_gbq(p.prior_gbq, p.planned_gbq, p.line)
            k = F.shape(th, p.line, e)
            if p.new_type:
                if p.tumour_type not in z_new:
                    z_new[p.tumour_type] = rng.standard_normal(self.n_draws)
                lam = np.exp(
                    F.log_scale(th, p.line, p.prior_pfs_months, d, e, z_new=z_new[p.tumour_type])
                )
                w = np.ones(1)
            else:
                wt = _tumour_weights(p, self.ranges)
                assert wt is not None
                keep = wt > 0
                lam = np.exp(F.log_scale(th, p.line, p.prior_pfs_months, d, e))[:, keep]
                w = wt[keep]
            if lam.shape[1] == 1:
                surv = fam.sf(tgrid[None, :], k[:, None], lam)
                gt = fam.sf(tp[None, :], k[:, None], lam)
                med = fam.median(k, lam[:, 0])
            else:
                surv = fam.mixture_sf(tgrid, k, lam, w)
                gt = fam.mixture_sf(tp, k, lam, w)
                med = fam.mixture_median(k, lam, w)
            _finite("the survival curve", surv)
            _finite("the median", med)
            _finite("P(event-free)", gt)
            S_all.append(surv)
            med_all.append(med)
            gt_all.append(gt)
            rows.append(
                {
                    "patient": lab,
                    "quantity": f"median_{e}",
                    "t_months": np.nan,
                    "cell_line": None,
                    "unit": "months",
                    **_describe(iv, med),
                }
            )
            for j, t in enumerate(tp):
                rows.append(
                    {
                        "patient": lab,
                        "quantity": f"p_{e}_gt",
                        "t_months": float(t),
                        "cell_line": None,
                        "unit": "probability",
                        **_describe(iv, gt[:, j]),
                    }
                )
            if self.toxicity is not None:
                risk = self._toxicity_risk(p)
                tox_all.append(risk)
                for j, cl in enumerate((*vocab.CELL_LINES, "any")):
                    rows.append(
                        {
                            "patient": lab,
                            "quantity": "p_grade3plus",
                            "t_months": np.nan,
                            "cell_line": cl,
                            "unit": "probability",
                            **_describe(iv, risk[:, j]),
                        }
                    )
            desc = iv.describe(surv, axis=0)
            curve_rows.append(
                pd.DataFrame(
                    {
                        "patient": [lab] * len(tgrid),
                        "t_months": tgrid,
                        "median": desc["median"],
                        "mean": desc["mean"],
                        lo_c: desc[lo_c],
                        hi_c: desc[hi_c],
                    }
                )
            )
        summary = pd.DataFrame(rows)[
            ["patient", "quantity", "t_months", "cell_line", "unit", "median", "mean", lo_c, hi_c]
        ]
        summary["cell_line"] = summary["cell_line"].astype("string")
        for c in ("median", "mean", lo_c, hi_c):
            _finite(c, summary[c].to_numpy(float))
        pdf = pd.DataFrame(
            {
                "tumour_type": [p.tumour_type for p in pats],
                "line": [p.line for p in pats],
                "prior_pfs_months": [
                    np.nan if p.prior_pfs_months is None else p.prior_pfs_months for p in pats
                ],
                "prior_gbq": [p.prior_gbq for p in pats],
                "planned_gbq": [p.planned_gbq for p in pats],
                "cumulative_gbq": [
                    F.cumulative_gbq(p.prior_gbq, p.planned_gbq, p.line) for p in pats
                ],
                "new_type": [p.new_type for p in pats],
                "extrapolation": ["; ".join(p.extrapolation) for p in pats],
                "extrapolation_notes": [list(p.extrapolation) for p in pats],
            },
            index=pd.Index(labels, name="patient"),
        )
        arrays = {
            "survival": np.stack(S_all),
            f"median_{e}_months": np.stack(med_all),
            f"p_{e}_gt": np.stack(gt_all),
        }
        coords: dict[str, Any] = {
            "patient": list(labels),
            "t_months": tgrid,
            "t_prob": tp,
        }
        if tox_all:
            arrays["p_grade3plus"] = np.stack(tox_all)
            coords["cell_line"] = [*vocab.CELL_LINES, "any"]
        return Prediction(
            patients=pdf,
            summary=summary,
            curve=pd.concat(curve_rows, ignore_index=True),
            interval=iv,
            endpoint=e,
            arrays=arrays,
            coords=coords,
        )

    def _toxicity_risk(self, p: _Patient) -> np.ndarray:
        """Draws of P(grade >= III) per cell line and any line, shape (draws, 4)."""
        assert self.toxicity is not None
        per_line, any_line = T.grade3_risk(self.toxicity, p.planned_gbq, p.prior_gbq, p.line)
        risk = np.concatenate([per_line[:, 0, :], any_line[:, :1]], axis=1)  # (draws, 4)
        _finite("P(grade >= III)", risk)
        if np.any(risk < 0) or np.any(risk > 1):
            raise ValueError("P(grade >= III) outside [0, 1]; the toxicity formulas are broken")
        return risk

    # -- cohorts ---------------------------------------------------------------------------------
    def cohort(
        self,
        n: int,
        *,
        line: str = "R-PRRT",
        tumour_mix: Mapping[str, float] | None = None,
        prior_pfs_months: float | Sequence[float] | Literal["selected"] = "selected",
        prior_gbq: float | Sequence[float] | None = None,
        planned_gbq: float | Sequence[float] | None = None,
        n_sims: int = 2000,
        seed: int | None = 1,
        interval: Interval | float | None = None,
        new_type: Literal["error", "population"] = "error",
    ) -> CohortPrediction:
        """Predict the Kaplan-Meier median of a cohort of ``n`` patients, with its predictive
        interval.

        For each of ``n_sims`` posterior draws, a cohort of ``n`` patients is simulated and its
        KM median taken (no censoring: the :math:`\\lceil n/2\\rceil`-th smallest time, as in
        the model's likelihood of a published median). This is the quantity a published table
        reports, so any published median can be compared with it.

        Parameters
        ----------
        n : int
            Cohort size (>= 1).
        line : str
            Treatment line of the cohort.
        tumour_mix : mapping of str to float, optional
            Tumour-type composition (counts or proportions; normalised). Coarse types are
            split by the Rotterdam mix. Default: the Rotterdam retreatment cohort of the line
            (RR-PRRT: its 13 patients; otherwise the 168 of I-PRRT/R-PRRT). Patients per type
            are fixed (largest-remainder rounding of ``n`` times the proportions).
        prior_pfs_months : "selected", float or sequence of float
            ``"selected"`` (default): drawn from the model's selected population (first-line
            PFS of the patient's type truncated at the 18-month threshold; for RR-PRRT the
            R-PRRT PFS truncated at 14 months), as in the calibration cohort. A number: every
            patient; a sequence: resampled with replacement. Ignored for I-PRRT.
        prior_gbq, planned_gbq : float or sequence of float
            Activities (GBq), a number for everyone or a sequence resampled with replacement.
            Default: the calibration cohort of the line (:func:`default_activities`): I-PRRT
            none before and the Rotterdam I-PRRT median in the line; R-PRRT the I-PRRT and
            R-PRRT phase medians; RR-PRRT the median cumulative activity after R-PRRT and the
            RR-PRRT phase median; 188Re-HEDP the pilot's median prior 177Lu and 188Re
            activities.
        n_sims : int
            Posterior draws used (evenly thinned).
        seed : int or None
            Seed of the simulation (an integer >= 0; None: fresh entropy).
        interval : Interval or float, optional
            Interval convention (default 95% equal-tailed).
        new_type : {"error", "population"}
            A type label outside the vocabulary in ``tumour_mix``: refuse, or draw its effect
            from the population per posterior draw.

        Returns
        -------
        CohortPrediction
        """
        iv = as_interval(interval)
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise _bad("n", n, "an integer >= 1 (patients in the cohort)")
        if isinstance(n_sims, (bool, np.bool_)) or not isinstance(n_sims, (int, np.integer)):
            raise _bad("n_sims", n_sims, "an integer >= 10")
        if n_sims < 10:
            raise _bad("n_sims", n_sims, "an integer >= 10")
        seed = _check_seed(seed)
        n = int(n)
        rng_c = self.ranges
        if not isinstance(line, str) or line.strip().lower() not in _LINES_CI:
            raise _bad("line", line, f"one of {', '.join(vocab.LINES)}")
        ln = _LINES_CI[line.strip().lower()]
        if tumour_mix is None:
            key = "RR-PRRT" if ln == "RR-PRRT" else "I-PRRT/R-PRRT"
            tumour_mix = rng_c["cohort_mix"][key]
        counts = self._type_counts(n, tumour_mix, new_type, rng_c)

        def values(name: str, v: Any) -> np.ndarray:
            arr = np.atleast_1d(np.asarray(v, dtype=object))
            out = np.array([_number(name, x) for x in arr], dtype=float)
            if out.size == 0:
                raise _bad(name, v, "a number or a non-empty sequence of numbers")
            return out

        ref = default_activities(ln)
        pg = values("prior_gbq", ref[0] if prior_gbq is None else prior_gbq)
        pl = values("planned_gbq", ref[1] if planned_gbq is None else planned_gbq)
        selected = isinstance(prior_pfs_months, str)
        if selected and prior_pfs_months != "selected":
            raise _bad("prior_pfs_months", prior_pfs_months, "'selected', a number or numbers")
        xs = None if selected else values("prior_pfs_months", prior_pfs_months)
        # validate representative records (ranges and extrapolation warnings, once each)
        notes: list[str] = []
        rep_x = F.X_REF if xs is None else float(np.min(xs))  # "selected": in range
        for a in {float(pg.min()), float(pg.max())}:
            for b in {float(pl.min()), float(pl.max())}:
                p = validate_patient(
                    tumour_type="midgut",
                    line=ln,
                    planned_gbq=b,
                    prior_gbq=a,
                    prior_pfs_months=rep_x if ln != "I-PRRT" else None,
                    endpoint=self.endpoint,
                    ranges=rng_c,
                )
                notes += [m for m in p.extrapolation if m not in notes]
        if not selected and ln != "I-PRRT":
            p = validate_patient(
                tumour_type="midgut",
                line=ln,
                planned_gbq=float(pl[0]),
                prior_gbq=float(pg[0]),
                prior_pfs_months=float(np.max(xs)),
                endpoint=self.endpoint,
                ranges=rng_c,
            )
            notes += [m for m in p.extrapolation if m not in notes]
        notes += [
            f"tumour type {t!r} is new: drawn from the population"
            for t in counts
            if t not in vocab.TUMOUR_TYPES
        ]
        for note in notes:
            warnings.warn(
                f"the cohort prediction extrapolates: {note}", ExtrapolationWarning, stacklevel=2
            )
        rng = np.random.default_rng(seed)
        fam = self.family
        S = self.n_draws
        sel = np.linspace(0, S - 1, min(n_sims, S)).astype(int)
        th = {k: v[sel] for k, v in self.survival.items()}
        m = len(sel)
        e = self.endpoint
        # per-patient type columns: fine types index z; new types get population draws
        z2 = np.empty((m, n))
        z1 = np.empty((m, n))  # first-line PFS effects (prior PFS distribution)
        z1_end = np.empty((m, n))  # first-line effects of the endpoint (I-PRRT cohorts)
        col = 0
        for t, c in counts.items():
            if t in vocab.TUMOUR_TYPES:
                j = vocab.TUMOUR_TYPES.index(t)
                a2, a1, a1e = (
                    th["z2"][:, j],
                    th["z1"][:, j],
                    th[f"z1{'_os' if e == 'os' else ''}"][:, j],
                )
            else:
                a2, a1, a1e = (rng.standard_normal(m) for _ in range(3))
                if e == "pfs":
                    a1e = a1
            z2[:, col : col + c] = a2[:, None]
            z1[:, col : col + c] = a1[:, None]
            z1_end[:, col : col + c] = a1e[:, None]
            col += c
        thr = rng_c["prior_pfs_min"]

        def draw(v: np.ndarray) -> np.ndarray:
            return v[rng.integers(0, v.size, size=(m, n))] if v.size > 1 else np.full((m, n), v[0])

        ls = spec.line_spec(ln)
        if ls.is_first:
            a, s, _, kname = (
                ("alpha1_os", "sigma1_os", "z1_os", "k1_os")
                if e == "os"
                else ("alpha1", "sigma1", "z1", "k1")
            )
            lam = np.exp(th[a][:, None] + th[s][:, None] * z1_end)
            k = th[kname][:, None]
        else:
            k = th["k2"][:, None]
            type2 = th["alpha2"][:, None] + th["sigma2"][:, None] * z2
            d = draw(pg) + (draw(pl) if ls.adds_lu177 else 0.0)
            bx, bg = th["beta_x"][:, None], th["beta_gbq"][:, None]
            if selected:
                lam1 = np.exp(th["alpha1"][:, None] + th["sigma1"][:, None] * z1)
                x = fam.truncated_sample(rng, th["k1"][:, None], lam1, thr["R-PRRT"], (m, n))
                if ls.selected_after == "R-PRRT":
                    # the R-PRRT PFS given x, at the calibration's R-PRRT cumulative activity
                    d_r = _gbq_r()
                    lam_r = np.exp(
                        type2 + bx * np.log(x / F.X_REF) + bg * (d_r - F.GBQ_REF) / F.GBQ_UNIT
                    )
                    x = fam.truncated_sample(rng, k, lam_r, thr["RR-PRRT"], (m, n))
            else:
                assert xs is not None
                x = draw(xs)
            lp = type2 + bx * np.log(x / F.X_REF) + bg * (d - F.GBQ_REF) / F.GBQ_UNIT
            if ls.survival_effect is not None:
                lp = lp + th[ls.survival_effect][:, None]
            lam = np.exp(lp)
        t = fam.sample(rng, k, lam, (m, n))
        r = math.ceil(n / 2)
        km = np.partition(t, r - 1, axis=1)[:, r - 1]
        _finite("the cohort KM median", km)
        desc = _describe(iv, km)
        summary = pd.DataFrame(
            [{"line": ln, "n": n, "quantity": f"km_median_{e}", "unit": "months", **desc}]
        )
        return CohortPrediction(summary, km, counts, iv)

    @staticmethod
    def _type_counts(
        n: int,
        mix: Mapping[str, float],
        new_type: Literal["error", "population"],
        ranges: Mapping[str, Any],
    ) -> dict[str, int]:
        if not isinstance(mix, Mapping) or not mix:
            raise _bad("tumour_mix", mix, "a non-empty mapping of tumour type to count/proportion")
        fine: dict[str, float] = {}
        weights = ranges["type_weights"]
        for t, v in mix.items():
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.number)):
                raise _bad(f"tumour_mix[{t!r}]", v, "a count or proportion >= 0")
            if not math.isfinite(float(v)) or v < 0:
                raise _bad(f"tumour_mix[{t!r}]", v, "a count or proportion >= 0")
            if not isinstance(t, str):
                raise _bad("tumour_mix key", t, "a tumour type (string)")
            key = t.strip().lower()
            if key in vocab.TUMOUR_TYPES:
                fine[key] = fine.get(key, 0.0) + float(v)
            elif key in weights:
                for mem, w in weights[key].items():
                    fine[mem] = fine.get(mem, 0.0) + float(v) * w
            elif new_type == "population":
                fine[t.strip()] = fine.get(t.strip(), 0.0) + float(v)
            else:
                raise _bad(
                    "tumour_mix key",
                    t,
                    f"one of {', '.join(vocab.PATIENT_TUMOUR_TYPES)}; for a type the model has "
                    "not seen, pass new_type='population'",
                )
        tot = sum(fine.values())
        if tot <= 0:
            raise _bad("tumour_mix", dict(mix), "at least one positive count or proportion")
        exact = {t: n * v / tot for t, v in fine.items()}
        counts = {t: math.floor(v) for t, v in exact.items()}
        rest = n - sum(counts.values())
        for t in sorted(exact, key=lambda u: exact[u] - counts[u], reverse=True)[:rest]:
            counts[t] += 1
        return {t: c for t, c in counts.items() if c > 0}


def default_activities(line: str) -> tuple[float, float]:
    """The default ``(prior_gbq, planned_gbq)`` of a cohort on ``line``: its calibration cohort.

    Parameters
    ----------
    line : str
        One of :data:`netbayes.vocab.LINES` (exact spelling).

    Returns
    -------
    tuple of float
        I-PRRT: no prior activity and the median activity of the Rotterdam I-PRRT phase;
        R-PRRT: the I-PRRT and R-PRRT phase medians; RR-PRRT: the median cumulative activity
        after R-PRRT and the RR-PRRT phase median (``data/rotterdam_doses.csv``); 188Re-HEDP:
        the pilot's median prior 177Lu and 188Re activities (``data/re188_patients.csv``).
    """
    if not isinstance(line, str) or line not in vocab.LINES:
        raise _bad("line", line, f"one of {', '.join(vocab.LINES)}")
    return _default_activities(line)


def _default_activities(line: str) -> tuple[float, float]:
    return calibration.default_activities(line)


def _gbq_r() -> float:
    """Median cumulative activity after R-PRRT of the calibration patients (GBq)."""
    return calibration.survival_calibration("pfs").cumulative_gbq["R-PRRT"]


@cache
def _default_predictor(endpoint: str, folder: str | None) -> Predictor:
    return Predictor.load(endpoint, folder)  # type: ignore[arg-type]


def predict(
    *,
    tumour_type: str,
    line: str,
    planned_gbq: float,
    prior_gbq: float = 0.0,
    prior_pfs_months: float | None = None,
    endpoint: Literal["pfs", "os"] = "pfs",
    folder: str | Path | None = None,
    **options: Any,
) -> Prediction:
    """Predict one patient from the stored posteriors (default: the shipped ones).

    A convenience wrapper of :meth:`Predictor.load` (cached) and :meth:`Predictor.patient`;
    ``options`` are passed to the latter (``times``, ``t_probs``, ``interval``, ``new_type``,
    ``seed``).

    Returns
    -------
    Prediction
    """
    pred = _default_predictor(endpoint, None if folder is None else str(folder))
    return pred.patient(
        tumour_type=tumour_type,
        line=line,
        planned_gbq=planned_gbq,
        prior_gbq=prior_gbq,
        prior_pfs_months=prior_pfs_months,
        **options,
    )
