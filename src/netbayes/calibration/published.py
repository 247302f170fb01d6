"""Published cohorts given by the user: the row layout of ``docs/published_cohorts.md``.

:func:`load_published` reads survival rows (KM medians of PFS/OS) and toxicity rows (grade
counts) from CSV files or pandas DataFrames, validates every cell and returns them typed and
normalised in a :class:`PublishedStudies`. :func:`check_new_studies` refuses a study id that is
already packaged or given twice: studies are added, never replaced. :func:`rotterdam_as_published`
gives the packaged Rotterdam Table 5 rows in the same layout (NumPy/pandas only, no PyMC).
"""

from __future__ import annotations

import csv
import datetime as _dt
import difflib
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from netbayes import fields, vocab
from netbayes._lazy import LazyModule
from netbayes.calibration import rotterdam
from netbayes.cohorts import wald_se
from netbayes.spec import FIRST_LINE, GBQ_REF

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = LazyModule("pandas")  # imported on first use: not on the prediction path

__all__ = [
    "SURVIVAL_COLUMNS",
    "TOXICITY_COLUMNS",
    "PublishedDataError",
    "PublishedStudies",
    "check_new_studies",
    "default_mix",
    "frames_of",
    "load_published",
    "rotterdam_as_published",
]

MAX_MONTHS = fields.LIMITS["time_months"].hi
"""Largest time accepted in a ``_months`` column (600: 50 years; :data:`netbayes.fields.LIMITS`,
shared with users' patient tables and prediction input)."""
MAX_GBQ = fields.LIMITS["cumulative_gbq"].hi
"""Largest activity accepted in a ``_gbq`` column (200; :data:`netbayes.fields.LIMITS`); more
looks like MBq."""

ENDPOINTS = ("pfs", "os")
TOXICITY_CELL_LINES = (*vocab.CELL_LINES, "any")
TOXICITY_GRADES = ("3", "4", "3+")
SE_SOURCES = ("given", "symmetric", "upper", "missing")
KINDS = ("survival", "toxicity")
MIX_COLUMNS = tuple(f"mix_{t}" for t in vocab.TUMOUR_TYPES)
_MISSING = frozenset({"", "na", "nan", "n/a"})
_PROVENANCE = ("source", "table", "printed")

SURVIVAL_COLUMNS: tuple[str, ...] = (
    "study",
    "row_id",
    "endpoint",
    "line",
    "group",
    "tumour_type",
    "n",
    "median_months",
    "se_months",
    "se_source",
    "ci95_lower_months",
    "ci95_upper_months",
    "selection_min_prior_pfs_months",
    "cumulative_gbq",
    "followup_months",
    *MIX_COLUMNS,
    "mix_default",
    *_PROVENANCE,
)
"""The columns of :attr:`PublishedStudies.survival`, in order."""

TOXICITY_COLUMNS: tuple[str, ...] = (
    "study",
    "row_id",
    "line",
    "cell_line",
    "grade",
    "count",
    "n",
    "planned_gbq",
    "prior_gbq",
    "ctcae_version",
    *_PROVENANCE,
)
"""The columns of :attr:`PublishedStudies.toxicity`, in order."""

_COMMON = frozenset({"study", "row_id", "line", "n", *_PROVENANCE})
_SURV_REQUIRED = ("study", "row_id", "endpoint", "line", "tumour_type", "n", "median_months")
_TOX_REQUIRED = (
    "study",
    "row_id",
    "line",
    "cell_line",
    "grade",
    "count",
    "n",
    "planned_gbq",
    "prior_gbq",
)
_SURV_ONLY = frozenset(SURVIVAL_COLUMNS) - _COMMON
_TOX_ONLY = frozenset(TOXICITY_COLUMNS) - _COMMON
_KNOWN = ("kind", *SURVIVAL_COLUMNS, *(c for c in TOXICITY_COLUMNS if c not in SURVIVAL_COLUMNS))


class PublishedDataError(ValueError):
    """A published-cohort row does not match the layout of ``docs/published_cohorts.md``.

    Attributes
    ----------
    source : str or None
        The file name, or ``"DataFrame"`` (or the ``name`` given to :func:`load_published`).
    row : int, object or None
        The line number in the file (the header is line 1), or the DataFrame's index label.
    column : str or None
        The column, when the problem is in one column.
    value : object
        The offending value, when there is one.
    """

    def __init__(
        self,
        source: str | None,
        message: str,
        *,
        row: str | None = None,
        row_key: Any = None,
        column: str | None = None,
        value: Any = None,
    ):
        self.source, self.row, self.column, self.value = source, row_key, column, value
        where = [source] if source else []
        if row is not None:
            where.append(row)
        if column is not None:
            where.append(f"column {column!r}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


@dataclass(frozen=True)
class PublishedStudies:
    """Published cohorts, validated, typed and normalised (``docs/published_cohorts.md``).

    Attributes
    ----------
    survival : pandas.DataFrame
        One row per published KM median, columns :data:`SURVIVAL_COLUMNS`: defaults filled
        (``group`` retreatment, ``cumulative_gbq`` the reference 44.7 GBq,
        ``selection_min_prior_pfs_months`` 0 = no rule), ``se_months`` derived from the CI
        where not given (``se_source``), ``mix_<type>`` proportions on ``all`` rows (the
        Rotterdam retreatment mix where none was given: ``mix_default``; NaN on fine-type rows).
    toxicity : pandas.DataFrame
        One row per published grade count, columns :data:`TOXICITY_COLUMNS`.
    studies : tuple of str
        The study ids, in order of first appearance.
    notes : list of str
        The assumptions applied (defaults filled in), one sentence each.
    """

    survival: pd.DataFrame
    toxicity: pd.DataFrame
    studies: tuple[str, ...]
    notes: list[str] = field(default_factory=list)

    def rows_of(self, study: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The survival and toxicity rows of one study."""
        if study not in self.studies:
            raise KeyError(f"study {study!r} is not here; studies: {', '.join(self.studies)}")
        return (
            self.survival[self.survival["study"] == study].reset_index(drop=True),
            self.toxicity[self.toxicity["study"] == study].reset_index(drop=True),
        )


def default_mix() -> dict[str, float]:
    """The default tumour mix of an ``all`` row: the Rotterdam retreated I-PRRT/R-PRRT cohort
    (Table 5), as proportions over the fine types."""
    counts = rotterdam.cohort_mix()["I-PRRT/R-PRRT"]
    tot = sum(counts.get(t, 0.0) for t in vocab.TUMOUR_TYPES)
    return {t: counts.get(t, 0.0) / tot for t in vocab.TUMOUR_TYPES}


# ---------------------------------------------------------------------------------------------
# reading the sources
# ---------------------------------------------------------------------------------------------
@dataclass
class _Source:
    label: str
    frame: pd.DataFrame
    rows: list[str]  # "line 5" / "row 'r2'" per row
    keys: list[Any]  # line numbers / index labels
    is_file: bool


def _read_csv(path: str | os.PathLike[str], label: str | None) -> _Source:
    p = Path(path)
    label = label or p.name
    if not p.is_file():
        raise PublishedDataError(label, f"file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise PublishedDataError(label, f"is not UTF-8 text ({err})") from err
    lines = text.splitlines()
    skip = 0
    while skip < len(lines) and lines[skip].lstrip().startswith("#"):
        skip += 1  # leading comment lines (e.g. "# SIMULATED numbers")
    if skip == len(lines) or not lines[skip].strip():
        raise PublishedDataError(label, "has no header line")
    header = next(csv.reader([lines[skip]]))
    dup = sorted({c for c in header if header.count(c) > 1})
    if dup:
        raise PublishedDataError(label, f"duplicate column(s) {dup} in the header", row=None)
    try:
        raw = pd.read_csv(
            io.StringIO(text),
            skiprows=skip,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            skip_blank_lines=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise PublishedDataError(label, f"cannot be parsed as CSV ({err})") from err
    keys = [i + skip + 2 for i in range(len(raw))]  # the header is line skip + 1
    blank = raw.apply(lambda r: all(str(v).strip() == "" for v in r), axis=1).to_numpy(bool)
    raw = raw.loc[~blank].reset_index(drop=True)
    keys = [k for k, b in zip(keys, blank, strict=True) if not b]
    return _Source(label, raw, [f"line {k}" for k in keys], keys, True)


def _read_frame(frame: pd.DataFrame, label: str | None) -> _Source:
    label = label or "DataFrame"
    bad = [c for c in frame.columns if not isinstance(c, str)]
    if bad:
        raise PublishedDataError(label, f"column names must be text; got {bad[0]!r}")
    if frame.columns.duplicated().any():
        dup = sorted(set(frame.columns[frame.columns.duplicated()]))
        raise PublishedDataError(label, f"duplicate column(s) {dup}")
    keys = list(frame.index)
    return _Source(label, frame, [f"row {k!r}" for k in keys], keys, False)


def _sources(source: Any, name: str | None) -> list[_Source]:
    if isinstance(source, pd.DataFrame):
        return [_read_frame(source, name)]
    if isinstance(source, (str, os.PathLike)):
        return [_read_csv(source, name)]
    if isinstance(source, Sequence) and not isinstance(source, (bytes, str)):
        if not source:
            raise PublishedDataError(name, "no sources given (an empty list)")
        out = []
        for i, s in enumerate(source):
            if isinstance(s, (pd.DataFrame, str, os.PathLike)):
                out.extend(_sources(s, None if name is None else f"{name}[{i}]"))
            else:
                raise TypeError(
                    f"source[{i}] is a {type(s).__name__}; expected a CSV path or a DataFrame"
                )
        return out
    raise TypeError(
        f"source is a {type(source).__name__}; expected a CSV path, a pandas DataFrame or a "
        "list of them"
    )


# ---------------------------------------------------------------------------------------------
# cells
# ---------------------------------------------------------------------------------------------
_TIME_TYPES = (  # pandas' Timestamp and Timedelta subclass datetime and timedelta
    _dt.date,
    _dt.datetime,
    _dt.time,
    _dt.timedelta,
    np.datetime64,
    np.timedelta64,
)


class _Cell:
    """Converts the cells of one source, raising errors that name source, row and column."""

    def __init__(self, src: _Source):
        self.src = src

    def fail(self, i: int, col: str | None, value: Any, expected: str) -> None:
        v = value
        raise PublishedDataError(
            self.src.label,
            f"value {v!r} is not allowed; expected {expected}",
            row=self.src.rows[i],
            row_key=self.src.keys[i],
            column=col,
            value=v,
        )

    def rule(self, i: int, col: str | None, value: Any, message: str) -> None:
        raise PublishedDataError(
            self.src.label,
            message,
            row=self.src.rows[i],
            row_key=self.src.keys[i],
            column=col,
            value=value,
        )

    @staticmethod
    def missing(v: Any) -> bool:
        if v is None or v is pd.NA:
            return True
        if isinstance(v, (float, np.floating)) and math.isnan(v):
            return True
        return isinstance(v, str) and v.strip().lower() in _MISSING

    def _time(self, i: int, col: str, v: Any) -> None:
        if v is pd.NaT or isinstance(v, _TIME_TYPES):
            self.fail(
                i,
                col,
                v,
                "a plain number (times and dates are not converted: give months as a number)",
            )

    def text(self, i: int, col: str, v: Any) -> str | None:
        if self.missing(v):
            return None
        self._time(i, col, v)
        if isinstance(v, (bool, np.bool_)):
            self.fail(i, col, v, "text")
        if isinstance(v, (int, np.integer)):
            return str(int(v))
        if not isinstance(v, str):
            self.fail(i, col, v, "text")
        return v.strip()

    def level(self, i: int, col: str, v: Any, levels: Sequence[str]) -> str | None:
        if self.missing(v):
            return None
        if col == "grade" and isinstance(v, (int, np.integer, float, np.floating)):
            if not isinstance(v, (bool, np.bool_)) and float(v) in (3.0, 4.0):
                return str(int(v))
        if not isinstance(v, str) or v.strip() not in levels:
            self.fail(i, col, v, f"one of {', '.join(levels)}")
        return v.strip()

    def number(self, i: int, col: str, v: Any, integer: bool = False) -> float:
        what = "an integer" if integer else "a number"
        if self.missing(v):
            return math.nan
        self._time(i, col, v)
        if isinstance(v, (bool, np.bool_)):
            self.fail(i, col, v, f"{what} (a boolean is not a number: True is not 1)")
        if isinstance(v, (int, np.integer, float, np.floating)):
            x = float(v)
        elif isinstance(v, str):
            try:
                x = float(v.strip())
            except ValueError:
                self.fail(i, col, v, what)
        else:
            self.fail(i, col, v, what)
        if not math.isfinite(x):
            self.fail(i, col, v, f"{what} (finite)")
        if integer and x != round(x):
            self.fail(i, col, v, what)
        return x

    def boolean(self, i: int, col: str, v: Any) -> bool | None:
        if self.missing(v):
            return None
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
        self.fail(i, col, v, "true or false (not a number: 1 is not True)")
        return None  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# columns and rows
# ---------------------------------------------------------------------------------------------
def _check_columns(src: _Source) -> None:
    for c in src.frame.columns:
        if c not in _KNOWN:
            close = difflib.get_close_matches(c, _KNOWN, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise PublishedDataError(
                src.label,
                f"unknown column {c!r}{hint} (known columns: {', '.join(_KNOWN)}; see "
                "docs/published_cohorts.md)",
                column=c,
            )
        if not src.is_file:
            dtype = src.frame[c].dtype
            if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(
                dtype
            ):
                cell = _Cell(src)
                vals = src.frame[c].tolist()
                i = next((k for k, v in enumerate(vals) if v is not pd.NaT), 0)
                cell.fail(i, c, vals[i] if vals else None, "a plain number, not a time or date")


def _kinds(src: _Source) -> list[str]:
    cols = set(src.frame.columns)
    cell = _Cell(src)
    if "kind" in cols:
        kinds = [cell.level(i, "kind", v, KINDS) for i, v in enumerate(src.frame["kind"].tolist())]
        for i, k in enumerate(kinds):
            if k is None:
                cell.fail(i, "kind", src.frame["kind"].iloc[i], "one of survival, toxicity")
        return [str(k) for k in kinds]
    surv, tox = "endpoint" in cols, "cell_line" in cols
    if surv == tox:
        raise PublishedDataError(
            src.label,
            "cannot tell survival rows from toxicity rows: give a 'kind' column (survival / "
            "toxicity), or only survival columns ('endpoint', ...) or only toxicity columns "
            "('cell_line', ...)",
        )
    return ["survival" if surv else "toxicity"] * len(src.frame)


def _require_columns(src: _Source, kinds: list[str]) -> None:
    cols = set(src.frame.columns)
    for kind, required in (("survival", _SURV_REQUIRED), ("toxicity", _TOX_REQUIRED)):
        if kind in kinds:
            miss = [c for c in required if c not in cols]
            if miss:
                raise PublishedDataError(
                    src.label,
                    f"missing required column {miss[0]!r} ({kind} rows need {', '.join(required)})",
                    column=miss[0],
                )


def _survival_row(
    cell: _Cell, i: int, r: Mapping[str, Any], key: str, notes: list[str]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["endpoint"] = cell.level(i, "endpoint", r.get("endpoint"), ENDPOINTS)
    out["line"] = cell.level(i, "line", r.get("line"), vocab.LINES)
    out["group"] = cell.level(i, "group", r.get("group"), vocab.GROUPS) or "retreatment"
    out["tumour_type"] = cell.level(
        i, "tumour_type", r.get("tumour_type"), vocab.SUMMARY_TUMOUR_TYPES
    )
    for c in ("endpoint", "line", "tumour_type"):
        if out[c] is None:
            cell.fail(i, c, r.get(c), "a value (this column is required)")
    if out["group"] == "control" and out["line"] != FIRST_LINE:
        cell.fail(
            i,
            "group",
            r.get("group"),
            f"'retreatment' on line {out['line']} (a control group is first-line patients: "
            f"only on {FIRST_LINE})",
        )
    n = cell.number(i, "n", r.get("n"), integer=True)
    if math.isnan(n) or n < 1:
        cell.fail(i, "n", r.get("n"), "an integer >= 1")
    out["n"] = int(n)

    def months(col: str, positive: bool) -> float:
        x = cell.number(i, col, r.get(col))
        if not math.isnan(x):
            if (x <= 0) if positive else (x < 0):
                cell.fail(i, col, r.get(col), f"a number {'>' if positive else '>='} 0 months")
            if x > MAX_MONTHS:
                cell.fail(i, col, r.get(col), f"at most {MAX_MONTHS:g} months")
        return x

    med = months("median_months", True)
    se = months("se_months", True)
    lo = months("ci95_lower_months", False)
    hi = months("ci95_upper_months", True)
    if math.isnan(lo) != math.isnan(hi):
        col = "ci95_upper_months" if math.isnan(hi) else "ci95_lower_months"
        cell.rule(
            i, col, r.get(col), "ci95_lower_months and ci95_upper_months: give both or neither"
        )
    if not math.isnan(lo):
        if math.isnan(med):
            cell.rule(i, "median_months", r.get("median_months"), "a CI is given without a median")
        if lo > med:
            cell.rule(
                i,
                "ci95_lower_months",
                r.get("ci95_lower_months"),
                f"ci95_lower_months {lo:g} exceeds median_months {med:g}",
            )
        if med > hi:
            cell.rule(
                i,
                "ci95_upper_months",
                r.get("ci95_upper_months"),
                f"median_months {med:g} exceeds ci95_upper_months {hi:g}",
            )
    given_source = cell.level(i, "se_source", r.get("se_source"), SE_SOURCES)
    if not math.isnan(se):
        if given_source == "missing":
            cell.rule(i, "se_source", "missing", "se_source is 'missing' but se_months is given")
        source = given_source or "given"
    else:
        d_se, d_src = wald_se([med], [lo], [hi])
        se, source = float(d_se[0]), str(d_src[0])
        if given_source is not None and given_source != source:
            cell.fail(i, "se_source", r.get("se_source"), f"{source!r} (from the CI) or empty")
    out.update(
        median_months=med,
        se_months=se,
        se_source=source,
        ci95_lower_months=lo,
        ci95_upper_months=hi,
    )
    if math.isnan(med):
        notes.append(f"row {key} has no median: it adds nothing")
    sel = months("selection_min_prior_pfs_months", False)
    if not math.isnan(sel) and sel > 0 and out["line"] == FIRST_LINE:
        cell.fail(
            i,
            "selection_min_prior_pfs_months",
            r.get("selection_min_prior_pfs_months"),
            f"0 or empty ({FIRST_LINE} has no previous line to select on)",
        )
    out["selection_min_prior_pfs_months"] = 0.0 if math.isnan(sel) else sel
    gbq = _gbq(cell, i, "cumulative_gbq", r.get("cumulative_gbq"))
    if math.isnan(gbq):
        gbq = GBQ_REF
        notes.append(f"row {key} has no cumulative_gbq: the reference {GBQ_REF:g} GBq is assumed")
    out["cumulative_gbq"] = gbq
    out["followup_months"] = months("followup_months", True)
    out.update(_mix(cell, i, r, out["tumour_type"], key, notes))
    return out


def _gbq(cell: _Cell, i: int, col: str, v: Any) -> float:
    x = cell.number(i, col, v)
    if not math.isnan(x):
        if x < 0:
            cell.fail(i, col, v, "an activity >= 0 GBq")
        if x > MAX_GBQ:
            cell.fail(i, col, v, f"an activity in GBq, at most {MAX_GBQ:g} (this looks like MBq)")
    return x


def _mix(
    cell: _Cell, i: int, r: Mapping[str, Any], tumour_type: str, key: str, notes: list[str]
) -> dict[str, Any]:
    vals = {}
    for c in MIX_COLUMNS:
        x = cell.number(i, c, r.get(c))
        if not math.isnan(x) and x < 0:
            cell.fail(i, c, r.get(c), "a count or proportion >= 0")
        vals[c] = x
    flag = cell.boolean(i, "mix_default", r.get("mix_default"))
    given = {c: x for c, x in vals.items() if not math.isnan(x)}
    if tumour_type != vocab.ALL_TUMOURS:
        if given:
            c = next(iter(given))
            cell.rule(
                i,
                c,
                r.get(c),
                f"a tumour mix is given on a {tumour_type!r} row; mix columns belong to "
                "tumour_type 'all' rows only (leave them empty)",
            )
        if flag:
            cell.fail(i, "mix_default", r.get("mix_default"), "false or empty on a fine-type row")
        return {c: math.nan for c in MIX_COLUMNS} | {"mix_default": False}
    if not given:
        if flag is False:
            cell.rule(
                i, "mix_default", r.get("mix_default"), "mix_default is false but no mix is given"
            )
        notes.append(f"row {key} has no tumour mix: the Rotterdam retreatment mix is assumed")
        mix = default_mix()
        return {f"mix_{t}": p for t, p in mix.items()} | {"mix_default": True}
    tot = sum(given.values())
    if tot <= 0:
        c = next(iter(given))
        cell.rule(i, c, r.get(c), "the tumour mix is all zero")
    return {c: given.get(c, 0.0) / tot for c in MIX_COLUMNS} | {"mix_default": bool(flag)}


def _toxicity_row(cell: _Cell, i: int, r: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    out["line"] = cell.level(i, "line", r.get("line"), vocab.LINES)
    out["cell_line"] = cell.level(i, "cell_line", r.get("cell_line"), TOXICITY_CELL_LINES)
    out["grade"] = cell.level(i, "grade", r.get("grade"), TOXICITY_GRADES)
    for c in ("line", "cell_line", "grade"):
        if out[c] is None:
            cell.fail(i, c, r.get(c), "a value (this column is required)")
    n = cell.number(i, "n", r.get("n"), integer=True)
    if math.isnan(n) or n < 1:
        cell.fail(i, "n", r.get("n"), "an integer >= 1")
    count = cell.number(i, "count", r.get("count"), integer=True)
    if math.isnan(count) or count < 0:
        cell.fail(i, "count", r.get("count"), "an integer >= 0")
    if count > n:
        cell.rule(i, "count", r.get("count"), f"count {count:g} exceeds n {n:g}")
    out["count"], out["n"] = int(count), int(n)
    for c in ("planned_gbq", "prior_gbq"):
        x = _gbq(cell, i, c, r.get(c))
        if math.isnan(x):
            cell.fail(i, c, r.get(c), "an activity in GBq (this column is required)")
        out[c] = x
    out["ctcae_version"] = cell.text(i, "ctcae_version", r.get("ctcae_version"))
    return out


def _parse(src: _Source, notes: list[str]) -> tuple[list[dict], list[dict], list[tuple]]:
    _check_columns(src)
    kinds = _kinds(src)
    _require_columns(src, kinds)
    cell = _Cell(src)
    cols = [c for c in src.frame.columns if c != "kind"]
    records = src.frame[cols].to_dict("records") if len(src.frame) else []
    surv, tox, where = [], [], []
    for i, (kind, r) in enumerate(zip(kinds, records, strict=True)):
        other = _TOX_ONLY if kind == "survival" else _SURV_ONLY
        for c in cols:
            if c in other and not cell.missing(r[c]):
                cell.rule(
                    i,
                    c,
                    r[c],
                    f"column {c!r} belongs to {'toxicity' if kind == 'survival' else 'survival'}"
                    f" rows; leave it empty on a {kind} row",
                )
        base: dict[str, Any] = {}
        for c in ("study", "row_id"):
            base[c] = cell.text(i, c, r.get(c))
            if not base[c]:
                cell.fail(i, c, r.get(c), "a value (this column is required)")
        if kind == "survival":
            key = f"{base['study']}:{base['row_id']}"
            row = base | _survival_row(cell, i, r, key, notes)
        else:
            row = base | _toxicity_row(cell, i, r)
        for c in _PROVENANCE:
            row[c] = cell.text(i, c, r.get(c))
        (surv if kind == "survival" else tox).append(row)
        where.append((base["study"], base["row_id"], src, i))
    return surv, tox, where


def _frame(rows: list[dict], columns: Sequence[str], kind: str) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(columns))
    text = ["study", "row_id", *_PROVENANCE]
    if kind == "survival":
        cats = {
            "endpoint": ENDPOINTS,
            "line": vocab.LINES,
            "group": vocab.GROUPS,
            "tumour_type": vocab.SUMMARY_TUMOUR_TYPES,
            "se_source": SE_SOURCES,
        }
        ints = ["n"]
        floats = [
            "median_months",
            "se_months",
            "ci95_lower_months",
            "ci95_upper_months",
            "selection_min_prior_pfs_months",
            "cumulative_gbq",
            "followup_months",
            *MIX_COLUMNS,
        ]
        df["mix_default"] = df["mix_default"].astype(bool)
    else:
        cats = {"line": vocab.LINES, "cell_line": TOXICITY_CELL_LINES, "grade": TOXICITY_GRADES}
        ints = ["count", "n"]
        floats = ["planned_gbq", "prior_gbq"]
        text.append("ctcae_version")
    for c, levels in cats.items():
        df[c] = pd.Categorical(df[c], categories=list(levels))
    for c in ints:
        df[c] = df[c].astype("int64")
    for c in floats:
        df[c] = df[c].astype("float64")
    for c in text:
        df[c] = df[c].astype("string")
    return df


def load_published(
    source: str | os.PathLike[str] | pd.DataFrame | Sequence[Any], *, name: str | None = None
) -> PublishedStudies:
    """Load published cohorts (survival and/or toxicity rows) and validate every cell.

    Parameters
    ----------
    source : path, pandas.DataFrame, or a list of them
        CSV files (leading ``#`` lines are comments) or DataFrames in the layout of
        ``docs/published_cohorts.md``. A ``kind`` column (``survival`` / ``toxicity``) lets one
        source hold both kinds; without it a source holds one kind, told by its columns
        (``endpoint``: survival, ``cell_line``: toxicity). A study's rows may be spread over
        several sources of one call.
    name : str, optional
        The source's label in error messages (default: the file name, or ``"DataFrame"``).

    Returns
    -------
    PublishedStudies

    Raises
    ------
    PublishedDataError
        On the first problem, naming the source, the row (the file's line number, the header
        being line 1, or the DataFrame's index label), the column, the value and what is
        allowed.
    """
    notes: list[str] = []
    surv: list[dict] = []
    tox: list[dict] = []
    seen: dict[tuple[str, str], tuple[_Source, int]] = {}
    studies: dict[str, None] = {}
    srcs = _sources(source, name)
    for src in srcs:
        s, t, where = _parse(src, notes)
        surv.extend(s)
        tox.extend(t)
        for study, row_id, s_src, i in where:
            if (study, row_id) in seen:
                f_src, f_i = seen[(study, row_id)]
                _Cell(s_src).rule(
                    i,
                    "row_id",
                    row_id,
                    f"duplicate row {study}:{row_id} (first at {f_src.label}, "
                    f"{f_src.rows[f_i]}); row_id must be unique within a study",
                )
            seen[(study, row_id)] = (s_src, i)
            studies.setdefault(study, None)
    if not seen:
        raise PublishedDataError(", ".join(x.label for x in srcs), "has no data rows")
    return PublishedStudies(
        survival=_frame(surv, SURVIVAL_COLUMNS, "survival"),
        toxicity=_frame(tox, TOXICITY_COLUMNS, "toxicity"),
        studies=tuple(studies),
        notes=notes,
    )


def check_new_studies(
    published: PublishedStudies | Iterable[PublishedStudies], existing_ids: Iterable[str]
) -> tuple[str, ...]:
    """Check that user-given studies are new: studies are added, never silently replaced.

    Parameters
    ----------
    published : PublishedStudies or iterable of PublishedStudies
        The loaded studies (several loads: a study may appear in one of them only).
    existing_ids : iterable of str
        The ids already present, e.g. ``netbayes.calibration.STUDIES``.

    Returns
    -------
    tuple of str
        The new study ids, in order.

    Raises
    ------
    PublishedDataError
        If a study id is already present, or appears in two loads.
    """
    loads = [published] if isinstance(published, PublishedStudies) else list(published)
    existing = list(existing_ids)
    first: dict[str, int] = {}
    for k, ps in enumerate(loads):
        for s in ps.studies:
            if s in existing:
                raise PublishedDataError(
                    None,
                    f"study {s!r} is already present (studies: {', '.join(existing)}); a "
                    "published study is added, never a replacement: give it another id",
                    value=s,
                )
            if s in first:
                raise PublishedDataError(
                    None,
                    f"study {s!r} is given twice (loads {first[s] + 1} and {k + 1}); load all "
                    "of its rows in one call",
                    value=s,
                )
            first[s] = k
    return tuple(first)


def rotterdam_as_published() -> PublishedStudies:
    """The packaged Rotterdam Table 5 survival rows (PFS and OS) in the published-cohort layout.

    Read through the Rotterdam study module (never the tables): the Table 5 medians and CIs
    (the SE left to the loader's Wald rule), the selection rules, the median activities (the
    in-phase activity for I-PRRT rows, the cumulative activity after R-PRRT and RR-PRRT) and
    the Table 5 tumour mix of each ``all`` row (the control row's unreported types spread by
    the retreatment mix, as the survival checks do).
    """
    sel = {r.line: r.min_months for r in rotterdam.selection_rules()}
    doses = rotterdam.dose_medians()
    gbq = {
        ("retreatment", "I-PRRT"): doses["dose_retre_iprrt_phase"],
        ("control", "I-PRRT"): doses["dose_control_iprrt_phase"],
        ("retreatment", "R-PRRT"): doses["dose_retre_rprrt_cum"],
        ("retreatment", "RR-PRRT"): doses["dose_retre_rrprrt_cum"],
    }
    mixes = rotterdam.cohort_mix()
    t5 = rotterdam.table5_mix()
    ctrl = t5[(t5["group"] == "control") & (t5["tumour_type"] != vocab.ALL_TUMOURS)]
    ctrl_n = dict(zip(ctrl["tumour_type"].astype(str), ctrl["n"].astype(float), strict=True))
    ctrl_all = t5[(t5["group"] == "control") & (t5["tumour_type"] == vocab.ALL_TUMOURS)]
    rest = float(ctrl_all["n"].iloc[0]) - sum(ctrl_n.values())
    retre = mixes["I-PRRT/R-PRRT"]
    others = {t: c for t, c in retre.items() if t not in ctrl_n}
    ctrl_mix = ctrl_n | {t: rest * c / sum(others.values()) for t, c in others.items()}
    frames = []
    for endpoint in ENDPOINTS:
        s = rotterdam.summaries(endpoint)
        group, line = s["group"].astype(str), s["line"].astype(str)
        df = pd.DataFrame(
            {
                "study": rotterdam.STUDY_ID,
                "row_id": s["row_id"].astype(str),
                "endpoint": endpoint,
                "line": line,
                "group": group,
                "tumour_type": s["tumour_type"].astype(str),
                "n": s["n"].astype(int),
                "median_months": s["median_months"],
                "ci95_lower_months": s["ci95_lower_months"],
                "ci95_upper_months": s["ci95_upper_months"],
                "selection_min_prior_pfs_months": [
                    sel.get(ln, 0.0) if g == "retreatment" else 0.0
                    for g, ln in zip(group, line, strict=True)
                ],
                "cumulative_gbq": [gbq[(g, ln)] for g, ln in zip(group, line, strict=True)],
                "source": rotterdam.STUDY_ID,
                "table": "Table 5",
            }
        )
        for t in vocab.TUMOUR_TYPES:
            df[f"mix_{t}"] = np.nan
        for k, (g, ln, tt) in enumerate(zip(group, line, df["tumour_type"], strict=True)):
            if tt != vocab.ALL_TUMOURS:
                continue
            mix = (
                ctrl_mix
                if g == "control"
                else mixes["RR-PRRT" if ln == "RR-PRRT" else "I-PRRT/R-PRRT"]
            )
            for t in vocab.TUMOUR_TYPES:
                df.loc[k, f"mix_{t}"] = mix.get(t, 0.0)
        frames.append(df)
    return load_published(pd.concat(frames, ignore_index=True), name="rotterdam2019 Table 5")


def frames_of(studies: Any, kind: str) -> pd.DataFrame | None:
    """The ``kind`` rows (``"survival"`` or ``"toxicity"``) of what a model's ``studies=``
    argument holds: a DataFrame, a sequence of them, or :class:`PublishedStudies` (one or
    several), concatenated; None for None.

    Raises
    ------
    TypeError
        Anything else.
    """
    if studies is None:
        return None
    items = [studies] if isinstance(studies, (pd.DataFrame, PublishedStudies)) else list(studies)
    frames = [getattr(f, kind) if isinstance(f, PublishedStudies) else f for f in items]
    if not frames or not all(isinstance(f, pd.DataFrame) for f in frames):
        raise TypeError(
            f"studies must be a DataFrame of published {kind} rows (docs/published_cohorts.md), "
            "a list of them, or netbayes.load_published(...)"
        )
    return pd.concat(frames, ignore_index=True)
