"""Shared validators of user-supplied numbers and tables: units, ranges, finiteness and types.

One place for the rules every value a user gives netbayes must meet, whether it is a
prediction input (:func:`netbayes.predict.validate_patient`) or a row of fitting data (a
survival patient table, :func:`netbayes.models.survival.validate_patients`; graded toxicity
records, :func:`netbayes.models.toxicity.validate_user_data`):

* **Numbers** are real integers or floats: not a boolean (``True`` is not 1), a string, a date
  or a duration (a ``Timedelta`` is not a number of months), finite, and inside the
  plausibility limits of their field (:data:`LIMITS`). A value outside is an input error, most
  likely a wrong unit: the error names the field (and the row of a table), the value and the
  allowed range, and says which unit mistake the value looks like (MBq or mCi given as GBq,
  days given as months).
* **Integers** (:data:`INTEGER_LIMITS`: treatment cycle, CTCAE grade) hold whole numbers
  (``2.0`` is 2; ``2.5``, ``True`` and ``1e20`` are refused).
* **Tables** have no unknown column: a misspelled one is refused with the closest known name
  (:func:`check_columns`), never dropped silently.
* **Labels** (patient ids) are never merged silently: ``1`` and ``"1"`` in one column are
  refused as ambiguous (:func:`label_column`).

The limits are plausibility limits (what a value can be), wider than the published data (what
the calibration cohorts covered, :func:`netbayes.calibration.calibrated_ranges`). A value inside
the limits but outside the data is allowed: prediction then warns
(``ExtrapolationWarning``); fitting data simply extend the model's data.

========================  ======  ======================  ====================================
field                     unit    allowed                 published data (the margin's basis)
========================  ======  ======================  ====================================
``time_months``           months  > 0 and <= 600          Rotterdam median follow-up 88.6, OS
                                                          medians up to 81 (CI to 106)
``prior_pfs_months``      months  >= 1 day and <= 600     R-PRRT selected at >= 18, RR-PRRT at
                                                          >= 14; I-PRRT PFS medians 25-52
``prior_gbq``             GBq     >= 0 and <= 200         0-96.7 (188Re pilot: 29.6-96.7)
``planned_gbq``           GBq     > 0 and <= 60           Rotterdam phases 3.7-30.7, 188Re
                                                          2.8-7.8
``cumulative_gbq``        GBq     >= 0 and <= 200         26.3-60.5 after R-PRRT / RR-PRRT
``activity_gbq``          GBq     >= 0 and <= 60          per block as ``planned_gbq``
``cycle``                 -       integer 1-100           1-4 per phase
``grade``                 -       integer 0-4             CTCAE 0-IV
========================  ======  ======================  ====================================

The margins: 600 months is 50 years (no PFS, OS or follow-up can be longer); 60 GBq in one
line is eight 7.4-GBq cycles and 200 GBq in all is 27 cycles, both far beyond any reported
practice (the largest published cumulative activity is 96.7 GBq), while 1000 times a plausible
activity (MBq) or 27 times (mCi) lands outside them.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from netbayes._lazy import LazyModule, loaded
from netbayes.intervals import _show

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = [
    "INTEGER_LIMITS",
    "LIMITS",
    "MIN_PRIOR_PFS_MONTHS",
    "Limit",
    "allowed_range",
    "bad",
    "check_columns",
    "check_range",
    "integer_column",
    "label_column",
    "number_column",
    "suggest",
    "unit_mistake",
]

MIN_PRIOR_PFS_MONTHS = 1.0 / 30.4
"""The smallest plausible prior PFS: one day (30.4 days a month). Anything shorter is an input
error (most likely a wrong unit), and the formulas cannot represent a PFS near zero."""

DAYS_PER_MONTH = 365.25 / 12
"""Days in a month, for the "this looks like days" hint."""

_UNIT_TEXT = {
    "months": "months (not days or years)",
    "GBq": "GBq (1 GBq = 1000 MBq = 27 mCi)",
}


@dataclass(frozen=True)
class Limit:
    """The plausibility limits of a number field.

    Attributes
    ----------
    lo, hi : float
        Lower and upper limit (the upper one inclusive).
    unit : {"months", "GBq"}
        The field's unit.
    strict_lo : bool
        Whether the lower limit itself is excluded (``> lo``).
    what : str
        What the field holds, as the error message says it (default "a finite number").
    lo_note : str
        Printed after the lower limit instead of the unit (e.g. "(one day)").
    """

    lo: float
    hi: float
    unit: str
    strict_lo: bool = False
    what: str = "a finite number"
    lo_note: str = ""


LIMITS: dict[str, Limit] = {
    "prior_pfs_months": Limit(MIN_PRIOR_PFS_MONTHS, 600.0, "months", lo_note="(one day)"),
    "time_months": Limit(0.0, 600.0, "months", strict_lo=True, what="a finite time"),
    "prior_gbq": Limit(0.0, 200.0, "GBq"),
    "planned_gbq": Limit(0.0, 60.0, "GBq", strict_lo=True),
    "cumulative_gbq": Limit(0.0, 200.0, "GBq", what="a finite cumulative activity"),
    "activity_gbq": Limit(0.0, 60.0, "GBq", what="a finite activity"),
}
"""Plausibility limits of every number field (see the module docstring's table)."""

INTEGER_LIMITS: dict[str, tuple[int, int, str]] = {
    "cycle": (1, 100, "treatment block number within the patient"),
    "grade": (0, 4, "worst CTCAE grade after the block"),
}
"""Integer fields: inclusive limits and what the field holds."""

_TIME_TYPES = (
    _dt.date,
    _dt.datetime,
    _dt.timedelta,
    np.datetime64,
    np.timedelta64,
)
"""Date and duration types (pandas' ``Timestamp`` and ``Timedelta`` subclass ``datetime`` and
``timedelta``); pandas' ``Period`` is added by :func:`_time_types` once pandas is loaded (a
value cannot be one before)."""


def _time_types() -> tuple[type, ...]:
    pandas = loaded("pandas")
    return _TIME_TYPES if pandas is None else (*_TIME_TYPES, pandas.Period)


# ----------------------------------------------------------------------------------------------
# messages
# ----------------------------------------------------------------------------------------------
def bad(field: str, value: Any, allowed: str, row: Any = None) -> ValueError:
    """The error of a refused value: ``field=value (row r) is not allowed; expected allowed``.

    Parameters
    ----------
    field : str
        The field (column, argument or CLI flag).
    value : object
        The value refused (NumPy scalars are shown as Python values).
    allowed : str
        What is allowed.
    row : object, optional
        The row (index label) of a table.

    Returns
    -------
    ValueError
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(row, np.generic):
        row = row.item()
    where = f" (row {row!r})" if row is not None else ""
    return ValueError(f"{field}={_show(value)}{where} is not allowed; expected {allowed}")


def allowed_range(field: str) -> str:
    """What :data:`LIMITS` allows for ``field``, in words (with its unit)."""
    lim = LIMITS[field]
    op = ">" if lim.strict_lo else ">="
    lo = f"{lim.lo:.3g} {lim.lo_note or lim.unit}"
    return f"{lim.what} {op} {lo} and <= {lim.hi:g} {_UNIT_TEXT[lim.unit]}"


def unit_mistake(field: str, x: float) -> str:
    """The unit mistake a refused value of ``field`` looks like, as a clause ("" if none).

    A GBq value 1000 (MBq) or 27 (mCi) times a plausible one, or a months value 30.4 times
    (days) a plausible one, is named with its conversion.
    """
    lim = LIMITS.get(field)
    if lim is None or not math.isfinite(x) or x <= lim.hi:
        return ""

    def inside(v: float) -> bool:
        return (v > lim.lo if lim.strict_lo else v >= lim.lo) and v <= lim.hi

    if lim.unit == "GBq":
        for factor, unit in ((1000.0, "MBq"), (27.0, "mCi")):
            if inside(x / factor):
                return f"; {x:g} looks like {unit} ({x:g} {unit} = {x / factor:.4g} GBq)"
    elif lim.unit == "months":
        if inside(x / DAYS_PER_MONTH):
            return f"; {x:g} looks like days ({x:g} days = {x / DAYS_PER_MONTH:.4g} months)"
    return ""


def suggest(value: Any, choices: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (difflib), or ``""``."""
    if not isinstance(value, str):
        return ""
    close = difflib.get_close_matches(value.strip(), list(choices), n=1, cutoff=0.6)
    if not close:
        low = {c.lower(): c for c in choices}
        close = [low[value.strip().lower()]] if value.strip().lower() in low else []
    return f"; did you mean {close[0]!r}?" if close else ""


# ----------------------------------------------------------------------------------------------
# one value
# ----------------------------------------------------------------------------------------------
def check_range(field: str, x: float, value: Any = None, row: Any = None) -> float:
    """Return ``x`` if it is finite and inside :data:`LIMITS` ``[field]``, else raise.

    Parameters
    ----------
    field : str
        A key of :data:`LIMITS`.
    x : float
        The value as a float (``inf`` for an integer beyond the float range).
    value : object, optional
        The value as given (shown in the error; default ``x``).
    row : object, optional
        The row of a table.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Naming the field, the row, the value, the allowed range and the likely unit mistake.
    """
    lim = LIMITS[field]
    low_ok = x > lim.lo if lim.strict_lo else x >= lim.lo
    if not math.isfinite(x) or not low_ok or x > lim.hi:
        shown = x if value is None else value
        raise bad(field, shown, allowed_range(field) + unit_mistake(field, x), row)
    return x


def _is_missing(v: Any) -> bool:
    if v is None:
        return True
    pandas = loaded("pandas")  # pd.NA and pd.NaT exist only once pandas is loaded
    if pandas is not None and (v is pandas.NA or v is pandas.NaT):
        return True
    if isinstance(v, (float, np.floating)):
        return bool(np.isnan(v))
    return False


def _not_a_number(v: Any) -> str | None:
    """Why ``v`` (not missing) is not a plain real number, or None if it is one."""
    if isinstance(v, (bool, np.bool_)):
        return "a number, not a boolean (True is not 1)"
    if isinstance(v, _time_types()):
        return (
            f"a plain number, not a {type(v).__name__} (dates and durations are not converted: "
            "give the value as a number in the field's unit)"
        )
    if isinstance(v, (int, float, np.integer, np.floating)):
        return None
    return f"a number, not {type(v).__name__}"


# ----------------------------------------------------------------------------------------------
# table columns
# ----------------------------------------------------------------------------------------------
def check_columns(
    df: pd.DataFrame,
    name: str,
    required: Sequence[str],
    optional: Sequence[str],
    see: str,
) -> None:
    """Refuse a table that lacks a required column or has one that is not known.

    Parameters
    ----------
    df : pandas.DataFrame
        The table.
    name : str
        What the table is (``"patients"``, ``"user_data"``), for the messages.
    required, optional : sequence of str
        The known columns.
    see : str
        Where the columns are documented.

    Raises
    ------
    TypeError
        ``df`` is not a DataFrame.
    ValueError
        A missing or an unknown column (with the closest known name), or no rows.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name} is missing column(s) {missing}; required: {list(required)}, optional: "
            f"{', '.join(optional)} (see {see})"
        )
    known = [*required, *optional]
    unknown = [c for c in df.columns if c not in known]
    if unknown:
        hints = "".join(
            f"; {c!r}: did you mean {m[0]!r}?"
            for c in unknown
            if isinstance(c, str) and (m := difflib.get_close_matches(c, known, n=1, cutoff=0.6))
        )
        raise ValueError(
            f"{name} has unknown column(s) {unknown}{hints}; allowed: {known} (see {see}). "
            "Nothing is dropped silently: rename a misspelled column, or drop the columns the "
            f"model does not use (df.drop(columns={unknown!r}))"
        )
    if not df.columns.is_unique:
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise ValueError(f"{name} has duplicated column(s) {dup}; expected each column once")
    if len(df) == 0:
        raise ValueError(f"{name} has no rows; expected at least one")


def number_column(df: pd.DataFrame, col: str, field: str | None = None) -> pd.Series:
    """A table column of numbers as floats (NaN where missing), every value checked.

    Parameters
    ----------
    df : pandas.DataFrame
        The table (its index labels the rows in errors).
    col : str
        The column; absent: all NaN.
    field : str, optional
        Its key in :data:`LIMITS` (default ``col``).

    Returns
    -------
    pandas.Series
        Float values (NaN for a missing cell: None, NaN, pd.NA, NaT); the caller decides
        where a missing value is allowed.

    Raises
    ------
    ValueError
        Naming the column, the row, the value and what is allowed: a boolean, string, date or
        duration, an infinite value, or one outside the limits (with the likely unit mistake).
    """
    field = col if field is None else field
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype=float)
    s = df[col]
    values = s.tolist()
    dtype = s.dtype
    plain = (
        pd.api.types.is_numeric_dtype(dtype)
        and not pd.api.types.is_bool_dtype(dtype)
        and not pd.api.types.is_complex_dtype(dtype)
    )
    if not plain:  # object, string, boolean, date, duration, categorical...: cell by cell
        for lab, v in zip(s.index, values, strict=True):
            if _is_missing(v):
                continue
            why = _not_a_number(v)
            if why is None and isinstance(v, complex):
                why = "a real number"
            if why is not None:
                raise bad(col, v, f"{why}: {allowed_range(field)}", lab)
    x = pd.Series(
        [math.nan if _is_missing(v) else _as_float(v) for v in values], index=s.index, dtype=float
    )
    lim = LIMITS[field]
    ok = x.isna() | (
        np.isfinite(x) & ((x > lim.lo) if lim.strict_lo else (x >= lim.lo)) & (x <= lim.hi)
    )
    if not ok.all():
        lab = ok[~ok].index[0]
        check_range(field, float(x[lab]), s[lab], lab)  # raises
    return x


def _as_float(v: Any) -> float:
    try:
        return float(v)
    except OverflowError:  # an integer beyond the float range
        return math.inf if v > 0 else -math.inf


def integer_column(df: pd.DataFrame, col: str) -> pd.Series:
    """A table column of whole numbers (:data:`INTEGER_LIMITS`) as int64, every value checked.

    Raises
    ------
    ValueError
        Naming the column, the row, the value and what is allowed: missing, a boolean, a
        string, a fraction, or outside the limits (``cycle=1e20`` is refused, not wrapped).
    """
    lo, hi, what = INTEGER_LIMITS[col]
    allowed = f"an integer {lo}-{hi} ({what})"
    s = df[col]
    out = np.empty(len(s), dtype=np.int64)
    for k, (lab, v) in enumerate(zip(s.index, s.tolist(), strict=True)):
        if _is_missing(v):
            raise bad(col, v, f"{allowed}, not missing", lab)
        why = _not_a_number(v)
        if why is not None:
            raise bad(col, v, f"{allowed}: {why}", lab)
        x = _as_float(v)
        if not math.isfinite(x) or x != round(x) or not (lo <= x <= hi):
            raise bad(col, v, allowed, lab)
        out[k] = int(x)
    return pd.Series(out, index=s.index)


def label_column(df: pd.DataFrame, col: str) -> pd.Series:
    """Identifiers (e.g. patient ids) as strings, never merging two different values.

    A missing id is refused; so are two different values with the same text (``1`` and
    ``"1"``, ``1`` and ``1.0``) and a boolean id: they would silently become one patient.

    Returns
    -------
    pandas.Series
        The ids as ``str`` (the text of each value).

    Raises
    ------
    ValueError
        Naming the column, the row, the value and what is allowed.
    """
    s = df[col]
    seen: dict[str, tuple[str, Any]] = {}
    out = []
    for lab, v in zip(s.index, s.tolist(), strict=True):
        if _is_missing(v) or (isinstance(v, str) and not v.strip()):
            raise bad(col, v, "an identifier (text or integer), not missing", lab)
        if isinstance(v, (bool, np.bool_)) or isinstance(v, (float, np.floating)):
            raise bad(col, v, "an identifier: text or an integer (not a boolean or a float)", lab)
        text = str(v)
        kind = (
            "int"
            if isinstance(v, (int, np.integer))
            else "str"
            if isinstance(v, str)
            else type(v).__name__
        )
        if text in seen and seen[text][0] != kind:
            raise bad(
                col,
                v,
                f"unambiguous identifiers: {_show(seen[text][1])} (another row) and {_show(v)} "
                "would become the same patient; give every id the same type (all text or all "
                "integers)",
                lab,
            )
        seen.setdefault(text, (kind, v))
        out.append(text)
    return pd.Series(out, index=s.index, dtype=object)
