"""Prediction inputs: the patient record, its validation and the calibrated ranges.

See :mod:`netbayes.predict` for the record's fields and the warnings.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from netbayes import calibration, fields, spec, vocab
from netbayes._lazy import LazyModule
from netbayes.calibration import calibrated_ranges, check_calibration
from netbayes.fields import MIN_PRIOR_PFS_MONTHS

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path


__all__ = [
    "DEFAULT_TIMES",
    "DEFAULT_T_PROBS",
    "FIELDS",
    "LIMITS",
    "MIN_PRIOR_PFS_MONTHS",
    "PRIOR_PFS_DATA_MAX",
    "ExtrapolationWarning",
    "default_activities",
    "validate_patient",
]


class ExtrapolationWarning(UserWarning):
    """The inputs lie outside what the calibration data cover: the prediction extrapolates."""


FIELDS: dict[str, str] = {
    "tumour_type": f"tumour type, one of {', '.join(vocab.PATIENT_TUMOUR_TYPES)} "
    "(others only with new_type='population')",
    "prior_pfs_months": "PFS after the previous line, months (at least one day, "
    f"{MIN_PRIOR_PFS_MONTHS:.3g}, to 600); required for R-PRRT and RR-PRRT, optional for "
    "188Re-HEDP (default: a mixture over the pilot's 13-47-month interval law, as fitted; a "
    "value outside that range extrapolates), ignored for I-PRRT; beyond 120 months an "
    "extrapolation",
    "prior_gbq": "cumulative 177Lu-octreotate activity before the planned line, GBq (>= 0; 0 for "
    "I-PRRT, > 0 for R-PRRT and RR-PRRT)",
    "planned_gbq": "activity planned in the line, GBq (> 0; 188Re activity for 188Re-HEDP)",
    "line": f"treatment line, one of {', '.join(vocab.LINES)}",
}
"""The fields of a patient record and what each accepts."""

LIMITS: dict[str, tuple[float, float]] = {
    k: (fields.LIMITS[k].lo, fields.LIMITS[k].hi)
    for k in ("prior_pfs_months", "prior_gbq", "planned_gbq")
}
"""Plausibility limits, inclusive except the lower limit of the planned activity (> 0): outside
is an input error, most likely a wrong unit (days or years instead of months, MBq or mCi instead
of GBq). The one source is :data:`netbayes.fields.LIMITS`, which fitting data share."""

PRIOR_PFS_DATA_MAX = 120.0
"""The longest prior PFS (months) the calibration data can speak for. The papers print no
maximum; the Rotterdam cohort's I-PRRT PFS medians are 25-52 months by tumour type (35.4 overall)
and its median follow-up 88.6 months, so a prior PFS beyond ten years lies past anything the
cohort can have observed: the prior-PFS effect is extrapolated (an ExtrapolationWarning)."""

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
    return fields.bad(name, value, allowed)


def _number(name: str, value: Any, *, optional: bool = False) -> float | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        if optional:
            return None
        raise _bad(name, value, f"a number: {FIELDS[name]}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.number)):
        raise _bad(name, value, f"a number, not {type(value).__name__}: {FIELDS[name]}")
    try:
        x = float(value)
    except OverflowError:  # an integer beyond the float range
        x = math.inf
    return fields.check_range(name, x, value)


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
    ls = spec.line_spec(ln)
    if ls.is_first and pg > 0:
        raise _bad(
            "prior_gbq",
            prior_gbq,
            "0 for I-PRRT (the initial course); a patient with earlier PRRT is on line R-PRRT or "
            "RR-PRRT",
        )
    if ls.selected_after is not None:  # a retreatment: selected on the previous line's PFS
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
    if x is not None and not ls.is_first and x > PRIOR_PFS_DATA_MAX:
        kinds.append(f"prior_pfs_above_data:{ln}")
        notes.append(
            f"prior_pfs_months={x:g} is beyond the {PRIOR_PFS_DATA_MAX:g} months the calibration "
            "data can cover (Rotterdam I-PRRT PFS medians 25-52 months, median follow-up 88.6): "
            "the prior-PFS effect is extrapolated"
        )
    re_x = rng.get("re188_prior_pfs")
    if x is not None and not ls.is_first and not ls.adds_lu177 and re_x is not None:
        if not (re_x[1] <= x <= re_x[2]):  # 188Re-HEDP: the pilot's interval range
            kinds.append(f"re188_prior_pfs_outside_range:{ln}")
            notes.append(
                f"prior_pfs_months={x:g} is outside the {re_x[1]:g}-{re_x[2]:g} months from the "
                "previous treatment to 188Re-HEDP in the pilot (its only prior-PFS information; "
                "no per-patient values): the prior-PFS effect is extrapolated"
            )
    if ls.is_first:
        after = [k for k, v in spec.LINE_SPECS.items() if v.selected_after == ln]
        thr_1 = rng["prior_pfs_min"][after[0]]  # the retreatment selected on this line's PFS
        kinds.append(f"first_line_truncated:{ln}")
        notes.append(
            f"the first-line calibration rows describe patients selected for a first-line PFS "
            f">= {thr_1:g} months (Rotterdam Table 5: every group with a published I-PRRT row "
            f"was selected on it), so the {ln} curve below {thr_1:g} months is extrapolated by "
            "the survival family's shape"
        )
    lo, hi = rng["planned_gbq"][ln]
    if not (lo <= pl <= hi):
        kinds.append(f"planned_gbq_outside_range:{ln}")
        notes.append(
            f"planned_gbq={pl:g} is outside the calibrated {ln} activity range {lo:g}-{hi:g} GBq"
        )
    if ls.selected_after is not None:
        clo, chi = rng["cumulative_gbq"]
        cum = pg + pl
        if not (clo <= cum <= chi):
            kinds.append(f"cumulative_gbq_outside_range:{ln}")
            notes.append(
                f"cumulative 177Lu activity prior_gbq + planned_gbq = {cum:g} GBq is outside "
                f"the calibrated range {clo:g}-{chi:g} GBq"
            )
    if not ls.adds_lu177:  # 188Re-HEDP: the pilot's ranges
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
        prior_pfs_months=None if ls.is_first else x,
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
    if "re188_prior_pfs" in cal:
        out["re188_prior_pfs"] = tuple(float(x) for x in cal["re188_prior_pfs"])
    else:  # a card written before the entry existed: the packaged pilot's
        from netbayes.calibration import re188

        out["re188_prior_pfs"] = re188.prior_pfs_interval()
    return out


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
    unknown = sorted(set(df.columns) - set(FIELDS), key=str)
    if unknown:
        hints = "".join(
            f"; {c!r}:{hint[1:]}" for c in unknown if (hint := fields.suggest(c, list(FIELDS)))
        )
        raise ValueError(f"df has unknown column(s) {unknown}{hints}; allowed: {list(FIELDS)}")
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


def _table_records(df: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """The rows of a checked patient table (:func:`_check_frame`) as normalised records
    (:func:`_normalise_record`), read column by column."""
    columns = {k: df[k].tolist() for k in FIELDS if k in df.columns}
    for i in range(len(df)):
        yield _normalise_record({k: v[i] for k, v in columns.items()})


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
    return calibration.default_activities(line)
